//! Output sinks. The same trait serves the built-in sinks and, through an adapter, plugin
//! sinks: negotiate a spec, open, write interleaved f32 without blocking, query status,
//! flush, reset, close.

// The device sink's ring and loss handling are always built (the tests drive them with a
// virtual backend); cpal's devices come with the `device` feature, and always on Windows,
// where WASAPI needs no system packages at build time (on Linux cpal needs the ALSA headers).
pub mod device;
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
    /// A system output device (needs the `device` feature): the one with `device_id` (an id
    /// from [`device::output_devices`]), or the system default, followed when it changes.
    Device { device_id: Option<String> },
    /// Discards audio at real-time pace.
    Null,
    /// Writes what would be heard to a 32-bit float WAV file. `channels` and `sample_rate`
    /// fix the file's format (the engine resamples and mixes to it); each `None` follows
    /// the first track.
    Wav {
        path: PathBuf,
        paced: bool,
        channels: Option<u16>,
        sample_rate: Option<u32>,
    },
}

/// The channel counts a fixed-format wav route takes: mono up to 7.1.
pub const WAV_CHANNELS: std::ops::RangeInclusive<u16> = 1..=8;
/// The sample rates a fixed-format wav route takes, in Hz.
pub const WAV_SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=384_000;

fn check_wav_format(channels: Option<u16>, sample_rate: Option<u32>) -> Result<(), SinkError> {
    if let Some(c) = channels.filter(|c| !WAV_CHANNELS.contains(c)) {
        return Err(SinkError::invalid_config(format!(
            "wav route: channels must be {} to {}, not {c}",
            WAV_CHANNELS.start(),
            WAV_CHANNELS.end()
        )));
    }
    if let Some(r) = sample_rate.filter(|r| !WAV_SAMPLE_RATES.contains(r)) {
        return Err(SinkError::invalid_config(format!(
            "wav route: sample_rate must be {} to {} Hz, not {r}",
            WAV_SAMPLE_RATES.start(),
            WAV_SAMPLE_RATES.end()
        )));
    }
    Ok(())
}

impl SinkFactory for BuiltinRoute {
    fn describe(&self) -> String {
        match self {
            BuiltinRoute::Device { device_id: None } => "device".into(),
            BuiltinRoute::Device {
                device_id: Some(id),
            } => format!("device:{id}"),
            BuiltinRoute::Null => "null".into(),
            BuiltinRoute::Wav {
                path,
                paced,
                channels,
                sample_rate,
            } => {
                let mut format = String::new();
                if let Some(c) = channels {
                    format.push_str(&format!(" {c} ch"));
                }
                if let Some(r) = sample_rate {
                    format.push_str(&format!(" {r} Hz"));
                }
                format!(
                    "wav:{}{}{format}",
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
            BuiltinRoute::Wav {
                path,
                channels,
                sample_rate,
                ..
            } => {
                check_wav_format(*channels, *sample_rate)?;
                std::fs::File::create(path)
                    .map(drop)
                    .map_err(|e| SinkError::io(format!("cannot create {}", path.display()), e))
            }
            BuiltinRoute::Device { device_id } => {
                device::system_backend()?;
                match device_id {
                    Some(id) if id.trim().is_empty() => Err(SinkError::invalid_config(
                        "`device_id` is empty (leave it out to follow the system default)",
                    )),
                    _ => Ok(()),
                }
            }
        }
    }

    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError> {
        match *self {
            BuiltinRoute::Null => Ok(Box::new(NullSink::new())),
            BuiltinRoute::Wav {
                path,
                paced,
                channels,
                sample_rate,
            } => {
                check_wav_format(channels, sample_rate)?;
                Ok(Box::new(
                    WavSink::create(path, paced)?.with_format(channels, sample_rate),
                ))
            }
            BuiltinRoute::Device { device_id } => Ok(Box::new(device::DeviceSink::new(
                device::system_backend()?,
                device_id,
            ))),
        }
    }
}
