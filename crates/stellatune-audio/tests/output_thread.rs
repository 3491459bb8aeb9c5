//! The engine's output thread, through the public API: a sink whose `open` blocks does not
//! block commands, the last track ends only once the sink has played everything, and a sink
//! that runs dry is counted. Test sinks here are controlled by the test (a channel that
//! releases `open`, a flag that stalls the sink), so nothing depends on timing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use crossbeam_channel::{Receiver, Sender, bounded};
use stellatune_audio::sink::Pacer;
use stellatune_audio::{
    EngineEvent, PlaybackState, Sink, SinkError, SinkFactory, SinkStatus, StreamSpec,
};

const RATE: u32 = 44_100;
const SHUTDOWN: Duration = Duration::from_secs(20);

/// What a test sink did, shared with the test and read from the event handler.
#[derive(Default)]
struct Played {
    written: u64,
    pacer: Option<Pacer>,
    /// Frames still queued in the sink when `track_ended` was emitted.
    queued_at_track_end: Option<u64>,
}

type SharedPlayed = Arc<Mutex<Played>>;

fn played(shared: &SharedPlayed) -> std::sync::MutexGuard<'_, Played> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A real-time paced sink with a 100 ms buffer. `open` waits for the test's `release`
/// channel when one is given; `stalled` makes it take nothing and count an underrun per
/// write, as a device that lost its clock would.
struct TestSink {
    played: SharedPlayed,
    release: Option<Receiver<()>>,
    opening: Option<Sender<()>>,
    stalled: Arc<AtomicBool>,
    stall_underruns: u64,
    channels: usize,
}

struct TestRoute(Mutex<Option<TestSink>>);

impl TestRoute {
    fn boxed(sink: TestSink) -> Box<dyn SinkFactory> {
        Box::new(TestRoute(Mutex::new(Some(sink))))
    }
}

impl SinkFactory for TestRoute {
    fn describe(&self) -> String {
        "test-sink".into()
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        let sink = self
            .0
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .expect("created once");
        Ok(Box::new(sink))
    }
}

impl TestSink {
    fn new(played: &SharedPlayed) -> Self {
        Self {
            played: played.clone(),
            release: None,
            opening: None,
            stalled: Arc::new(AtomicBool::new(false)),
            stall_underruns: 0,
            channels: 2,
        }
    }
}

impl Sink for TestSink {
    fn describe(&self) -> String {
        "test-sink".into()
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        Ok(preferred)
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        if let Some(opening) = self.opening.take() {
            let _ = opening.send(());
        }
        if let Some(release) = self.release.take() {
            // Blocks until the test releases it, like a sink starting a helper process.
            let _ = release.recv();
        }
        self.channels = usize::from(spec.channels);
        played(&self.played).pacer = Some(Pacer::new(spec.sample_rate, Duration::from_millis(100)));
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        if self.stalled.load(Ordering::SeqCst) {
            self.stall_underruns += 1;
            return Ok(0);
        }
        let offered = interleaved.len() / self.channels;
        let mut p = played(&self.played);
        let taken = p.pacer.as_mut().map_or(0, |pacer| pacer.admit(offered));
        p.written += taken as u64;
        Ok(taken)
    }

