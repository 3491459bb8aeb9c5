//! The track side of the control thread: the current and the queued track, starting,
//! seeking and stopping playback, what the decode worker reports about tracks, and the
//! position events derived from the frames the sink took. Positions count written frames,
//! not decoded ones, so they follow what is actually heard.

use std::time::{Duration, Instant};

use super::control::Control;
use super::output::Pending;
use crate::error::{AudioError, Result};
use crate::event::{EngineEvent, PlaybackState, TrackId};
use crate::source::{TrackInfo, TrackSource};
use crate::worker::{WorkerCmd, WorkerMsg};
use stellatune_core::StreamSpec;

const POSITION_INTERVAL: Duration = Duration::from_millis(250);

pub(super) struct CurrentTrack {
    pub(super) id: TrackId,
    pub(super) info: TrackInfo,
    /// Where this track's written frames are counted from.
    pub(super) start_ms: u64,
    pub(super) frames_written: u64,
    /// True once the worker confirmed the track and its TrackStarted event went out.
    pub(super) announced: bool,
}

impl Control {
    pub(super) fn position_ms(&self) -> u64 {
        match (&self.current, self.sink.as_ref().and_then(|s| s.spec)) {
            (Some(c), Some(spec)) => c.start_ms + spec.frames_to_ms(c.frames_written),
            (Some(c), None) => c.start_ms,
            _ => 0,
        }
    }

    pub(super) fn play(&mut self, source: TrackSource) -> Result<TrackId> {
        if self.sink.is_none() {
            return Err(AudioError::NoRoute);
        }
        self.stop_playback();
        let spec = self.ensure_sink_open(source.info().spec())?;
        let id = self.allocate_track_id();
        self.epoch += 1;
        self.current = Some(CurrentTrack {
            id,
            info: source.info().clone(),
            start_ms: 0,
            frames_written: 0,
            announced: false,
        });
        let _ = self.worker_tx.send(WorkerCmd::Load {
            epoch: self.epoch,
            track_id: id,
            source,
            spec,
            start_ms: 0,
        });
        self.last_position_event = None;
        // A new track starts from silence: no ramp, or a volume set while stopped is late.
        self.applied_volume = self.volume;
        self.set_state(PlaybackState::Playing);
        Ok(id)
    }

    pub(super) fn seek(&mut self, position_ms: u64) -> Result<()> {
        let Some(current) = self.current.as_ref() else {
            return Err(AudioError::NothingPlaying);
        };
        if let Some(duration) = current.info.duration_ms {
            if position_ms > duration {
                return Err(AudioError::InvalidArgument(format!(
                    "seek to {position_ms} ms is past the end ({duration} ms)"
                )));
            }
        }
        let spec = self
            .sink
            .as_ref()
            .and_then(|s| s.spec)
            .ok_or(AudioError::NoRoute)?;
        self.reposition(position_ms, spec);
        self.emit_position(true);
        Ok(())
    }

    /// Restarts decoding of the current track at `position_ms` in `spec`, dropping what was
    /// decoded ahead.
    pub(super) fn reposition(&mut self, position_ms: u64, spec: StreamSpec) {
        let Some(current) = self.current.as_mut() else {
            return;
        };
        self.epoch += 1;
        current.start_ms = position_ms;
        current.frames_written = 0;
        self.pending = None;
        if let Some(sink) = self.sink.as_mut() {
            let _ = sink.sink.reset();
        }
        for stage in &mut self.dsp {
            stage.reset();
        }
        let _ = self.worker_tx.send(WorkerCmd::Seek {
            epoch: self.epoch,
            track_id: current.id,
            position_ms,
            spec,
        });
    }

    pub(super) fn stop_playback(&mut self) {
        let was_active = self.current.is_some() || self.state != PlaybackState::Stopped;
        self.epoch += 1;
        let _ = self.worker_tx.send(WorkerCmd::Stop { epoch: self.epoch });
        self.pending = None;
        self.queued_next = None;
        if let Some(current) = self.current.take() {
            if current.announced {
                self.emit(EngineEvent::TrackEnded {
                    track_id: current.id,
                });
            }
        }
        if was_active {
            if let Some(sink) = self.sink.as_mut() {
                let _ = sink.sink.reset();
            }
            self.reset_dsp();
        }
        self.set_state(PlaybackState::Stopped);
    }

    pub(super) fn on_worker(&mut self, msg: WorkerMsg) {
        if msg.epoch() != self.epoch {
            return;
        }
        match msg {
            WorkerMsg::TrackStarted {
                track_id,
                info,
                start_ms,
                ..
            } => {
                let is_queued = self.queued_next.as_ref().map(|q| q.0) == Some(track_id);
                if is_queued {
                    self.queued_next = None;
                    self.current = Some(CurrentTrack {
                        id: track_id,
                        info: info.clone(),
                        start_ms,
                        frames_written: 0,
                        announced: false,
                    });
                }
                if let Some(current) = self.current.as_mut().filter(|c| c.id == track_id) {
                    current.announced = true;
                    self.last_position_event = None;
                    self.emit(EngineEvent::TrackStarted { track_id, info });
                }
            }
            WorkerMsg::Block {
                track_id, samples, ..
            } => {
                // Blocks of a queued track that was replaced after the worker started it.
                if self.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                let mut samples = samples;
                self.run_dsp(&mut samples);
                self.pending = Some(Pending {
                    track_id,
                    samples,
                    offset: 0,
                });
            }
            WorkerMsg::TrackEnded { track_id, .. } => {
                if self.current.as_ref().map(|c| c.id) != Some(track_id) {
                    return;
                }
                self.emit_position(true);
                self.emit(EngineEvent::TrackEnded { track_id });
                self.current = None;
                if self.queued_next.is_none() {
                    if let Some(sink) = self.sink.as_mut() {
                        if let Err(e) = sink.sink.flush() {
                            self.emit(EngineEvent::Error {
                                message: e.to_string(),
                                track_id: Some(track_id),
                            });
                        }
                    }
                    self.set_state(PlaybackState::Stopped);
                }
            }
            WorkerMsg::Error {
                track_id, error, ..
            } => {
                tracing::warn!(track_id, error = %error, "decode error");
                self.emit(EngineEvent::Error {
                    message: error.to_string(),
                    track_id: Some(track_id),
                });
            }
        }
    }

    pub(super) fn emit_position(&mut self, force: bool) {
        let now = Instant::now();
        let due = self
            .last_position_event
            .is_none_or(|t| now.duration_since(t) >= POSITION_INTERVAL);
        if !(force || due) {
            return;
        }
        let Some(current) = self.current.as_ref() else {
            return;
        };
        if !current.announced {
            return;
        }
        self.last_position_event = Some(now);
        self.emit(EngineEvent::Position {
            track_id: current.id,
            position_ms: self.position_ms(),
            duration_ms: current.info.duration_ms,
        });
    }
}
