use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::error::HostError;

static LOGGING: OnceLock<()> = OnceLock::new();

pub fn parse_filter(filter: &str) -> Result<EnvFilter, HostError> {
    EnvFilter::try_new(filter)
        .map_err(|e| HostError::InvalidArgument(format!("config: log_filter {filter:?}: {e}")))
}

/// Installs the log subscriber once per process. Later calls, and calls in a process whose
/// host application already installed a subscriber, change nothing and never panic.
pub fn init_logging(filter: Option<&str>, format: LogFormat) {
    LOGGING.get_or_init(|| {
        let filter = filter
            .and_then(|f| parse_filter(f).ok())
            .or_else(|| EnvFilter::try_from_default_env().ok())
            .unwrap_or_else(|| EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_thread_names(true);
        let installed = match format {
            LogFormat::Text => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        if installed.is_err() {
            tracing::debug!("a log subscriber was already installed; keeping it");
        }
    });
}
