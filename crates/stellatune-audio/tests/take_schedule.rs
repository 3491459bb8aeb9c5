//! A sink whose consumer takes audio on a clock, a period at a time (a device, a sidecar's
//! ring reader), and says when (`Sink::take_schedule`): the output thread refills just after
//! a take, when there is room, and, knowing the takes, only every other period of a device
//! that takes about half its ring at a time, without ever letting a take find the ring short.
//! That is what keeps the sidecar route cheap in `scripts/bench.sh`.

mod common;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use stellatune_audio::{Sink, SinkError, SinkFactory, SinkStatus, StreamSpec, TakeSchedule};

const RATE: u32 = 44_100;
/// The device's ring, laid out as the sidecar's paced devices lay theirs out: two 100 ms
/// periods and a reset's 5 ms fade-out, taken 100 ms at a time, the first take 50 ms after
/// `open`. A queue a little over three periods long (ring and held period) once let the
/// writer sleep past the third take when the next one was due within that little.
const PERIOD_FRAMES: u64 = RATE as u64 / 10;
const CAPACITY: u64 = 2 * PERIOD_FRAMES + RATE as u64 / 200;
const PERIOD: Duration = Duration::from_millis(100);
const FIRST_TAKE: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Device {
    opened: Option<Instant>,
    /// Frames in the ring, and taken by the current period.
    ring: u64,
    held: u64,
    takes: u32,
    /// Takes that found less than a period in the ring.
    short_takes: u32,
    /// When a write took frames.
    refills: Vec<Instant>,
}

impl Device {
    fn take_at(&self, k: u32) -> Option<Instant> {
        Some(self.opened? + FIRST_TAKE + PERIOD * k)
    }

    /// Carries out the takes due by `now`.
    fn advance(&mut self, now: Instant) {
        while self.take_at(self.takes).is_some_and(|t| t <= now) {
            if self.ring < PERIOD_FRAMES {
                self.short_takes += 1;
            }
            self.held = self.ring.min(PERIOD_FRAMES);
            self.ring -= self.held;
            self.takes += 1;
        }
    }
}

type SharedDevice = Arc<Mutex<Device>>;

fn lock(d: &SharedDevice) -> MutexGuard<'_, Device> {
    d.lock().unwrap_or_else(PoisonError::into_inner)
}

struct PeriodicSink {
    device: SharedDevice,
    channels: usize,
    publishes_schedule: bool,
}

impl Sink for PeriodicSink {
    fn describe(&self) -> String {
        "periodic".into()
    }
    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        Ok(preferred)
    }
    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.channels = usize::from(spec.channels);
        lock(&self.device).opened = Some(Instant::now());
        Ok(())
    }
    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        let now = Instant::now();
        let mut d = lock(&self.device);
        d.advance(now);
        let offered = (interleaved.len() / self.channels) as u64;
        let taken = offered.min(CAPACITY - d.ring);
        d.ring += taken;
        if taken > 0 {
            d.refills.push(now);
        }
        Ok(taken as usize)
    }
    fn status(&self) -> SinkStatus {
        let mut d = lock(&self.device);
        d.advance(Instant::now());
        SinkStatus {
            queued_frames: d.ring + d.held,
            underruns: 0,
        }
    }
    fn take_schedule(&self) -> Option<TakeSchedule> {
        if !self.publishes_schedule {
            return None;
        }
        let now = Instant::now();
        let mut d = lock(&self.device);
        d.advance(now);
        let next = d.take_at(d.takes)?;
        Some(TakeSchedule {
            next_take_in: next.saturating_duration_since(now),
            period: PERIOD,
        })
    }
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), SinkError> {
        let mut d = lock(&self.device);
        d.ring = 0;
        Ok(())
    }
    fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

struct Route(Mutex<Option<PeriodicSink>>);

impl SinkFactory for Route {
    fn describe(&self) -> String {
        "periodic".into()
    }
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        let sink = self.0.into_inner().unwrap_or_else(PoisonError::into_inner);
        Ok(Box::new(sink.expect("created once")))
    }
}

#[test]
fn refills_follow_the_consumers_takes_every_other_period_and_never_leave_it_short() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("tone.wav");
    let frames = RATE as usize * 3 / 2;
    write_wav_i16(&src, RATE, 2, &tone_i16(RATE, frames, 440.0, 0.3));
    let events = Events::new();
    let engine = stellatune_audio::Engine::start(
        stellatune_audio::EngineConfig {
            name: "take-schedule".into(),
            ..Default::default()
        },
        events.handler(),
    )
    .unwrap();
    let device = SharedDevice::default();
    let sink = PeriodicSink {
        device: device.clone(),
        channels: 2,
        publishes_schedule: true,
    };
    engine
        .apply_route(Box::new(Route(Mutex::new(Some(sink)))))
        .unwrap();
    let id = engine.play(&src).unwrap();
    // Stop looking before the music runs out (1.5 s): the last takes find the ring short.
    std::thread::sleep(Duration::from_millis(1250));
    let d = lock(&device);
    assert_eq!(d.short_takes, 0, "a take found the ring short");
    drop(d);
    events.wait_finished(id);
    engine.shutdown(Duration::from_secs(20)).unwrap();

    let d = lock(&device);
    let opened = d.opened.expect("opened");
    // Wake-ups that refilled (writes within a millisecond of each other are one), after the
    // first fill and before the music ran out.
    let mut wakes: Vec<Instant> = Vec::new();
    for &t in &d.refills {
        if wakes
            .last()
            .is_none_or(|&w| t.duration_since(w) > Duration::from_millis(1))
        {
            wakes.push(t);
        }
    }
    let steady: Vec<Duration> = wakes
        .iter()
        .map(|t| t.duration_since(opened))
        .filter(|&t| t > FIRST_TAKE + PERIOD && t < Duration::from_millis(1200))
        .collect();
    assert!(steady.len() >= 3, "refills: {steady:?}");
    // How long after the latest take each refill came.
    let after_take: Vec<Duration> = steady
        .iter()
        .map(|&t| {
            let since_first = (t - FIRST_TAKE).as_nanos() % PERIOD.as_nanos();
            Duration::from_nanos(since_first as u64)
        })
        .collect();
    let close = after_take
        .iter()
        .filter(|&&a| a < Duration::from_millis(8))
        .count();
    // A loaded machine may wake a thread late now and then; most refills still follow a take.
    assert!(
        close * 10 >= after_take.len() * 7,
        "refills after the latest take: {after_take:?}"
    );
    // One refill every other period: a full ring lasts two takes.
    let periods = (Duration::from_millis(1200) - FIRST_TAKE - PERIOD).as_millis() / 100;
    assert!(
        (steady.len() as u128) <= periods * 3 / 4,
        "{} refills in {periods} periods: {after_take:?}",
        steady.len()
    );
}
