//! The shared vocabulary of the audio path. The engine (`stellatune-audio`) drives sinks and
//! DSP stages; the plugin host (`stellatune-plugin-host`) adapts plugin instances to them.
//! Both depend on this crate and on nothing of each other, as symphonia's decoders and
//! formats meet in `symphonia-core`.

#![forbid(unsafe_code)]

mod dsp;
mod error;
mod sink;
mod spec;
mod threads;

pub use dsp::DspStage;
pub use error::{ErrorSource, SinkError};
pub use sink::{Sink, SinkFactory, SinkStatus, TakeSchedule};
pub use spec::StreamSpec;
pub use threads::ThreadCounter;
