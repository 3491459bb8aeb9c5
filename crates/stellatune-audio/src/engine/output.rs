//! The output side of the control thread: the open sink and the spec it was opened with,
//! negotiating and (re)opening it for a track, replacing it when a route is applied,
//! writing decoded blocks with the volume ramp, and draining and closing it. A sink is only
//! ever touched from the control thread.

use super::control::Control;
use crate::error::{AudioError, Result};
use crate::event::{EngineEvent, TrackId};
use crate::sink::{Sink, SinkFactory};
use stellatune_core::StreamSpec;

/// The most frames offered to a sink in one write, so volume changes apply promptly.
const WRITE_FRAMES: usize = 2048;
/// One-pole smoothing per frame for volume changes: about 5 ms to settle, no clicks.
const VOLUME_SMOOTHING: f32 = 0.005;

pub(super) struct OpenSink {
    pub(super) sink: Box<dyn Sink>,
    pub(super) describe: String,
    pub(super) spec: Option<StreamSpec>,
}

/// A decoded block, partly written: a sink may take fewer frames than offered.
pub(super) struct Pending {
    pub(super) track_id: TrackId,
    pub(super) samples: Vec<f32>,
    pub(super) offset: usize,
}

impl Control {
    /// Opens the sink for `track_spec` if it is not open yet, or reopens it when it would
    /// take this track natively and nothing of the old spec is queued.
    pub(super) fn ensure_sink_open(&mut self, track_spec: StreamSpec) -> Result<StreamSpec> {
        let sink = self.sink.as_mut().ok_or(AudioError::NoRoute)?;
        let wanted = sink.sink.negotiate(track_spec).map_err(AudioError::Sink)?;
        if sink.spec != Some(wanted) {
            if sink.spec.is_some() {
                let _ = sink.sink.close();
                sink.spec = None;
            }
            sink.sink.open(wanted).map_err(AudioError::Sink)?;
            sink.spec = Some(wanted);
        }
        Ok(wanted)
    }

    pub(super) fn apply_route(&mut self, factory: Box<dyn SinkFactory>) -> Result<()> {
        let describe = factory.describe();
        let mut sink = factory.create().map_err(AudioError::Sink)?;
        let preferred = self
            .current
            .as_ref()
            .map(|c| c.info.spec())
            .or_else(|| self.sink.as_ref().and_then(|s| s.spec));
        let mut opened = None;
        if let (Some(preferred), true) = (preferred, self.current.is_some()) {
            // Something is playing: the new sink must take over at once.
            let spec = sink.negotiate(preferred).map_err(AudioError::Sink)?;
            sink.open(spec).map_err(AudioError::Sink)?;
            opened = Some(spec);
        }
        let old_spec = self.sink.as_ref().and_then(|s| s.spec);
        self.close_sink();
        tracing::info!(route = %describe, "output route applied");
        self.sink = Some(OpenSink {
            sink,
            describe: describe.clone(),
            spec: opened,
        });
        if let Some(spec) = opened {
            if old_spec != Some(spec) {
                let position = self.position_ms();
                self.reposition(position, spec);
            }
        }
        self.emit(EngineEvent::RouteChanged {
            route: Some(describe),
        });
        Ok(())
    }

    pub(super) fn close_sink(&mut self) {
        if let Some(mut open) = self.sink.take() {
            if let Err(e) = open.sink.flush() {
                tracing::warn!(route = %open.describe, error = %e, "sink flush failed");
            }
            if let Err(e) = open.sink.close() {
                tracing::warn!(route = %open.describe, error = %e, "sink close failed");
            }
        }
    }

    /// Writes what the sink takes now. Returns false when the sink took nothing.
    pub(super) fn write_pending(&mut self) -> bool {
        let (Some(pending), Some(sink)) = (self.pending.as_mut(), self.sink.as_mut()) else {
            return false;
        };
        let Some(spec) = sink.spec else {
            return false;
        };
        let channels = usize::from(spec.channels);
        let remaining = &pending.samples[pending.offset..];
        let offer = remaining.len().min(WRITE_FRAMES * channels);
        let chunk = &remaining[..offer];
        let exact = self.volume == 1.0 && self.applied_volume == 1.0;
        let result = if exact {
            sink.sink.write(chunk)
        } else {
            self.scratch.clear();
            let mut gain = self.applied_volume;
            for frame in chunk.chunks_exact(channels) {
                gain += (self.volume - gain) * VOLUME_SMOOTHING;
                self.scratch.extend(frame.iter().map(|s| s * gain));
            }
            let result = sink.sink.write(&self.scratch);
            if let Ok(taken) = result {
                // Recompute the gain the taken frames ended on, so untaken ones ramp again.
                let mut g = self.applied_volume;
                for _ in 0..taken {
                    g += (self.volume - g) * VOLUME_SMOOTHING;
                }
                self.applied_volume = if (g - self.volume).abs() < 1e-4 {
                    self.volume
                } else {
                    g
                };
            }
            result
        };
        let taken = match result {
            Ok(n) => n,
            Err(e) => {
                let track = pending.track_id;
                self.fail(Some(track), format!("output failed: {e}"));
                return false;
            }
        };
        pending.offset += taken * channels;
        if pending.offset >= pending.samples.len() {
            self.pending = None;
        }
        if let Some(current) = self.current.as_mut() {
            current.frames_written += taken as u64;
        }
        self.total_frames_written += taken as u64;
        self.emit_position(false);
        taken > 0
    }
}
