//! Plugin DSP transforms, adapted to the engine's `DspStage` trait.

use std::ffi::c_void;
use std::sync::Arc;

use stellatune_core::{DspStage, SinkError, StreamSpec};
use stellatune_plugin_api::{DspVTable, StSpec, StStr};

use crate::generation::Generation;

/// A DSP transform of one plugin generation. The plugin instance is made for a spec, so it
/// is (re)created in `prepare`; holding the stage keeps the generation loaded.
pub struct PluginDsp {
    generation: Arc<Generation>,
    vtable: &'static DspVTable,
    type_id: String,
    config: String,
    instance: *mut c_void,
    channels: usize,
}

// SAFETY: the ABI requires instances to accept calls from any thread, one at a time; the
// engine calls a stage only from its control thread.
unsafe impl Send for PluginDsp {}

impl PluginDsp {
    pub(crate) fn new(
        generation: Arc<Generation>,
        vtable: &'static DspVTable,
        type_id: String,
        config: String,
    ) -> Self {
        Self {
            generation,
            vtable,
            type_id,
            config,
            instance: std::ptr::null_mut(),
            channels: 1,
        }
    }

    fn destroy(&mut self) {
        if !self.instance.is_null() {
            (self.vtable.destroy)(self.instance);
            self.instance = std::ptr::null_mut();
        }
    }
}

impl DspStage for PluginDsp {
    fn describe(&self) -> String {
        format!(
            "plugin:{}/{} (generation {})",
            self.generation.plugin_id(),
            self.type_id,
            self.generation.number()
        )
    }

    fn prepare(&mut self, spec: StreamSpec) -> Result<(), SinkError> {
        self.destroy();
        let mut instance = std::ptr::null_mut();
        let st = (self.vtable.create)(
            StStr::borrowed(&self.config),
            StSpec {
                sample_rate: spec.sample_rate,
                channels: spec.channels,
            },
            &mut instance,
        );
        self.generation
            .check("dsp create", st)
            .map_err(SinkError::from)?;
        if instance.is_null() {
            return Err(SinkError::from(crate::PluginError::Call {
                plugin: self.generation.plugin_id().to_owned(),
                call: "dsp create",
                code: stellatune_plugin_api::status::ERROR,
                message: "create succeeded but returned no instance".into(),
            }));
        }
        self.instance = instance;
        self.channels = usize::from(spec.channels.max(1));
        Ok(())
    }

    fn process(&mut self, interleaved: &mut [f32]) -> Result<(), SinkError> {
        if self.instance.is_null() {
            return Err(SinkError::invalid_config("dsp used before prepare"));
        }
        // The engine's blocks hold whole frames of the prepared spec.
        let frames = interleaved.len() / self.channels;
        let st = (self.vtable.process)(self.instance, interleaved.as_mut_ptr(), frames);
        self.generation
            .check("dsp process", st)
            .map_err(SinkError::from)
    }

    fn reset(&mut self) {
        if !self.instance.is_null() {
            let st = (self.vtable.reset)(self.instance);
            if let Err(e) = self.generation.check("dsp reset", st) {
                tracing::warn!(error = %e, "plugin dsp reset failed");
            }
        }
    }
}

impl Drop for PluginDsp {
    fn drop(&mut self) {
        self.destroy();
    }
}
