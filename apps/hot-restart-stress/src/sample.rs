//! What the child measures after every cycle, the messages it streams to the parent (one JSON
//! object per stdout line), and the /proc probes.

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
    /// /proc/self/task entries.
    pub threads: u64,
    /// /proc/self/fd entries.
    pub fds: u64,
    /// VmRSS in kB.
    pub rss_kb: u64,
    /// Live child processes of the process that loaded the library (sidecars).
    pub sidecars: u64,
    /// Child processes in state Z (exited, not reaped).
    pub zombies: u64,
    /// `<data_dir>/.asio/ring-*.shm` files.
    pub rings: u64,
    /// `<data_dir>/plugins/.shadow/*` entries.
    pub shadow_copies: u64,
    /// Distinct shadow-copy libraries still mapped into the process (/proc/self/maps),
    /// including deleted ones: a generation whose library never really unloaded.
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

/// Process-level probes, read from /proc for this process.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcStats {
    pub threads: u64,
    pub fds: u64,
    pub rss_kb: u64,
    pub sidecars: u64,
    pub zombies: u64,
}

pub fn proc_stats() -> ProcStats {
    let (sidecars, zombies) = child_processes(std::process::id());
    ProcStats {
        threads: count_entries(Path::new("/proc/self/task"), |_| true),
        fds: count_entries(Path::new("/proc/self/fd"), |_| true),
        rss_kb: rss_kb(),
        sidecars,
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

/// Distinct files under `<data_dir>/plugins/.shadow/` mapped into this process, deleted
/// ones included.
pub fn shadow_mapped(data_dir: &Path) -> u64 {
    let shadow = data_dir.join("plugins").join(".shadow");
    let prefix = shadow.to_string_lossy().into_owned() + "/";
    std::fs::read_to_string("/proc/self/maps").map_or(0, |maps| count_mapped(&maps, &prefix))
}

/// Distinct mapped paths in a /proc/<pid>/maps text that start with `prefix`.
pub fn count_mapped(maps: &str, prefix: &str) -> u64 {
    let mut paths: Vec<&str> = maps
        .lines()
        .filter_map(|line| {
            // address perms offset dev inode path: the path is the sixth field and may
            // contain spaces, so take everything from its first character on.
            let path = line.splitn(6, char::is_whitespace).nth(5)?.trim_start();
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            path.starts_with(prefix).then_some(path)
        })
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths.len() as u64
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_vm_rss(&status))
        .unwrap_or(0)
}

pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// `(state, ppid)` from a /proc/<pid>/stat line. The command name sits in parentheses and
/// may itself contain spaces and parentheses, so the fields start after the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Live and zombie children of `pid`. The gate itself starts no processes in the process
/// that loads the library, so every child there belongs to the runtime (ASIO sidecars).
pub fn child_processes(pid: u32) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, 0);
    };
    let (mut live, mut zombies) = (0, 0);
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        match parse_stat(&stat) {
            Some((state, ppid)) if ppid == pid => {
                if state == 'Z' {
                    zombies += 1;
                } else {
                    live += 1;
                }
            }
            _ => {}
        }
    }
    (live, zombies)
}
