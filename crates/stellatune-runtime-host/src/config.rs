use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::HostError;

pub const DEFAULT_CLIENT_LEASE: Duration = Duration::from_secs(30);
pub const DEFAULT_EVENT_QUEUE_CAPACITY: usize = 256;
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Runtime configuration, as given to `runtime_init` in JSON. Every key is optional;
/// an unknown key is refused so that a typo does not silently fall back to a default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Plugins, ring files and logs live here. Default: the per-user data directory.
    pub data_dir: Option<PathBuf>,
    /// Default: `<data_dir>/plugins`.
    pub plugin_dir: Option<PathBuf>,
    /// How long a client may stay silent before it is evicted. Default 30 000.
    pub client_lease_ms: Option<u64>,
    /// A `tracing` filter such as `info` or `stellatune=debug`. Default `info`, or `RUST_LOG`.
    pub log_filter: Option<String>,
    pub log_format: Option<LogFormat>,
    /// Events a client's queue holds before the oldest are dropped. Default 256.
    pub event_queue_capacity: Option<usize>,
    /// How long shutdown waits for the runtime's threads. Default 5000.
    pub shutdown_timeout_ms: Option<u64>,
    /// Deliberate defects, for proving that leak gates fail when they should. Accepted only
    /// by builds with the `fault-injection` cargo feature, which release artifacts leave off;
    /// elsewhere the key is refused with an error that says so.
    pub fault_injection: Option<FaultInjection>,
}

/// Defects the runtime can be told to have, so that the hot-restart stress gate can show it
/// catches them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultInjection {
    /// Every attach starts a thread that never ends.
    pub leak_thread_per_attach: bool,
    /// `prepare_hot_restart` and lease expiry evict nobody.
    pub skip_eviction: bool,
}

impl HostConfig {
    pub fn from_json(json: &str) -> Result<Self, HostError> {
        let config: HostConfig = crate::json::parse(json, "config")?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), HostError> {
        if self.client_lease_ms == Some(0) {
            return Err(HostError::InvalidArgument(
                "config: client_lease_ms must be greater than 0".into(),
            ));
        }
        if self.event_queue_capacity == Some(0) {
            return Err(HostError::InvalidArgument(
                "config: event_queue_capacity must be greater than 0".into(),
            ));
        }
        if let Some(filter) = &self.log_filter {
            crate::logging::parse_filter(filter)?;
        }
        if self.fault_injection.is_some() && !cfg!(feature = "fault-injection") {
            return Err(HostError::InvalidArgument(
                "config: fault_injection is only accepted by a build with the `fault-injection` \
                 cargo feature (a test build); this build refuses deliberate defects"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The deliberate defects in force: none unless the build allows them.
    pub(crate) fn faults(&self) -> FaultInjection {
        if cfg!(feature = "fault-injection") {
            self.fault_injection.clone().unwrap_or_default()
        } else {
            FaultInjection::default()
        }
    }

    pub fn client_lease(&self) -> Duration {
        self.client_lease_ms
            .map_or(DEFAULT_CLIENT_LEASE, Duration::from_millis)
    }

    pub fn event_queue_capacity(&self) -> usize {
        self.event_queue_capacity
            .unwrap_or(DEFAULT_EVENT_QUEUE_CAPACITY)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        self.shutdown_timeout_ms
            .map_or(DEFAULT_SHUTDOWN_TIMEOUT, Duration::from_millis)
    }

    pub fn resolved_data_dir(&self) -> PathBuf {
        self.data_dir.clone().unwrap_or_else(default_data_dir)
    }

    pub fn resolved_plugin_dir(&self) -> PathBuf {
        self.plugin_dir
            .clone()
            .unwrap_or_else(|| self.resolved_data_dir().join("plugins"))
    }
}

/// `$STELLATUNE_DATA_DIR`, else the platform's per-user data directory.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STELLATUNE_DATA_DIR") {
        return PathBuf::from(dir);
    }
    let base = if cfg!(windows) {
        std::env::var_os("APPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join("Library/Application Support"))
    } else {
        std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
    };
    base.unwrap_or_else(std::env::temp_dir).join("stellatune")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_keys() {
        let c = HostConfig::from_json(
            r#"{"data_dir":"/d","plugin_dir":"/p","client_lease_ms":500,"log_filter":"debug","log_format":"json"}"#,
        )
        .unwrap();
        assert_eq!(c.client_lease(), Duration::from_millis(500));
        assert_eq!(c.log_format, Some(LogFormat::Json));
        assert_eq!(c.resolved_plugin_dir(), PathBuf::from("/p"));
    }

    #[test]
    fn refuses_unknown_and_bad_values_naming_the_field() {
        let e = HostConfig::from_json(r#"{"client_lease":5}"#).unwrap_err();
        assert!(e.to_string().contains("client_lease"), "{e}");
        let e = HostConfig::from_json(r#"{"client_lease_ms":"soon"}"#).unwrap_err();
        assert!(
            e.to_string().contains("client_lease_ms") || e.to_string().contains("invalid type"),
            "{e}"
        );
        let e = HostConfig::from_json(r#"{"client_lease_ms":0}"#).unwrap_err();
        assert!(e.to_string().contains("client_lease_ms"), "{e}");
        assert!(HostConfig::from_json("{not json").is_err());
        let e = HostConfig::from_json(r#"{"log_format":"xml"}"#).unwrap_err();
        assert!(e.to_string().contains("xml"), "{e}");
    }

    #[test]
    fn fault_injection_only_in_builds_that_allow_it() {
        let parsed = HostConfig::from_json(r#"{"fault_injection":{"skip_eviction":true}}"#);
        if cfg!(feature = "fault-injection") {
            assert!(parsed.unwrap().faults().skip_eviction);
        } else {
            let e = parsed.unwrap_err().to_string();
            assert!(e.contains("fault-injection"), "{e}");
        }
    }
}
