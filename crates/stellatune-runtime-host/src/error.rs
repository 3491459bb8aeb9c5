use stellatune_audio::AudioError;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum HostError {
    #[error("runtime is not initialised (call runtime_init first)")]
    NotInitialized,
    #[error("runtime is shutting down")]
    ShuttingDown,
    #[error("unknown client {0}")]
    UnknownClient(u64),
    #[error("client {0} was disposed")]
    ClientDisposed(u64),
    #[error("client {id} was evicted: {reason}")]
    ClientEvicted { id: u64, reason: String },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error(transparent)]
    Audio(#[from] AudioError),
    #[error(transparent)]
    Plugin(#[from] stellatune_plugin_host::PluginError),
    #[error("plugins are unavailable: the plugin directory could not be prepared")]
    PluginsUnavailable,
    #[error(
        "shutdown did not finish within {timeout_ms} ms; {threads_left} runtime threads still alive"
    )]
    ShutdownTimeout {
        timeout_ms: u64,
        threads_left: usize,
    },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = HostError> = std::result::Result<T, E>;
