//! The engine: a handle that any thread may call, and one control thread that owns the
//! output and drives playback.
//!
//! This module holds what both sides share: the configuration, the status snapshot and the
//! command protocol between them. The rest is split by concern, so that each part of the
//! control thread's state machine can be read on its own:
//! - [`handle`]: the public [`Engine`] handle (commands over a channel, replies with timeouts);
//! - [`control`]: the control thread: answers commands from the shared playback state and
//!   hands sink and decoder work to the output thread without waiting for it;
//! - [`track`]: the playback state both threads share (tracks, state, positions, events);
//! - [`output`]: the output thread, the only one to touch a sink (create, negotiate, open,
//!   write with volume, event-driven waits, drain, reset, close);
//! - [`dsp`]: the DSP chain, run on the output thread (prepare, process, bypass a failing
//!   stage);
//! - [`priority`]: real-time priority for the output thread, best effort.

mod control;
mod dsp;
mod handle;
mod output;
mod priority;
mod track;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::error::Result;
use crate::event::{EngineEvent, EventHandler, PlaybackState, TrackId};
use crate::gain::ReplayGainSettings;
use crate::sink::SinkFactory;
use crate::source::{TrackInfo, TrackSource};
use stellatune_core::DspStage;
use stellatune_core::ThreadCounter;
use stellatune_core::{SinkStatus, StreamSpec};

pub use handle::Engine;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Used for thread names, so several engines in one process (tests) stay apart in logs.
    pub name: String,
    pub threads: ThreadCounter,
    /// ReplayGain from the start; [`Engine::set_replaygain`] changes it.
    pub replaygain: ReplayGainSettings,
    /// The length of the fades on pause, resume, stop, seek and a track switch that is not
    /// gapless, in ms (0 to 100): short enough to feel instant, long enough not to click.
    /// 0 cuts the waveform as it is (what a sample editor wants). Default 5.
    pub fade_ms: u32,
}

/// The default of [`EngineConfig::fade_ms`].
pub const DEFAULT_FADE_MS: u32 = 5;

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            name: "stellatune".into(),
            threads: ThreadCounter::new(),
            replaygain: ReplayGainSettings::default(),
            fade_ms: DEFAULT_FADE_MS,
        }
    }
}

/// A snapshot of what the engine is doing.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStatus {
    pub state: PlaybackState,
    pub track_id: Option<TrackId>,
    pub track: Option<TrackInfo>,
    pub position_ms: u64,
    pub volume: f32,
    pub route: Option<String>,
    pub output_spec: Option<StreamSpec>,
    pub queued_next: Option<TrackId>,
    pub frames_written: u64,
}

type Reply<T> = Sender<Result<T>>;

enum Command {
    Play(TrackSource, Reply<TrackId>),
    QueueNext(TrackSource, Reply<TrackId>),
    Pause(Reply<()>),
    Resume(Reply<()>),
    Stop(Reply<()>),
    Seek(u64, Reply<()>),
    SetVolume(f32, Reply<()>),
    SetReplayGain(ReplayGainSettings, Reply<()>),
    ApplyRoute(Box<dyn SinkFactory>, Reply<()>),
    ClearRoute(Reply<()>),
    SetDspChain(Vec<Box<dyn DspStage>>, Reply<()>),
    Status(Reply<EngineStatus>),
    #[cfg(feature = "fault-injection")]
    Panic,
    Shutdown,
}

/// The shortest time between two `underrun` events, however often the output runs dry.
const UNDERRUN_EVENT_INTERVAL: Duration = Duration::from_secs(1);

/// Counts underruns on the output thread: times the engine had nothing to give while playing
/// and the sink's queue ran empty, plus the underruns the sink itself reports while playing.
/// One dry spell seen by both counts once. The total is readable from any thread
/// ([`Engine::underruns_total`]); `underrun` events carry it, at most one a second.
pub(super) struct UnderrunCounter {
    total: Arc<AtomicU64>,
    events: EventHandler,
    /// The sink's own count when last looked at, while playing; `None` until the first
    /// write after a (re)start, since a sink counts the gap of a pause or a seek as an
    /// underrun too.
    sink_seen: Option<u64>,
    /// The sink was full once since the last (re)start: before that it is still filling (a
    /// track's start, after a seek), and running short then is no underrun.
    filled: bool,
    /// The sink had frames queued when last looked at.
    sink_had_queue: bool,
    /// This dry spell was counted already by the engine.
    dry_counted: bool,
    last_event: Option<Instant>,
    reported: u64,
}

