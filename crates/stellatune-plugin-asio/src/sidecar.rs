//! The sidecar client of `stellatune-sidecar-proto`, embedded in this plugin: its processes
//! start through the SDK's `rt` (forked by the long-lived service thread and contained, so
//! none outlives the host), its threads are lent by the host, and its logs, counters and fault
//! reports go through the host callbacks under this plugin's names.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use stellatune_plugin_sdk::{Error, emit_event, log, log_level, metric_add, rt};
use stellatune_sidecar_proto::client::{
    Body, ClientEnv, ClientError, Join, Launch, Level, Spawned,
};

pub use stellatune_sidecar_proto::client::{Fault, Sidecar, StopReason};

pub const SPAWNS_METRIC: &str = "asio_sidecar_spawns_total";
pub const RUNNING_METRIC: &str = "asio_sidecar_running";

/// How the log names a sidecar of this plugin (its threads are `asio-sidecar-writer` and
/// `asio-sidecar-reader`).
const NAME: &str = "asio sidecar";

/// The deliberate stops this plugin makes, as the log says them.
pub const LAST_LEASE_RELEASED: StopReason = StopReason::Deliberate("last lease released");
pub const MODULE_SHUTDOWN: StopReason = StopReason::Deliberate("module shutdown");
/// Another caller spawned a sidecar of the same signature first; theirs is used.
pub const DUPLICATE_SPAWN: StopReason = StopReason::Deliberate("duplicate of a concurrent spawn");

/// What makes two sidecars interchangeable: same executable, same arguments, same device
/// backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub backend: String,
}

/// The plugin side of the client: the SDK's process hygiene and the host's callbacks.
struct PluginEnv;

impl ClientEnv for PluginEnv {
    fn spawn_process(&self, command: Command) -> io::Result<Spawned> {
        let (child, containment) = rt::spawn_contained(command)?;
        Ok(Spawned {
            child,
            keep: Box::new(containment),
        })
    }

    fn spawn_thread(&self, name: &str, body: Body) -> io::Result<Join> {
        let thread = rt::spawn_thread(name, body).map_err(|e| io::Error::other(e.message))?;
        Ok(Box::new(move || {
            // A panic in a pipe thread has nothing left to clean up: the pipe it served
            // closes with it, and the stop that joins it reaps the process.
            let _ = thread.join();
        }))
    }

    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Debug => log_level::DEBUG,
            Level::Info => log_level::INFO,
            Level::Warn => log_level::WARN,
            Level::Error => log_level::ERROR,
        };
        log(level, message);
    }

    fn process_started(&self, _pid: u32) {
        metric_add(SPAWNS_METRIC, 1);
        metric_add(RUNNING_METRIC, 1);
    }

    fn process_ended(&self, _pid: u32) {
        metric_add(RUNNING_METRIC, -1);
    }

    fn faulted(&self, pid: u32, fault: Fault, detail: &str) {
        emit_event(
            "sidecar_exited",
            &serde_json::json!({
                "pid": pid,
                "fault": fault.to_string(),
                "reason": detail,
            })
            .to_string(),
        );
    }
}

/// Starts the sidecar of `signature` and completes the handshake.
pub fn spawn(signature: &Signature) -> Result<Arc<Sidecar>, Error> {
    let launch = Launch {
        name: NAME.to_owned(),
        executable: signature.executable.clone(),
        args: signature.args.clone(),
    };
    Sidecar::spawn(Arc::new(PluginEnv), &launch)
        .map(Arc::new)
        .map_err(client_error)
}

/// The status code the host sees for a client failure.
pub fn client_error(e: ClientError) -> Error {
    let message = e.to_string();
    match e {
        ClientError::Spawn { .. } | ClientError::Pipes | ClientError::Ring { .. } => {
            Error::io(message)
        }
        ClientError::Handshake(_)
        | ClientError::Gone { .. }
        | ClientError::Stopping
        | ClientError::Timeout { .. }
        | ClientError::Exited { .. } => Error::disconnected(message),
        ClientError::Encode(_) => Error::invalid_argument(message),
        ClientError::Thread { .. }
        | ClientError::Refused { .. }
        | ClientError::Unexpected { .. } => Error::other(message),
    }
}
