//! The engine: a handle that any thread may call, and one control thread that owns the
//! output and drives playback.
//!
//! This module holds what both sides share: the configuration, the status snapshot and the
//! command protocol between them. The rest is split by concern, so that each part of the
//! control thread's state machine can be read on its own:
//! - [`handle`]: the public [`Engine`] handle (commands over a channel, replies with timeouts);
//! - [`control`]: the control thread's state and loop, and command dispatch;
//! - [`track`]: the current and queued track, seeking, stopping, position events;
//! - [`output`]: the output sink (open, negotiate, write with volume, drain, close);
//! - [`dsp`]: the DSP chain (prepare, process, bypass a failing stage).

mod control;
mod dsp;
mod handle;
mod output;
mod track;

use crossbeam_channel::Sender;

use crate::error::Result;
use crate::event::{PlaybackState, TrackId};
use crate::sink::SinkFactory;
use crate::source::{TrackInfo, TrackSource};
use stellatune_core::DspStage;
use stellatune_core::StreamSpec;
use stellatune_core::ThreadCounter;

pub use handle::Engine;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Used for thread names, so several engines in one process (tests) stay apart in logs.
    pub name: String,
    pub threads: ThreadCounter,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            name: "stellatune".into(),
            threads: ThreadCounter::new(),
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
    ApplyRoute(Box<dyn SinkFactory>, Reply<()>),
    ClearRoute(Reply<()>),
    SetDspChain(Vec<Box<dyn DspStage>>, Reply<()>),
    Status(Reply<EngineStatus>),
    #[cfg(feature = "fault-injection")]
    Panic,
    Shutdown,
}
