//! The typed failure of an output stage. A plugin's status code and the error it came with
//! travel inside it unchanged, so the C edge maps one failure to one code whichever thread
//! noticed it (create, open, write or close; sink or DSP stage).

use std::sync::Arc;

/// The error that caused another, shared so that errors stay `Clone` (the engine hands one
/// error to a reply and to an event).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a sink or a DSP stage failed. `source()` gives the cause itself (an `io::Error`, the
/// plugin host's error), so a caller can downcast it.
#[derive(Debug, Clone)]
pub enum SinkError {
    /// The device or backend refused or failed (no device, a stream config it rejects, a
    /// backend error while playing).
    Device {
        message: String,
        source: Option<ErrorSource>,
    },
    /// The output went away while in use (a device unplugged, a sidecar that died).
    Disconnected {
        message: String,
        source: Option<ErrorSource>,
    },
    /// The output's configuration was refused (a route config, a spec it cannot take, a call
    /// out of order).
    InvalidConfig(String),
    /// Reading or writing a file failed.
    Io {
        context: String,
        source: Arc<std::io::Error>,
    },
    /// A plugin call returned a failure status; `source` is the plugin host's error, which
    /// names the plugin, the call and the plugin's message.
    Plugin { status: i32, source: ErrorSource },
    /// A call did not return in time and was abandoned.
    Hung { what: String, timeout_ms: u64 },
}

impl std::fmt::Display for SinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Device { message, .. } => f.write_str(message),
            Self::Disconnected { message, .. } => write!(f, "output disconnected: {message}"),
            Self::InvalidConfig(message) => write!(f, "invalid output configuration: {message}"),
            Self::Io { context, source } => write!(f, "{context}: {source}"),
            Self::Plugin { source, .. } => write!(f, "{source}"),
            Self::Hung { what, timeout_ms } => {
                write!(f, "{what} did not return within {timeout_ms} ms")
            }
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Through the Arc to the cause itself: an `Arc<io::Error>` would not downcast to
        // `io::Error`.
        match self {
            Self::Device { source, .. } | Self::Disconnected { source, .. } => source
                .as_deref()
                .map(|e| e as &(dyn std::error::Error + 'static)),
            Self::Io { source, .. } => Some(&**source),
            Self::Plugin { source, .. } => Some(&**source),
            Self::InvalidConfig(_) | Self::Hung { .. } => None,
        }
    }
}

impl SinkError {
    pub fn device(message: impl Into<String>) -> Self {
        Self::Device {
            message: message.into(),
            source: None,
        }
    }

    pub fn device_caused_by(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Device {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    pub fn disconnected(message: impl Into<String>) -> Self {
        Self::Disconnected {
            message: message.into(),
            source: None,
        }
    }

    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::InvalidConfig(message.into())
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub fn plugin(status: i32, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Plugin {
            status,
            source: Arc::new(source),
        }
    }
}

/// Equal when of the same kind with the same text: sources are compared by what they say.
impl PartialEq for SinkError {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn the_cause_is_kept_as_the_source() {
        let e = SinkError::io(
            "cannot create out.wav",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        let source = e.source().expect("io errors keep their cause");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::PermissionDenied);
        assert!(e.to_string().starts_with("cannot create out.wav: "));
    }

    #[test]
    fn a_plugin_failure_keeps_its_status_and_message() {
        let cause = std::io::Error::other("plugin `p` failed in open: no such device");
        let e = SinkError::plugin(-7, cause);
        assert!(matches!(e, SinkError::Plugin { status: -7, .. }));
        assert_eq!(e.to_string(), "plugin `p` failed in open: no such device");
        assert!(
            e.source()
                .unwrap()
                .downcast_ref::<std::io::Error>()
                .is_some()
        );
    }

    #[test]
    fn kinds_differ_even_with_the_same_text() {
        assert_ne!(SinkError::device("x"), SinkError::disconnected("x"));
        assert_eq!(SinkError::device("x"), SinkError::device("x"));
    }
}
