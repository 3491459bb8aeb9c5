//! Shared set-up for the plugin tests: the test plugins' cdylib, plugin artifacts, isolated
//! hosts, generated audio and polling helpers.

// Each test binary uses its own subset of these helpers (and of what they re-export).
#![allow(dead_code, unused_imports)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use stellatune_runtime_host::{
    EngineEvent, HostConfig, HostEvent, OutputRoute, PluginRoute, RuntimeHost,
};
use stellatune_test_support::artifacts;
use stellatune_test_support::mapped::{code_mapped_under, mapped_under};
pub use stellatune_test_support::tone::write_tone;
pub use stellatune_test_support::wait::wait_for;

pub const PLUGIN_ID: &str = artifacts::TEST_PLUGINS;

/// The test plugins' library as this OS names it.
pub fn library_name() -> String {
    artifacts::library_file_name(artifacts::TEST_PLUGINS_STEM)
}

/// The test plugins' cdylib for this test run's profile.
pub fn plugin_library() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(artifacts::test_plugins_library)
}

/// The manifest template of the test plugins.
pub fn manifest_template() -> serde_json::Value {
    artifacts::plugin_manifest("stellatune-test-plugins", artifacts::TEST_PLUGINS_STEM)
}

/// A plugin directory `<parent>/<name>` holding `manifest` and a copy of the test plugins'
/// library under the manifest's `library` name.
pub fn artifact_with(parent: &Path, name: &str, manifest: &serde_json::Value) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    if let Some(library) = manifest["library"].as_str() {
        if !library.contains(['/', '\\']) {
            std::fs::copy(plugin_library(), dir.join(library)).unwrap();
        }
    }
    dir
}

/// The test plugins, ready to install, in `<parent>/test-plugins-artifact`.
pub fn artifact(parent: &Path) -> PathBuf {
    artifact_with(parent, "test-plugins-artifact", &manifest_template())
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// A 3 s stereo 44.1 kHz tone.
    pub tone: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let tone = dir.path().join("tone.wav");
        write_tone(&tone, 3.0);
        Fixture { dir, tone }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> HostConfig {
        HostConfig {
            data_dir: Some(self.data_dir()),
            log_filter: Some("warn".into()),
            ..HostConfig::default()
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.data_dir().join("plugins")
    }

    pub fn shadow_dir(&self) -> PathBuf {
        self.plugin_dir().join(".shadow")
    }

    pub fn installed_dir(&self) -> PathBuf {
        self.plugin_dir().join(PLUGIN_ID)
    }

    /// Files in `<plugin_dir>/.shadow`.
    pub fn shadow_files(&self) -> usize {
        std::fs::read_dir(self.shadow_dir()).map_or(0, |d| d.flatten().count())
    }

    /// Shadow copies of this fixture mapped into the process (deleted or not), and the
    /// number of mapping lines they take in /proc/self/maps (Windows: loaded modules, once
    /// each).
    pub fn mapped_shadow_copies(&self) -> (usize, usize) {
        mapped_under(&self.shadow_dir())
    }

    /// Executable mappings only: the loaded code, not a symbolizer's read-only view of it.
    /// (Windows lists loaded modules, which are code.)
    pub fn mapped_shadow_code(&self) -> usize {
        code_mapped_under(&self.shadow_dir())
    }
}

pub fn capture_route(target: &Path) -> OutputRoute {
    OutputRoute::Plugin(PluginRoute::new(
        PLUGIN_ID,
        Some("capture"),
        target.to_str().unwrap(),
    ))
}

/// The capture sink paced like a device with a 100 ms buffer: a track plays in real time
/// instead of ending within milliseconds, so a test can keep it playing.
pub fn paced_capture_route(target: &Path) -> OutputRoute {
    OutputRoute::Plugin(
        PluginRoute::new(PLUGIN_ID, Some("capture"), target.to_str().unwrap())
            .with_config(serde_json::json!({"realtime_buffer_ms": 100})),
    )
}

pub fn misbehave_route(config: serde_json::Value) -> OutputRoute {
    OutputRoute::Plugin(
        PluginRoute::new(PLUGIN_ID, Some("misbehave"), "default").with_config(config),
    )
}

pub fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The lifecycle lines the capture sink recorded for `target`.
pub fn calls(target: &Path) -> Vec<String> {
    let mut path = target.as_os_str().to_owned();
    path.push(".calls");
    std::fs::read_to_string(PathBuf::from(path))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Checks the `.calls` of a capture target used by `instances` sink instances in turn:
/// every instance was destroyed, every destroy came right after a close, and the file ends
/// with `close`, `destroy`. The engine calls one sink at a time, on one thread, and a
/// replaced instance is closed and destroyed back to back, so in a file shared by several
/// instances each close/destroy pair belongs to one instance.
///
/// Waits (up to 10 s) for the destroys first: a route replaced by another is closed on the
/// engine's output thread after `apply_route` has returned.
pub fn assert_closed_before_destroyed(target: &Path, instances: usize) {
    let destroyed = |calls: &[String]| calls.iter().filter(|c| *c == "destroy").count();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while destroyed(&calls(target)) < instances && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let calls = calls(target);
    let destroys: Vec<usize> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| *c == "destroy")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        destroys.len(),
        instances,
        "{}: {instances} instances, calls {calls:?}",
        target.display()
    );
    for i in destroys {
        assert!(
            i > 0 && calls[i - 1] == "close",
            "{}: destroy without a close right before it: {calls:?}",
            target.display()
        );
    }
    assert!(
        calls.ends_with(&["close".to_owned(), "destroy".to_owned()]),
        "{}: {calls:?}",
        target.display()
    );
}

pub fn wait_event(
    host: &RuntimeHost,
    id: u64,
    timeout: Duration,
    mut want: impl FnMut(&HostEvent) -> bool,
) -> Option<HostEvent> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(e) = host.poll_event(id, Duration::from_millis(50)).unwrap() {
            if want(&e) {
                return Some(e);
            }
        }
    }
    None
}

pub fn is_track_started(e: &HostEvent) -> bool {
    matches!(e, HostEvent::Engine(EngineEvent::TrackStarted { .. }))
}

/// Drops every event waiting for the client.
pub fn drain_events(host: &RuntimeHost, id: u64) {
    while host.poll_event(id, Duration::ZERO).unwrap().is_some() {}
}
