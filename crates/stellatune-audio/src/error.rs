use std::path::PathBuf;

use stellatune_core::SinkError;

/// Everything the engine can refuse or fail at. Each variant carries enough context for a
/// front end to show the user what went wrong without reading logs.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AudioError {
    #[error("file not found: {0}")]
    NotFound(PathBuf),
    #[error("not a regular file: {0}")]
    NotAFile(PathBuf),
    #[error("cannot read {path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("unsupported format: {path}: {message}")]
    Unsupported { path: PathBuf, message: String },
    #[error("cannot decode {path}: {message}")]
    Decode { path: PathBuf, message: String },
    #[error("no output route is set; apply a route before playing")]
    NoRoute,
    #[error("nothing is playing")]
    NothingPlaying,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The output failed; the sink's typed error (and a plugin's status) is kept.
    #[error("output sink error: {0}")]
    Sink(#[source] SinkError),
    /// A DSP stage refused the stream; the stage's typed error is kept.
    #[error("dsp {stage}: {source}")]
    Dsp { stage: String, source: SinkError },
    /// The engine could not start one of its threads.
    #[error("cannot start the engine's {thread} thread: {message}")]
    ThreadSpawn {
        thread: &'static str,
        message: String,
    },
    #[error("engine is shut down")]
    EngineStopped,
    #[error("engine did not answer within {0} ms")]
    Timeout(u64),
}

pub type Result<T, E = AudioError> = std::result::Result<T, E>;