    fn status(&self) -> SinkStatus {
        let p = played(&self.played);
        let (queued, underruns) = p
            .pacer
            .as_ref()
            .map_or((0, 0), |pacer| (pacer.queued(), pacer.underruns()));
        if self.stalled.load(Ordering::SeqCst) {
            return SinkStatus {
                queued_frames: 0,
                underruns: underruns + self.stall_underruns,
            };
        }
        SinkStatus {
            queued_frames: queued,
            underruns: underruns + self.stall_underruns,
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn reset(&mut self) -> Result<(), SinkError> {
        if let Some(pacer) = played(&self.played).pacer.as_mut() {
            pacer.reset();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// An engine whose event handler also notes, at `track_ended`, what the sink still queued.
fn engine_watching(name: &str, watched: &SharedPlayed) -> (stellatune_audio::Engine, Arc<Events>) {
    let events = Events::new();
    let record = events.handler();
    let watched = watched.clone();
    let handler: stellatune_audio::EventHandler = Arc::new(move |event: EngineEvent| {
        if matches!(event, EngineEvent::TrackEnded { .. }) {
            let mut p = played(&watched);
            let queued = p.pacer.as_ref().map_or(0, Pacer::queued);
            p.queued_at_track_end.get_or_insert(queued);
        }
        record(event);
    });
    let engine = stellatune_audio::Engine::start(
        stellatune_audio::EngineConfig {
            name: name.into(),
            ..Default::default()
        },
        handler,
    )
    .expect("engine starts");
    (engine, events)
}

#[test]
fn commands_are_answered_while_the_output_opens() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize / 2;
    let src = dir.path().join("tone.wav");
    write_wav_i16(&src, RATE, 2, &tone_i16(RATE, frames, 440.0, 0.3));
    let shared = SharedPlayed::default();
    let (engine, events) = engine_watching("blocked-open", &shared);
    let (release_tx, release_rx) = bounded(1);
    let (opening_tx, opening_rx) = bounded(1);
    let mut sink = TestSink::new(&shared);
    sink.release = Some(release_rx);
    sink.opening = Some(opening_tx);
    engine.apply_route(TestRoute::boxed(sink)).unwrap();
    let id = engine
        .play(&src)
        .expect("play answers while the sink opens");
    opening_rx
        .recv_timeout(TIMEOUT)
        .expect("the output thread opens the sink");
    // The sink's open is blocked now: every command is still answered.
    engine.set_volume(0.5).unwrap();
    let status = engine.status().unwrap();
    assert_eq!(status.state, PlaybackState::Playing);
    assert_eq!(status.track_id, Some(id));
    assert_eq!(status.volume, 0.5);
    assert_eq!(status.frames_written, 0);
    engine.pause().unwrap();
    assert_eq!(engine.status().unwrap().state, PlaybackState::Paused);
    engine.resume().unwrap();
    engine.set_volume(1.0).unwrap();
    assert!(
        events
            .all()
            .iter()
            .any(|e| matches!(e, EngineEvent::OutputStarting { route } if route == "test-sink")),
        "output_starting announced: {:#?}",
        events.all()
    );
    // Released, the music plays to its end.
    release_tx.send(()).unwrap();
    events.wait_finished(id);
    assert_eq!(played(&shared).written, frames as u64);
    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn the_last_track_ends_only_after_the_sink_played_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize / 2;
    let src = dir.path().join("tone.wav");
    write_wav_i16(&src, RATE, 2, &tone_i16(RATE, frames, 440.0, 0.3));
    let shared = SharedPlayed::default();
    let (engine, events) = engine_watching("drain", &shared);
    engine
        .apply_route(TestRoute::boxed(TestSink::new(&shared)))
        .unwrap();
    let id = engine.play(&src).unwrap();
    events.wait_finished(id);
    let p = played(&shared);
    assert_eq!(p.written, frames as u64, "every frame was written");
    assert_eq!(
        p.queued_at_track_end,
        Some(0),
        "track_ended came before the sink had played what it queued"
    );
    drop(p);
    engine.shutdown(SHUTDOWN).unwrap();
}

#[test]
fn a_stalling_sink_is_counted_as_underruns_with_an_event() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("long.wav");
    write_wav_i16(
        &src,
        RATE,
        2,
        &tone_i16(RATE, RATE as usize * 20, 440.0, 0.3),
    );
    let shared = SharedPlayed::default();
    let (engine, events) = engine_watching("stall", &shared);
    let sink = TestSink::new(&shared);
    let stalled = sink.stalled.clone();
    engine.apply_route(TestRoute::boxed(sink)).unwrap();
    let id = engine.play(&src).unwrap();
    wait_frames_written(&engine, 4410);
    // A loaded machine may have starved the output already; the stall must add to that.
    let before_stall = engine.underruns_total();
    stalled.store(true, Ordering::SeqCst);
    events.wait_for("an underrun event counting the stall", |ev| {
        ev.iter()
            .any(|e| matches!(e, EngineEvent::Underrun { count } if *count > before_stall))
    });
    stalled.store(false, Ordering::SeqCst);
    assert!(engine.underruns_total() > before_stall);
    // The music goes on after the stall.
    let before = engine.status().unwrap().frames_written;
    wait_frames_written(&engine, before + 4410);
    engine.stop().unwrap();
    assert!(finished_after(&events.all(), id));
    engine.shutdown(SHUTDOWN).unwrap();
}
