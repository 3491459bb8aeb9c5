//! In-place processing stages between the decoder and the sink (e.g. plugin DSP). A stage is
//! part of the output path, so it fails with the output path's error, [`SinkError`].

use crate::{SinkError, StreamSpec};

/// One stage of the engine's DSP chain. Runs on the control thread, on interleaved f32 in
/// the output spec, after resampling and before volume.
pub trait DspStage: Send {
    fn describe(&self) -> String;
    /// Called before the first block and whenever the output spec changes.
    fn prepare(&mut self, spec: StreamSpec) -> Result<(), SinkError>;
    fn process(&mut self, interleaved: &mut [f32]) -> Result<(), SinkError>;
    /// Forgets state (filter history) after a seek or stop.
    fn reset(&mut self);
}
