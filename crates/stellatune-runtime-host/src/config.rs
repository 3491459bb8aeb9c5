use std::path::PathBuf;
use std::time::Duration;

use crate::error::HostError;

pub const DEFAULT_CLIENT_LEASE: Duration = Duration::from_secs(30);
pub const DEFAULT_EVENT_QUEUE_CAPACITY: usize = 256;
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_LOG_MAX_FILES: usize = 7;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Runtime configuration; `None` means the default. The host does not read JSON: the C ABI
/// owns the JSON form (`stellatune-ffi`'s `wire`), so one parser alone decides which
/// documents a front end may write.
#[derive(Debug, Clone, Default, PartialEq)]
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
    /// Daily log files kept in `<data_dir>/logs`; older ones are deleted when a file is
    /// opened. Default 7; 0 writes no log file (stderr only).
    pub log_max_files: Option<usize>,
    /// Events a client's queue holds before the oldest are dropped. Default 256.
    pub event_queue_capacity: Option<usize>,
    /// How long shutdown waits for the runtime's threads. Default 5000.
    pub shutdown_timeout_ms: Option<u64>,
    /// ReplayGain from the start (a client may change it). Default off.
    pub replaygain: Option<stellatune_audio::ReplayGainSettings>,
    /// Deliberate defects, for proving that leak gates fail when they should. Accepted only
    /// by builds with the `fault-injection` cargo feature, which release artifacts leave off;
    /// elsewhere `validate` refuses it with an error that says so.
    pub fault_injection: Option<FaultInjection>,
}

/// Defects the runtime can be told to have, so that the hot-restart stress gate can show it
/// catches them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultInjection {
    /// Every attach starts a thread that never ends.
    pub leak_thread_per_attach: bool,
    /// `prepare_hot_restart` and lease expiry evict nobody.
    pub skip_eviction: bool,
}

impl HostConfig {
    /// Refuses values no runtime can run with. `init` calls it; a parser calls it too, so that
    /// a bad document fails where it is read.
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
        if let Some(replaygain) = &self.replaygain {
            replaygain
                .validate()
                .map_err(|e| HostError::InvalidArgument(format!("config: {e}")))?;
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

    pub fn log_max_files(&self) -> usize {
        self.log_max_files.unwrap_or(DEFAULT_LOG_MAX_FILES)
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
    //! What the domain checks whoever built the config. Parsing the JSON form (keys,
    //! defaults, errors naming the key) is tested with the parser, in `stellatune-ffi`.

    use super::*;

    #[test]
    fn unset_values_fall_back_to_the_defaults() {
        let c = HostConfig::default();
        c.validate().unwrap();
        assert_eq!(c.client_lease(), DEFAULT_CLIENT_LEASE);
        assert_eq!(c.event_queue_capacity(), DEFAULT_EVENT_QUEUE_CAPACITY);
        assert_eq!(c.shutdown_timeout(), DEFAULT_SHUTDOWN_TIMEOUT);
        assert_eq!(c.log_max_files(), DEFAULT_LOG_MAX_FILES);
        assert_eq!(c.resolved_plugin_dir(), default_data_dir().join("plugins"));

        let c = HostConfig {
            data_dir: Some("/d".into()),
            client_lease_ms: Some(500),
            event_queue_capacity: Some(4),
            shutdown_timeout_ms: Some(100),
            log_max_files: Some(0),
            ..HostConfig::default()
        };
        assert_eq!(c.client_lease(), Duration::from_millis(500));
        assert_eq!(c.log_max_files(), 0);
        assert_eq!(c.event_queue_capacity(), 4);
        assert_eq!(c.shutdown_timeout(), Duration::from_millis(100));
        assert_eq!(c.resolved_plugin_dir(), PathBuf::from("/d/plugins"));
        let c = HostConfig {
            plugin_dir: Some("/p".into()),
            ..c
        };
        assert_eq!(c.resolved_plugin_dir(), PathBuf::from("/p"));
    }

    #[test]
    fn validation_refuses_values_naming_the_field() {
        let error = |c: HostConfig| c.validate().unwrap_err().to_string();
        assert_eq!(
            error(HostConfig {
                client_lease_ms: Some(0),
                ..HostConfig::default()
            }),
            "invalid argument: config: client_lease_ms must be greater than 0"
        );
        assert_eq!(
            error(HostConfig {
                event_queue_capacity: Some(0),
                ..HostConfig::default()
            }),
            "invalid argument: config: event_queue_capacity must be greater than 0"
        );
        let e = error(HostConfig {
            log_filter: Some("stellatune=loud".into()),
            ..HostConfig::default()
        });
        assert!(e.contains("config: log_filter"), "{e}");
        HostConfig {
            log_filter: Some("warn,stellatune_audio=trace".into()),
            ..HostConfig::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn fault_injection_only_in_builds_that_allow_it() {
        let c = HostConfig {
            fault_injection: Some(FaultInjection {
                skip_eviction: true,
                ..FaultInjection::default()
            }),
            ..HostConfig::default()
        };
        if cfg!(feature = "fault-injection") {
            c.validate().unwrap();
            assert!(c.faults().skip_eviction);
        } else {
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("fault-injection"), "{e}");
            assert_eq!(c.faults(), FaultInjection::default());
        }
    }
}
