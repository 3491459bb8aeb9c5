//! The output trait every sink implements: the built-in ones in the engine and, through an
//! adapter in the plugin host, plugin sinks.

use std::time::Duration;

use serde::Serialize;

use crate::{SinkError, StreamSpec};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Frames accepted but not yet heard.
    pub queued_frames: u64,
    /// Times the sink ran dry while playing.
    pub underruns: u64,
}

/// When the consumer behind a sink takes its next frames: a device period, or a sidecar's ring
/// read. The engine times its refills to follow a take (see [`TakeSchedule::wake_after_take`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeSchedule {
    /// From now until the next take.
    pub next_take_in: Duration,
    /// Between takes (non-zero).
    pub period: Duration,
}

impl TakeSchedule {
    /// The schedule a consumer published as the time of its next take and its period (in
    /// nanoseconds, on a clock both sides read), seen at `now` on that clock. The consumer
    /// publishes its next take only once it has made this one, so a time already past is a
    /// take still to come: due now, never skipped (a writer then wakes early, never late). One
    /// more than two periods late means the consumer stopped keeping to it: `None`, as for a
    /// period of 0 or nothing published (`next_take_at` 0). A take promised more than a
    /// period away counts as a period away.
    pub fn from_published(next_take_at: u64, period: u64, now: u64) -> Option<TakeSchedule> {
        if next_take_at == 0 || period == 0 {
            return None;
        }
        let next_in = if next_take_at >= now {
            (next_take_at - now).min(period)
        } else if now - next_take_at > 2 * period {
            return None;
        } else {
            0
        };
        Some(TakeSchedule {
            next_take_in: Duration::from_nanos(next_in),
            period: Duration::from_nanos(period),
        })
    }

    /// The latest wait of at most `limit` that ends `follow` after one of the consumer's takes
    /// that `queued` (all that is queued, up to a period of which the consumer may already
    /// hold) still serves in full, or `None` when no take qualifies. A writer that refills then
    /// finds room (the take just happened), is never later than `limit`, and never lets a take
    /// find the queue short.
    ///
    /// Takes remove whole periods, which a limit from the queue's length alone does not see:
    /// a queue a little over three periods long (two thirds of it a little over two periods)
    /// lasts only two takes, and with the next take due within that little, the third fell
    /// inside the limit too. So the takes are counted: `queued / period - 1` are served.
    pub fn wake_after_take(
        &self,
        limit: Duration,
        follow: Duration,
        queued: Duration,
    ) -> Option<Duration> {
        let first = self.next_take_in + follow;
        if first > limit || self.period.is_zero() {
            return None;
        }
        let served = (queued.as_nanos() / self.period.as_nanos()).saturating_sub(1);
        if served == 0 {
            return None;
        }
        let more = ((limit - first).as_nanos() / self.period.as_nanos()).min(served - 1);
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        Some(first + self.period.saturating_mul(more))
    }
}

/// An audio output. Only the engine's output thread calls it, one call at a time: negotiate
/// a spec, open, write interleaved f32 without blocking, query status, flush, reset, close.
pub trait Sink {
    /// A short human name for logs, e.g. `null` or `wav:/tmp/out.wav`.
    fn describe(&self) -> String;
    /// The spec this sink will take, given the spec the music has.
    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError>;
    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError>;
    /// Takes up to `interleaved.len() / channels` frames and returns how many it took. Never
    /// blocks: a paced sink takes fewer frames when its buffer is full.
    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError>;
    fn status(&self) -> SinkStatus;
    /// Pushes buffered output towards the medium (e.g. a file's header and data).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Drops queued audio at once; the sink stays open and usable.
    fn reset(&mut self) -> Result<(), SinkError>;
    /// True when [`Sink::reset`] fades out what it drops where the audio is played (and fades
    /// in what follows), as an output with a real queue does. The engine then writes no
    /// fade-out of its own after a reset: that would be audio from ahead of what was heard.
    /// False (the default) for a sink whose queue is already written out, such as a file.
    fn fades_on_reset(&self) -> bool {
        false
    }
    /// When the consumer behind this sink takes its next frames, for a sink that knows (a
    /// device clock, a sidecar's published read schedule). `None` (the default): the engine
    /// times its refills from the queue alone.
    fn take_schedule(&self) -> Option<TakeSchedule> {
        None
    }
    /// Releases every external resource. The sink may be opened again afterwards.
    fn close(&mut self) -> Result<(), SinkError>;
}

