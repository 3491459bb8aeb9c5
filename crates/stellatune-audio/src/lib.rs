//! The stellatune audio engine: real decoding (symphonia), resampling (rubato), volume,
//! gapless queueing, and the built-in sinks, driven by exactly one control thread and one
//! decode worker per engine.

mod convert;
mod dsp;
mod engine;
mod error;
mod event;
pub mod sink;
mod source;
mod spec;
mod threads;
mod worker;

pub use convert::{Converter, map_channels};
pub use dsp::DspStage;
pub use engine::{Engine, EngineConfig, EngineStatus};
pub use error::{AudioError, Result};
pub use event::{EngineEvent, EventHandler, PlaybackState, TrackId};
pub use sink::{BuiltinRoute, Sink, SinkError, SinkFactory, SinkStatus};
pub use source::{TrackInfo, TrackSource};
pub use spec::StreamSpec;
pub use threads::ThreadCounter;
