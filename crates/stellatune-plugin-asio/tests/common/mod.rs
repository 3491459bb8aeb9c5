//! Helpers shared by the ASIO plugin's integration tests.

// Each test binary uses its own subset of these helpers (and of what they re-export).
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};

use stellatune_runtime_host::{HostConfig, OutputRoute, PluginRoute, RuntimeHost};
use stellatune_test_support::artifacts;
pub use stellatune_test_support::artifacts::{built_program, fake_sidecar};
pub use stellatune_test_support::tone::RATE;
pub use stellatune_test_support::tone::write_two_tone;
pub use stellatune_test_support::wait::wait_until;

/// A route config that runs the fake sidecar with `args`.
pub fn fake_sidecar_config(args: &[&str]) -> serde_json::Value {
    serde_json::json!({ "sidecar_path": fake_sidecar(), "sidecar_args": args })
}

/// A plugin directory made from this build's library and sidecar, inside `scratch`: tests
/// run in parallel processes, so none of them rewrites a shared directory.
pub fn packaged_plugin_in(scratch: &Path) -> PathBuf {
    artifacts::lay_out_asio(&scratch.join("asio-plugin"))
}

/// An isolated running host named `name`, its data in `<scratch>/data`, with this build's
/// plugin installed, and one attached client.
pub fn host_with_asio(name: &str, scratch: &Path) -> (RuntimeHost, u64) {
    let host = RuntimeHost::new(name);
    host.init(HostConfig {
        data_dir: Some(scratch.join("data")),
        log_filter: Some("warn".into()),
        ..HostConfig::default()
    })
    .unwrap();
    host.plugins_install(&packaged_plugin_in(scratch)).unwrap();
    let client = host.attach_client().unwrap().id;
    (host, client)
}

pub fn asio(target: &str) -> OutputRoute {
    OutputRoute::Plugin(PluginRoute::new("asio", None, target))
}

/// Live children of `parent` whose program name contains `name`, and zombies among all of
/// its children.
pub fn children_of(parent: u32, name: &str) -> (Vec<u32>, usize) {
    let children = stellatune_probe::children(parent);
    let zombies = children.iter().filter(|c| c.zombie).count();
    let live = children
        .into_iter()
        .filter(|c| !c.zombie && c.name.contains(name))
        .map(|c| c.pid)
        .collect();
    (live, zombies)
}

/// The sidecar's process name as every OS shows it: Linux truncates a process name to 15
/// bytes (`stellatune-sidecar-host` shows as `stellatune-side`); Windows shows the whole
/// `stellatune-sidecar-host.exe`, which contains it.
pub const SIDECAR_NAME: &str = "stellatune-side";

/// Live sidecar children of `parent`, and zombies among all of its children.
pub fn sidecars_of(parent: u32) -> (Vec<u32>, usize) {
    children_of(parent, SIDECAR_NAME)
}

pub fn me() -> u32 {
    std::process::id()
}

/// Waits until this process has no sidecar child left, running or exited and not reaped. A
/// sidecar whose last lease went stops on a thread of the plugin's own, so it may still be
/// exiting when the call that let go of it returns.
pub fn wait_sidecars_reaped(what: &str) {
    wait_until(what, std::time::Duration::from_secs(3), || {
        let (live, zombies) = sidecars_of(me());
        live.is_empty() && zombies == 0
    });
}

/// A counter the plugin reported to the host (0 until it reports one): the host names no
/// plugin, so these reach its metrics only by the plugin's names.
pub fn reported(metrics: &stellatune_runtime_host::MetricsSnapshot, name: &str) -> i64 {
    metrics.plugin_reported.get(name).copied().unwrap_or(0)
}

pub fn ring_files(data: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(data.join(".asio"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("ring-"))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}
