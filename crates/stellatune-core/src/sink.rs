//! The output trait every sink implements: the built-in ones in the engine and, through an
//! adapter in the plugin host, plugin sinks.

use serde::Serialize;

use crate::{SinkError, StreamSpec};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SinkStatus {
    /// Frames accepted but not yet heard.
    pub queued_frames: u64,
    /// Times the sink ran dry while playing.
    pub underruns: u64,
}

/// An audio output. Only the engine's output thread calls it, one call at a time: negotiate
/// a spec, open, write interleaved f32 without blocking, query status, flush, reset, close.
pub trait Sink {
    /// A short human name for logs, e.g. `null` or `wav:/tmp/out.wav`.
    fn describe(&self) -> String;
    /// The spec this sink will take, given the spec the music has.
    fn negotiate(&mut self, preferred: StreamSpec) -> Result<StreamSpec, SinkError>;
    fn open(&mut self, spec: StreamSpec) -> Result<(), SinkError>;
    /// Takes up to `interleaved.len() / channels` frames and returns how many it took. Never
    /// blocks: a paced sink takes fewer frames when its buffer is full.
    fn write(&mut self, interleaved: &[f32]) -> Result<usize, SinkError>;
    fn status(&self) -> SinkStatus;
    /// Pushes buffered output towards the medium (e.g. a file's header and data).
    fn flush(&mut self) -> Result<(), SinkError>;
    /// Drops queued audio at once; the sink stays open and usable.
    fn reset(&mut self) -> Result<(), SinkError>;
    /// True when [`Sink::reset`] fades out what it drops where the audio is played (and fades
    /// in what follows), as an output with a real queue does. The engine then writes no
    /// fade-out of its own after a reset: that would be audio from ahead of what was heard.
    /// False (the default) for a sink whose queue is already written out, such as a file.
    fn fades_on_reset(&self) -> bool {
        false
    }
    /// Releases every external resource. The sink may be opened again afterwards.
    fn close(&mut self) -> Result<(), SinkError>;
}

/// Builds a sink on the engine's output thread. Sinks themselves need not be `Send` (a
/// cpal stream is not), so what crosses threads is the recipe, not the sink.
pub trait SinkFactory: Send {
    fn describe(&self) -> String;
    /// Checks the route on the caller's thread before it goes to the engine, so that a route
    /// that cannot work (an unwritable file, an output this build lacks) is refused by the
    /// call that named it. Quick and non-blocking; what only opening can tell is reported
    /// later, by events.
    fn validate(&self) -> Result<(), SinkError> {
        Ok(())
    }
    fn create(self: Box<Self>) -> Result<Box<dyn Sink>, SinkError>;
}
