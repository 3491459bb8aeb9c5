//! The stellatune audio engine: real decoding (symphonia), resampling (rubato), volume,
//! gapless queueing, and the built-in sinks, driven by exactly one control thread and one
//! decode worker per engine.

#![forbid(unsafe_code)]

mod convert;
mod engine;
mod error;
mod event;
mod gain;
mod media;
mod mp4;
pub mod sink;
mod source;
mod worker;

pub use convert::{Converter, downmix_matrix, map_channels};
pub use engine::{DEFAULT_FADE_MS, Engine, EngineConfig, EngineStatus};
pub use error::{AudioError, Result};
pub use event::{EngineEvent, EventHandler, PlaybackState, TrackId};
pub use gain::{MAX_REPLAYGAIN_DB, ReplayGainMode, ReplayGainSettings};
pub use media::{Cover, CoverInfo, MediaInfo, MediaTags, ReplayGain, probe_media, read_cover};
pub use sink::BuiltinRoute;
pub use sink::device::{DeviceInfo, output_devices};
// The shared vocabulary, re-exported so that engine users need one import path.
pub use source::{TrackInfo, TrackSource};
pub use stellatune_core::{
    DspStage, Sink, SinkError, SinkFactory, SinkStatus, StreamSpec, TakeSchedule, ThreadCounter,
};
