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

pub use stellatune_core::{Sink, SinkError, SinkFactory, SinkStatus};

pub use null::NullSink;
pub use pacer::Pacer;
pub use wav::WavSink;

/// A built-in output route.
#[derive(Debug, Clone, PartialEq)]
pub enum BuiltinRoute {
    /// The system's default output device (needs the `device` feature).
    Device,
    /// Discards audio at real-time pace.
    Null,
    /// Writes what would be heard to a 32-bit float WAV file.
    Wav { path: PathBuf, paced: bool },
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

    fn validate(&self) -> Result<(), SinkError> {
        match self {
            BuiltinRoute::Null => Ok(()),
            // The output thread creates the file again when it makes the sink.
            BuiltinRoute::Wav { path, .. } => std::fs::File::create(path)
                .map(drop)
                .map_err(|e| SinkError::io(format!("cannot create {}", path.display()), e)),
            #[cfg(any(feature = "device", windows))]
            BuiltinRoute::Device => Ok(()),
            #[cfg(not(any(feature = "device", windows)))]
            BuiltinRoute::Device => Err(SinkError::invalid_config(
                "this build has no device output (built without the `device` feature)",
            )),
        }
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        match *self {
            BuiltinRoute::Null => Ok(Box::new(NullSink::new())),
            BuiltinRoute::Wav { path, paced } => Ok(Box::new(WavSink::create(path, paced)?)),
            #[cfg(any(feature = "device", windows))]
            BuiltinRoute::Device => Ok(Box::new(device::DeviceSink::new()?)),
            #[cfg(not(any(feature = "device", windows)))]
            BuiltinRoute::Device => Err(SinkError::invalid_config(
                "this build has no device output (built without the `device` feature)",
            )),
        }
    }
}
