//! What the child measures after every cycle, the messages it streams to the parent (one JSON
//! object per stdout line), and the process probes.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The runtime's `stellatune_runtime_metrics_json`. Missing keys read as 0, so an older or
/// newer library still parses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeMetrics {
    pub state: String,
    pub runtime_host_inits_total: u64,
    pub player_clients_active: u64,
    pub client_generation: u64,
    pub clients_evicted_total: u64,
    pub client_events_queued: u64,
    pub runtime_threads: u64,
    pub plugin_generations_active: u64,
    pub plugin_generations_draining: u64,
    pub asio_sidecar_spawns_total: u64,
    pub asio_sidecar_running: u64,
    pub ring_files: u64,
    pub plugin_shadow_copies: u64,
}

/// One row of samples.csv: the state after one cycle (its isolate has just died).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub cycle: u64,
    /// `with-prepare` or `without-prepare`.
    pub mode: String,
    /// Since the child started.
    pub elapsed_ms: u64,
    /// This cycle's own duration.
    pub cycle_ms: u64,
    /// `track_started` and then a `position` event of that track arrived in time (and the
    /// optional seek/pause actions succeeded).
    pub confirmed: bool,
    /// Cumulative watchdog timeouts so far.
    pub lost_connections: u64,
    /// What went wrong in this cycle, if anything.
    pub error: Option<String>,
    /// Threads of the process.
    pub threads: u64,
    /// Open file descriptors (Linux) or handles (Windows).
    pub fds: u64,
    /// VmRSS (Linux) or working set (Windows) in kB.
    pub rss_kb: u64,
    /// Live child processes of the process that loaded the library (sidecars).
    pub sidecars: u64,
    /// Child processes in state Z (exited, not reaped).
    pub zombies: u64,
    /// `<data_dir>/.asio/ring-*.shm` files.
    pub rings: u64,
    /// `<data_dir>/plugins/.shadow/*` entries.
    pub shadow_copies: u64,
    /// Distinct shadow-copy libraries still loaded in the process (mapped, deleted ones
    /// included, on Linux; loaded modules on Windows): a generation whose library never really unloaded.
    #[serde(default)]
    pub shadow_mapped: u64,
    /// `player_clients_active` right after this cycle's client attached: the new client and
    /// every older one still alive (None if the cycle failed before or at the attach).
    pub peak_clients: Option<u64>,
    /// None when the metrics call itself failed.
    pub metrics: Option<RuntimeMetrics>,
}

impl Sample {
    /// The most clients seen alive at once in this cycle.
    pub fn max_clients(&self) -> Option<u64> {
        let after = self.metrics.as_ref().map(|m| m.player_clients_active);
        after.max(self.peak_clients)
    }

    /// Every child process, reaped or not.
    pub fn processes(&self) -> u64 {
        self.sidecars + self.zombies
    }
}

/// The final `stellatune_runtime_shutdown` after the last cycle (an app exit).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShutdownReport {
    pub ok: bool,
    pub error: Option<String>,
    pub runtime_threads_after: Option<u64>,
    pub threads_after: u64,
    pub sidecars_after: u64,
    pub zombies_after: u64,
}

/// One line on the child's stdout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChildMessage {
    Hello {
        pid: u32,
        abi_version: u32,
        lib: String,
    },
    Sample(Sample),
    Done {
        cycles: u64,
        lost_connections: u64,
        stop_reason: String,
        shutdown: Option<ShutdownReport>,
    },
    Fatal {
        message: String,
    },
}

/// Process-level probes of this process, through `stellatune-probe` (Linux: /proc; Windows:
/// Toolhelp32, the handle count and the working set), so the verdict means the same on both.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcStats {
    pub threads: u64,
    /// File descriptors (Linux) or handles (Windows).
    pub fds: u64,
    pub rss_kb: u64,
    pub sidecars: u64,
    pub zombies: u64,
}

pub fn proc_stats() -> ProcStats {
    let children = stellatune_probe::children(std::process::id());
    let zombies = children.iter().filter(|c| c.zombie).count() as u64;
    ProcStats {
        threads: stellatune_probe::threads().unwrap_or(0),
        fds: stellatune_probe::handles().unwrap_or(0),
        rss_kb: stellatune_probe::rss_kib().unwrap_or(0),
        sidecars: children.len() as u64 - zombies,
        zombies,
    }
}

/// Entries of `dir` whose names pass `keep`; 0 when the directory does not exist.
pub fn count_entries(dir: &Path, keep: impl Fn(&str) -> bool) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| keep(&e.file_name().to_string_lossy()))
            .count() as u64
    })
}

pub fn ring_files(data_dir: &Path) -> u64 {
    count_entries(&data_dir.join(".asio"), |name| {
        name.starts_with("ring-") && name.ends_with(".shm")
    })
}

pub fn shadow_copies(data_dir: &Path) -> u64 {
    count_entries(&data_dir.join("plugins").join(".shadow"), |_| true)
}

/// Distinct files under `<data_dir>/plugins/.shadow/` loaded into this process (deleted ones
/// included on Linux): a generation whose library never really unloaded.
pub fn shadow_mapped(data_dir: &Path) -> u64 {
    let shadow = data_dir.join("plugins").join(".shadow");
    stellatune_probe::mapped_libraries_under(&shadow).map_or(0, |found| found.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runtime names no plugin: the ASIO plugin's counters are in the metrics JSON only
    /// once that plugin reported them, so a run without it must read them as 0.
    #[test]
    fn plugin_counters_missing_from_the_metrics_read_as_zero() {
        let without_plugin = r#"{"state":"running","runtime_host_inits_total":1,"player_clients_active":1,"client_generation":2,"clients_evicted_total":0,"client_events_queued":0,"runtime_threads":3,"engine_restarts_total":0,"plugin_generations_active":0,"plugin_generations_draining":0,"plugin_shadow_copies":0,"plugin_helper_threads":0}"#;
        let m: RuntimeMetrics = serde_json::from_str(without_plugin).unwrap();
        assert_eq!(m.state, "running");
        assert_eq!(m.runtime_threads, 3);
        assert_eq!(
            (
                m.asio_sidecar_spawns_total,
                m.asio_sidecar_running,
                m.ring_files
            ),
            (0, 0, 0)
        );

        let with_plugin = r#"{"state":"running","runtime_threads":3,"plugin_helper_threads":0,"asio_sidecar_running":1,"asio_sidecar_spawns_total":2,"ring_files":1}"#;
        let m: RuntimeMetrics = serde_json::from_str(with_plugin).unwrap();
        assert_eq!(
            (
                m.asio_sidecar_spawns_total,
                m.asio_sidecar_running,
                m.ring_files
            ),
            (2, 1, 1)
        );
    }
}