impl UnderrunCounter {
    pub(super) fn new(total: Arc<AtomicU64>, events: EventHandler) -> Self {
        let reported = total.load(Ordering::Relaxed);
        Self {
            total,
            events,
            sink_seen: None,
            filled: false,
            sink_had_queue: false,
            dry_counted: false,
            last_event: None,
            reported,
        }
    }

    fn add(&self, n: u64) {
        if n > 0 {
            self.total.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// True once something was written since the last (re)start.
    pub(super) fn primed(&self) -> bool {
        self.sink_seen.is_some()
    }

    /// Playback (re)starts, or the sink changed: nothing it counts until the next write is
    /// an underrun of ours.
    pub(super) fn restart(&mut self) {
        self.sink_seen = None;
        self.filled = false;
        self.sink_had_queue = false;
        self.dry_counted = false;
    }

    /// Paused or stopped: the sink will run dry, which is no underrun.
    pub(super) fn idle(&mut self) {
        self.restart();
    }

    /// After a write while playing; `full` when the sink took less than offered.
    pub(super) fn wrote(&mut self, taken: usize, full: bool, status: SinkStatus) {
        if let Some(seen) = self.sink_seen.filter(|_| self.filled) {
            let reported = status.underruns.saturating_sub(seen);
            // The engine already counted the dry spell the sink reports now.
            let reported = reported.saturating_sub(u64::from(self.dry_counted && reported > 0));
            self.add(reported);
        }
        self.sink_seen = Some(status.underruns);
        self.filled |= full;
        self.sink_had_queue = status.queued_frames > 0;
        if taken > 0 {
            self.dry_counted = false;
        }
    }

    /// The engine has nothing to give while playing. Counts an underrun if the sink, which
    /// had frames queued, now has none; otherwise returns the frames still queued, so the
    /// caller can look again when they should have played.
    pub(super) fn starving(&mut self, status: SinkStatus) -> Option<u64> {
        if !self.filled || self.dry_counted {
            return None;
        }
        if status.queued_frames > 0 {
            self.sink_had_queue = true;
            return Some(status.queued_frames);
        }
        if self.sink_had_queue {
            self.sink_had_queue = false;
            self.dry_counted = true;
            self.add(1);
        }
        None
    }

    /// Emits an `underrun` event if the count grew and the last one is a second old.
    pub(super) fn emit_due(&mut self) {
        let total = self.total.load(Ordering::Relaxed);
        if total == self.reported {
            return;
        }
        let now = Instant::now();
        if self
            .last_event
            .is_some_and(|t| now.duration_since(t) < UNDERRUN_EVENT_INTERVAL)
        {
            return;
        }
        tracing::debug!(count = total, "output underrun");
        self.last_event = Some(now);
        self.reported = total;
        (self.events)(EngineEvent::Underrun { count: total });
    }
}

/// How far the output thread has got through the commands the control thread handed it, so
/// that a caller that wants to (the runtime host, for its own callers) can wait until a
/// command's sink work is done. The control thread itself never waits on it.
#[derive(Default)]
pub(super) struct OutputProgress {
    counts: std::sync::Mutex<(u64, u64)>,
    done: std::sync::Condvar,
}

impl OutputProgress {
    fn counts(&self) -> std::sync::MutexGuard<'_, (u64, u64)> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn sent(&self) {
        self.counts().0 += 1;
    }

    pub(super) fn handled(&self) {
        self.counts().1 += 1;
        self.done.notify_all();
    }

    /// Waits until every command sent so far is handled; false on timeout.
    pub(super) fn wait_settled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut counts = self.counts();
        let target = counts.0;
        while counts.1 < target {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            counts = self
                .done
                .wait_timeout(counts, deadline - now)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }
}
