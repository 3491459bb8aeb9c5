use std::path::PathBuf;

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
    #[error("output sink error: {0}")]
    Sink(String),
    #[error("engine is shut down")]
    EngineStopped,
    #[error("engine did not answer within {0} ms")]
    Timeout(u64),
}

pub type Result<T, E = AudioError> = std::result::Result<T, E>;
