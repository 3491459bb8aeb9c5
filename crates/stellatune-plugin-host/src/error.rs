use std::path::PathBuf;

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum PluginError {
    #[error("plugin.json in {dir}: {message}")]
    Manifest { dir: PathBuf, message: String },
    #[error("cannot install {path}: {message}")]
    Install { path: PathBuf, message: String },
    #[error("unknown plugin `{0}`")]
    UnknownPlugin(String),
    #[error("plugin `{plugin}` has no {kind} named `{type_id}`{hint}")]
    UnknownCapability {
        plugin: String,
        kind: &'static str,
        type_id: String,
        hint: String,
    },
    #[error("cannot load plugin `{plugin}` from {library}: {message}")]
    Load {
        plugin: String,
        library: PathBuf,
        message: String,
    },
    #[error(
        "plugin `{plugin}` was built for plugin ABI {plugin_major}.{plugin_minor}; this host speaks {host_major}.{host_minor} (major must match, minor must not be newer)"
    )]
    AbiMismatch {
        plugin: String,
        plugin_major: u32,
        plugin_minor: u32,
        host_major: u32,
        host_minor: u32,
    },
    #[error("plugin `{plugin}` failed in {call}: {message}")]
    Call {
        plugin: String,
        call: &'static str,
        code: i32,
        message: String,
    },
    #[error("plugin `{plugin}` did not return from {call} within {timeout_ms} ms")]
    Hung {
        plugin: String,
        call: &'static str,
        timeout_ms: u64,
    },
    #[error("{0}")]
    Io(String),
}

pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// A plugin failure on the output path keeps its kind and its status: a sidecar that died
/// (`DISCONNECTED`) is an output that went away, a call that did not return is `Hung`, any
/// other failure is the plugin's, with its status code.
impl From<PluginError> for stellatune_core::SinkError {
    fn from(error: PluginError) -> Self {
        use stellatune_core::SinkError;
        use stellatune_plugin_api::status;
        match &error {
            PluginError::Hung {
                plugin,
                call,
                timeout_ms,
            } => SinkError::Hung {
                what: format!("plugin `{plugin}` {call}"),
                timeout_ms: *timeout_ms,
            },
            PluginError::Call { code, .. } if *code == status::DISCONNECTED => {
                SinkError::Disconnected {
                    message: error.to_string(),
                    source: Some(std::sync::Arc::new(error)),
                }
            }
            PluginError::Call { code, .. } => SinkError::plugin(*code, error.clone()),
            _ => SinkError::plugin(status::ERROR, error),
        }
    }
}
