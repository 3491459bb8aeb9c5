//! Output sinks. The same trait serves the built-in sinks and, through an adapter, plugin
//! sinks: negotiate a spec, open, write interleaved f32 without blocking, query status,
//! flush, reset, close.

// Device output is built with the `device` feature, and always on Windows, where WASAPI needs
// no system packages at build time (on Linux cpal needs the ALSA headers).
#[cfg(any(feature = "device", windows))]
mod device;
mod null;
mod pacer;
mod wav;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::spec::StreamSpec;

pub use null::NullSink;
pub use pacer::Pacer;
pub use wav::WavSink;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Frames accepted but not yet heard.
    pub queued_frames: u64,
    /// Times the sink ran dry while playing.
    pub underruns: u64,
}

/// An audio output. Only the engine's control thread calls it, one call at a time.
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
    /// Releases every external resource. The sink may be opened again afterwards.
    fn close(&mut self) -> Result<(), SinkError>;
}

/// Builds a sink on the engine's control thread. Sinks themselves need not be `Send` (a
/// cpal stream is not), so what crosses threads is the recipe, not the sink.
pub trait SinkFactory: Send {
    fn describe(&self) -> String;
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError>;
}

/// A built-in output route, as it appears in route JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BuiltinRoute {
    /// The system's default output device (needs the `device` feature).
    Device,
    /// Discards audio at real-time pace.
    Null,
    /// Writes what would be heard to a 32-bit float WAV file.
    Wav {
        path: PathBuf,
        #[serde(default = "default_paced")]
        paced: bool,
    },
}

fn default_paced() -> bool {
    true
}

impl SinkFactory for BuiltinRoute {
    fn describe(&self) -> String {
        match self {
            BuiltinRoute::Device => "device".into(),
            BuiltinRoute::Null => "null".into(),
            BuiltinRoute::Wav { path, paced } => {
                format!(
                    "wav:{}{}",
                    path.display(),
                    if *paced { "" } else { " (unpaced)" }
                )
            }
        }
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        match *self {
            BuiltinRoute::Null => Ok(Box::new(NullSink::new())),
            BuiltinRoute::Wav { path, paced } => Ok(Box::new(WavSink::create(path, paced)?)),
            #[cfg(any(feature = "device", windows))]
            BuiltinRoute::Device => Ok(Box::new(device::DeviceSink::new()?)),
            #[cfg(not(any(feature = "device", windows)))]
            BuiltinRoute::Device => Err(SinkError::new(
                "this build has no device output (built without the `device` feature)",
            )),
        }
    }
}
