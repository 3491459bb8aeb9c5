use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use super::{Sink, SinkError, SinkStatus};
use stellatune_core::StreamSpec;

/// Buffer between the control thread and the device callback.
const DEVICE_BUFFER_MS: u32 = 150;

/// The system's default output device through cpal. The device callback only pops from a
/// lock-free ring, so the real-time thread never waits on the engine.
pub struct DeviceSink {
    device: cpal::Device,
    stream: Option<cpal::Stream>,
    producer: Option<rtrb::Producer<f32>>,
    spec: Option<StreamSpec>,
    underruns: Arc<AtomicU64>,
    capacity: usize,
}

impl DeviceSink {
    pub fn new() -> Result<Self, SinkError> {
        let device = cpal::default_host()
            .default_output_device()
            .ok_or_else(|| SinkError::device("no default output device"))?;
        Ok(Self {
            device,
            stream: None,
            producer: None,
            spec: None,
            underruns: Arc::new(AtomicU64::new(0)),
            capacity: 0,
        })
    }
}

impl Sink for DeviceSink {
    fn describe(&self) -> String {
        format!(
            "device:{}",
            self.device.name().unwrap_or_else(|_| "default".into())
        )
    }

    fn negotiate(&mut self, _preferred: StreamSpec) -> Result<StreamSpec, SinkError> {
        let config = self
            .device
            .default_output_config()
            .map_err(|e| SinkError::device_caused_by(format!("device config: {e}"), e))?;
        Ok(StreamSpec::new(config.sample_rate().0, config.channels()))
    }

    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.close()?;
        let capacity =
            (spec.sample_rate * DEVICE_BUFFER_MS / 1000) as usize * usize::from(spec.channels);
        let (producer, mut consumer) = rtrb::RingBuffer::<f32>::new(capacity);
        let underruns = self.underruns.clone();
        let config = cpal::StreamConfig {
            channels: spec.channels,
            sample_rate: cpal::SampleRate(spec.sample_rate),
            buffer_size: cpal::BufferSize::Default,
        };
        let stream = self
            .device
            .build_output_stream(
                &config,
                move |out: &mut [f32], _| {
                    let n = consumer.slots().min(out.len());
                    if let Ok(chunk) = consumer.read_chunk(n) {
                        let (a, b) = chunk.as_slices();
                        out[..a.len()].copy_from_slice(a);
                        out[a.len()..a.len() + b.len()].copy_from_slice(b);
                        chunk.commit_all();
                    }
                    if n < out.len() {
                        out[n..].fill(0.0);
                        underruns.fetch_add(1, Ordering::Relaxed);
                    }
                },
                |e| tracing::warn!(error = %e, "output device error"),
                None,
            )
            .map_err(|e| SinkError::device_caused_by(format!("open device stream: {e}"), e))?;
        stream
            .play()
            .map_err(|e| SinkError::device_caused_by(format!("start device stream: {e}"), e))?;
        self.stream = Some(stream);
        self.producer = Some(producer);
        self.spec = Some(spec);
        self.capacity = capacity;
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError> {
        let (Some(spec), Some(producer)) = (self.spec, self.producer.as_mut()) else {
            return Err(SinkError::invalid_config("device sink written before open"));
        };
        let channels = usize::from(spec.channels);
        let frames = (producer.slots() / channels).min(interleaved.len() / channels);
        if frames == 0 {
            return Ok(0);
        }
        let chunk = producer
            .write_chunk_uninit(frames * channels)
            .map_err(|e| SinkError::device_caused_by(e.to_string(), e))?;
        let written = chunk.fill_from_iter(interleaved[..frames * channels].iter().copied());
        debug_assert_eq!(written, frames * channels);
        Ok(frames)
    }

    fn status(&self) -> SinkStatus {
        let queued = match (&self.producer, self.spec) {
            (Some(p), Some(spec)) => {
                ((self.capacity - p.slots()) / usize::from(spec.channels)) as u64
            }
            _ => 0,
        };
        SinkStatus {
            queued_frames: queued,
            underruns: self.underruns.load(Ordering::Relaxed),
        }
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn reset(&mut self) -> Result<(), SinkError> {
        // Reopening drops whatever is queued in the ring at once.
        match self.spec {
            Some(spec) => self.open(spec),
            None => Ok(()),
        }
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.stream = None;
        self.producer = None;
        self.spec = None;
        Ok(())
    }
}
