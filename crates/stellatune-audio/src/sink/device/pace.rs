//! A speed limit for device callbacks. A device with a clock asks for audio at its sample
//! rate; one without (ALSA's `null` PCM, a `file` PCM over it) asks again the moment a callback
//! returns, so the callback would spin, writing silence as fast as the machine allows (a full
//! core, and gigabytes into a `file` PCM, for as long as the stream is open). [`Pace`] tells
//! such a callback how long to wait so that it takes audio at no more than twice real time;
//! a device with a clock, which never gets that far ahead of the wall clock (even with its
//! clock drifting), is never held up.

use std::time::{Duration, Instant};

/// How far ahead of real time a device may pull at first: its buffer filling at the start.
const LEAD: Duration = Duration::from_millis(250);

/// Counts what a stream's callbacks took since its first one.
pub(super) struct Pace {
    rate: u32,
    start: Option<Instant>,
    frames: u64,
}

impl Pace {
    pub(super) fn new(sample_rate: u32) -> Self {
        Self {
            rate: sample_rate.max(1),
            start: None,
            frames: 0,
        }
    }

    /// Records a callback that took `frames` at `now`; returns how long to wait before
    /// returning from it, if the device is taking audio faster than twice real time.
    pub(super) fn took(&mut self, frames: usize, now: Instant) -> Option<Duration> {
        let start = *self.start.get_or_insert(now);
        self.frames += frames as u64;
        let audio = Duration::from_nanos(
            u64::try_from(u128::from(self.frames) * 1_000_000_000 / u128::from(self.rate))
                .unwrap_or(u64::MAX),
        );
        // Twice real time after the lead: the audio taken may be up to LEAD + 2 × elapsed.
        let due = start + audio.saturating_sub(LEAD) / 2;
        (due > now).then(|| due - now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_with_a_clock_is_never_held_up() {
        let start = Instant::now();
        let mut pace = Pace::new(48_000);
        // 10 ms periods, each asked for when the one before it was played, for an hour of a
        // device whose clock runs 1 % fast and which fills 200 ms of buffer at the start.
        assert_eq!(pace.took(9_600, start), None);
        for n in 1..360_000u32 {
            let now = start + Duration::from_micros(u64::from(n) * 9_900);
            assert_eq!(pace.took(480, now), None, "period {n}");
        }
    }

    #[test]
    fn a_device_without_a_clock_is_held_to_twice_real_time() {
        let start = Instant::now();
        let mut pace = Pace::new(48_000);
        // The lead goes through at once.
        assert_eq!(pace.took(12_000, start), None);
        // One more second of audio at once: it may only go out over half a second.
        let wait = pace.took(48_000, start).unwrap();
        assert_eq!(wait, Duration::from_millis(500));
        // Once that wait is over, the next period may go at twice real time again.
        let later = start + wait;
        assert_eq!(pace.took(0, later), None);
        assert_eq!(pace.took(480, later).unwrap(), Duration::from_millis(5));
    }
}
