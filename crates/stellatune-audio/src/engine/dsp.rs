//! The DSP chain of the control thread: stages are prepared for the output spec before they
//! see audio, run in order on every decoded block, reset on seek and stop, and a stage that
//! fails is removed with an `error` event instead of stopping the music. Stages are created,
//! run and dropped on the control thread only.

use super::control::Control;
use crate::error::{AudioError, Result};
use crate::event::EngineEvent;
use stellatune_core::DspStage;

impl Control {
    pub(super) fn set_dsp_chain(&mut self, mut chain: Vec<Box<dyn DspStage>>) -> Result<()> {
        if let Some(spec) = self.sink.as_ref().and_then(|s| s.spec) {
            for stage in &mut chain {
                stage.prepare(spec).map_err(|source| AudioError::Dsp {
                    stage: stage.describe(),
                    source,
                })?;
            }
            self.dsp_spec = Some(spec);
        } else {
            self.dsp_spec = None;
        }
        let names: Vec<String> = chain.iter().map(|s| s.describe()).collect();
        tracing::info!(chain = ?names, "dsp chain set");
        // The old stages drop here, on the control thread that ran them.
        self.dsp = chain;
        Ok(())
    }

    pub(super) fn run_dsp(&mut self, samples: &mut [f32]) {
        if self.dsp.is_empty() {
            return;
        }
        let Some(spec) = self.sink.as_ref().and_then(|s| s.spec) else {
            return;
        };
        let mut failed = Vec::new();
        if self.dsp_spec != Some(spec) {
            for (i, stage) in self.dsp.iter_mut().enumerate() {
                if let Err(e) = stage.prepare(spec) {
                    failed.push((i, e));
                }
            }
            self.dsp_spec = Some(spec);
        }
        for (i, stage) in self.dsp.iter_mut().enumerate() {
            if failed.iter().any(|(f, _)| *f == i) {
                continue;
            }
            if let Err(e) = stage.process(samples) {
                failed.push((i, e));
            }
        }
        // A failing stage is bypassed from now on rather than stopping the music.
        for (i, e) in failed.into_iter().rev() {
            let stage = self.dsp.remove(i);
            let message = format!("dsp {} failed and was removed: {e}", stage.describe());
            tracing::warn!(message);
            self.emit(EngineEvent::Error {
                message,
                track_id: self.current.as_ref().map(|c| c.id),
            });
        }
    }

    pub(super) fn reset_dsp(&mut self) {
        for stage in &mut self.dsp {
            stage.reset();
        }
    }
}
