//! The DSP chain of the output thread: stages are prepared for the output spec before they
//! see audio, run in order on every decoded block, reset on seek and stop, and a stage that
//! fails (to prepare or to process) is removed with an `error` event instead of stopping the
//! music. Stages are created elsewhere but prepared, run and dropped on the output thread.

use super::control::lock;
use super::output::Output;
use crate::event::{EngineEvent, TrackId};
use stellatune_core::DspStage;

impl Output {
    pub(super) fn set_dsp_chain(&mut self, chain: Vec<Box<dyn DspStage>>) {
        // The old stages drop here, on the thread that ran them.
        self.dsp = chain;
        self.dsp_spec = None;
        if self.spec().is_some() {
            self.prepare_dsp(None);
        }
    }

    /// Prepares every stage for the output spec if it changed; removes those that fail.
    fn prepare_dsp(&mut self, track_id: Option<TrackId>) {
        let Some(spec) = self.spec() else {
            return;
        };
        if self.dsp_spec == Some(spec) {
            return;
        }
        self.dsp_spec = Some(spec);
        let mut failed = Vec::new();
        for (i, stage) in self.dsp.iter_mut().enumerate() {
            if let Err(e) = stage.prepare(spec) {
                failed.push((i, e));
            }
        }
        self.remove_failed(failed, track_id);
    }

    pub(super) fn run_dsp(&mut self, samples: &mut [f32], track_id: TrackId) {
        if self.dsp.is_empty() {
            return;
        }
        self.prepare_dsp(Some(track_id));
        let mut failed = Vec::new();
        for (i, stage) in self.dsp.iter_mut().enumerate() {
            if let Err(e) = stage.process(samples) {
                failed.push((i, e));
            }
        }
        self.remove_failed(failed, Some(track_id));
    }

    /// A failing stage is bypassed from now on rather than stopping the music.
    fn remove_failed(
        &mut self,
        failed: Vec<(usize, stellatune_core::SinkError)>,
        track_id: Option<TrackId>,
    ) {
        for (i, e) in failed.into_iter().rev() {
            let stage = self.dsp.remove(i);
            let message = format!("dsp {} failed and was removed: {e}", stage.describe());
            tracing::warn!(message);
            lock(&self.shared).emit(EngineEvent::Error { message, track_id });
        }
    }

    pub(super) fn reset_dsp(&mut self) {
        for stage in &mut self.dsp {
            stage.reset();
        }
    }
}
