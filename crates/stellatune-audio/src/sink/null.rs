use std::time::Duration;

use super::{Pacer, Sink, SinkError, SinkStatus};
use stellatune_core::StreamSpec;

/// Discards audio at real-time pace with its own clock.
#[derive(Debug, Default)]
pub struct NullSink {
    spec: Option<StreamSpec>,
    pacer: Option<Pacer>,
    frames_written: u64,
}

impl NullSink {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }
}

/// What a paced sink buffers ahead, like a device buffer: the output thread wakes when about half
/// of it has played, about ten times a second.
pub(crate) const PACED_LEAD: Duration = Duration::from_millis(200);

impl Sink for NullSink {
    fn describe(&self) -> String {
        "null".into()
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        Ok(preferred)
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.spec = Some(spec);
        self.pacer = Some(Pacer::new(spec.sample_rate, PACED_LEAD));
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        let (Some(spec), Some(pacer)) = (self.spec, self.pacer.as_mut()) else {
            return Err(SinkError::invalid_config("null sink written before open"));
        };
        let offered = interleaved.len() / usize::from(spec.channels);
        let n = pacer.admit(offered);
        self.frames_written += n as u64;
        Ok(n)
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
        Ok(())
    }

    fn reset(&mut self) -> Result<(), SinkError> {
        if let Some(p) = self.pacer.as_mut() {
            p.reset();
        }
        Ok(())
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.spec = None;
        self.pacer = None;
        Ok(())
    }
}
