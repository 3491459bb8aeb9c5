use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use super::null::PACED_LEAD;
use super::{Pacer, Sink, SinkError, SinkStatus};
use stellatune_core::StreamSpec;

/// Writes exactly what would be heard (after volume) as 32-bit float WAV. Paced, it runs at
/// real-time speed like a device; unpaced, as fast as the engine can render.
pub struct WavSink {
    path: PathBuf,
    paced: bool,
    file: Option<File>,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    spec: Option<StreamSpec>,
    pacer: Option<Pacer>,
    /// A fixed channel count and rate; `None` takes the first track's.
    channels: Option<u16>,
    sample_rate: Option<u32>,
}

impl WavSink {
    /// Creates the file at once so that an unwritable path is refused when the route is
    /// applied, not when the music starts.
    pub fn create(path: PathBuf, paced: bool) -> Result<Self, SinkError> {
        let file = File::create(&path)
            .map_err(|e| SinkError::io(format!("cannot create {}", path.display()), e))?;
        Ok(Self {
            path,
            paced,
            file: Some(file),
            writer: None,
            spec: None,
            pacer: None,
            channels: None,
            sample_rate: None,
        })
    }

    /// Fixes the file's channel count and/or rate: the engine converts every track to it
    /// (resampling, and the BS.775 downmix or the mono upmix).
    pub fn with_format(mut self, channels: Option<u16>, sample_rate: Option<u32>) -> Self {
        self.channels = channels;
        self.sample_rate = sample_rate;
        self
    }

    fn io_error(&self, e: impl Into<hound::Error>) -> SinkError {
        let io = match e.into() {
            hound::Error::IoError(io) => io,
            other => std::io::Error::other(other),
        };
        SinkError::io(format!("writing {}", self.path.display()), io)
    }
}

impl Sink for WavSink {
    fn describe(&self) -> String {
        format!("wav:{}", self.path.display())
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        // A WAV file has one spec for its whole length: once open it keeps it.
        Ok(self.spec.unwrap_or_else(|| {
            StreamSpec::new(
                self.sample_rate.unwrap_or(preferred.sample_rate),
                self.channels.unwrap_or(preferred.channels),
            )
        }))
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        if self.writer.is_some() {
            if self.spec == Some(spec) {
                return Ok(());
            }
            return Err(SinkError::invalid_config(
                "a wav sink cannot change its spec once written",
            ));
        }
        let file = match self.file.take() {
            Some(f) => f,
            None => File::create(&self.path).map_err(|e| self.io_error(e))?,
        };
        let wav_spec = hound::WavSpec {
            channels: spec.channels,
            sample_rate: spec.sample_rate,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let writer =
            hound::WavWriter::new(BufWriter::new(file), wav_spec).map_err(|e| self.io_error(e))?;
        self.writer = Some(writer);
        self.spec = Some(spec);
        self.pacer = self.paced.then(|| Pacer::new(spec.sample_rate, PACED_LEAD));
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        let Some(spec) = self.spec else {
            return Err(SinkError::invalid_config("wav sink written before open"));
        };
        let channels = usize::from(spec.channels);
        let offered = interleaved.len() / channels;
        let n = match self.pacer.as_mut() {
            Some(p) => p.admit(offered),
            None => offered,
        };
        let writer = self
            .writer
            .as_mut()
            .expect("writer exists while spec is set");
        let mut failure = None;
        for s in &interleaved[..n * channels] {
            if let Err(e) = writer.write_sample(*s) {
                failure = Some(e);
                break;
            }
        }
        match failure {
            Some(e) => Err(self.io_error(e)),
            None => Ok(n),
        }
    }

    fn status(&self) -> SinkStatus {
        self.pacer
            .as_ref()
            .map_or_else(SinkStatus::default, |p| SinkStatus {
                queued_frames: p.queued(),
                underruns: p.underruns(),
            })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let result = match self.writer.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        };
        result.map_err(|e| self.io_error(e))
    }

    fn reset(&mut self) -> Result<(), SinkError> {
        if let Some(p) = self.pacer.as_mut() {
            p.reset();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.pacer = None;
        self.file = None;
        let result = match self.writer.take() {
            Some(w) => w.finalize(),
            None => Ok(()),
        };
        result.map_err(|e| self.io_error(e))
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = self.close();
        }
    }
}