/// Builds a sink on the engine's output thread. Sinks themselves need not be `Send` (a
/// cpal stream is not), so what crosses threads is the recipe, not the sink.
pub trait SinkFactory: Send {
    fn describe(&self) -> String;
    /// Checks the route on the caller's thread before it goes to the engine, so that a route
    /// that cannot work (an unwritable file, an output this build lacks) is refused by the
    /// call that named it. Quick and non-blocking; what only opening can tell is reported
    /// later, by events.
    fn validate(&self) -> Result<(), SinkError> {
        Ok(())
    }
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_wait_ends_just_after_the_latest_take_within_the_limit() {
        let s = TakeSchedule {
            next_take_in: 30 * MS,
            period: 100 * MS,
        };
        let follow = Duration::from_micros(200);
        let long = 1000 * MS;
        // Only the take in 30 ms is within 100 ms.
        assert_eq!(
            s.wake_after_take(100 * MS, follow, long),
            Some(30 * MS + follow)
        );
        // The take in 130 ms is the latest within 140 ms.
        assert_eq!(
            s.wake_after_take(140 * MS, follow, long),
            Some(130 * MS + follow)
        );
        // None before 20 ms; and 30 ms + follow is past a 30 ms limit.
        assert_eq!(s.wake_after_take(20 * MS, follow, long), None);
        assert_eq!(s.wake_after_take(30 * MS, follow, long), None);
    }

    #[test]
    fn the_wait_never_passes_a_take_the_queue_cannot_serve_in_full() {
        // A sidecar's paced device: 97.5 ms periods, a 200 ms ring just refilled plus the
        // period the device holds: 297.5 ms queued, two thirds of it 198.3 ms. With the next
        // take due in 1 ms, the third take (in 196 ms) is within those two thirds, but the
        // ring (200 ms) serves only two: the wait ends after the second.
        let s = TakeSchedule {
            next_take_in: MS,
            period: Duration::from_micros(97_500),
        };
        let queued = Duration::from_micros(297_500);
        let limit = queued * 2 / 3;
        let wait = s.wake_after_take(limit, Duration::ZERO, queued).unwrap();
        assert_eq!(wait, Duration::from_micros(98_500));
        // Less than two periods queued: not even the next take is served in full after one
        // is already held.
        assert_eq!(
            s.wake_after_take(limit, Duration::ZERO, Duration::from_millis(190)),
            None
        );
    }

    #[test]
    fn small_device_periods_do_not_wake_the_writer_more_often() {
        // A 5 ms device period and a 67 ms refill mark: one wake-up, at the last period in it.
        let s = TakeSchedule {
            next_take_in: 2 * MS,
            period: 5 * MS,
        };
        let queued = 100 * MS;
        let w = s.wake_after_take(67 * MS, Duration::ZERO, queued).unwrap();
        assert_eq!(w, 67 * MS);
        let w = s.wake_after_take(66 * MS, Duration::ZERO, queued).unwrap();
        assert_eq!(w, 62 * MS);
    }

    #[test]
    fn a_published_schedule_is_read_as_due_now_when_late_and_dropped_when_stale() {
        const P: u64 = 100_000_000; // 100 ms in ns
        let at = |next_take_at, now| TakeSchedule::from_published(next_take_at, P, now);
        let s = at(1_030_000_000, 1_000_000_000).unwrap();
        assert_eq!((s.next_take_in, s.period), (30 * MS, 100 * MS));
        // Late by less than two periods: the take is still to come, so due now.
        assert_eq!(
            at(1_000_000_000, 1_150_000_000).unwrap().next_take_in,
            Duration::ZERO
        );
        // More than two periods late, nothing published, no period: no schedule.
        assert_eq!(at(1_000_000_000, 1_000_000_000 + 2 * P + 1), None);
        assert_eq!(at(0, 5), None);
        assert_eq!(TakeSchedule::from_published(10, 0, 5), None);
        // A take promised an hour away counts as a period away.
        assert_eq!(at(3_600_000_000_000, 0).unwrap().next_take_in, 100 * MS);
    }

    #[test]
    fn a_zero_period_gives_no_wait() {
        let s = TakeSchedule {
            next_take_in: MS,
            period: Duration::ZERO,
        };
        assert_eq!(s.wake_after_take(100 * MS, Duration::ZERO, 1000 * MS), None);
    }
}
