//! Shared set-up for the plugin tests: the test plugins' cdylib, plugin artifacts, isolated
//! hosts, generated audio and polling helpers.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use stellatune_runtime_host::{
    EngineEvent, HostConfig, HostEvent, OutputRoute, PluginRoute, RuntimeHost,
};

pub const PLUGIN_ID: &str = "test-plugins";
/// The test plugins' library as this OS names it.
pub const LIBRARY_NAME: &str = if cfg!(windows) {
    "stellatune_test_plugins.dll"
} else {
    "libstellatune_test_plugins.so"
};

/// The test plugins' cdylib for this test run's profile (`target/<profile>/`, found from
/// the test binary in `target/<profile>/deps/`). The workspace is built before the tests
/// (scripts/test.sh): a test never runs cargo (under Wine it could not even wait for it).
pub fn plugin_library() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary in target/<profile>/deps");
        let library = profile_dir.join(LIBRARY_NAME);
        assert!(
            library.is_file(),
            "no {}: build the workspace first (scripts/test.sh does)",
            library.display()
        );
        library
    })
}

/// The manifest template of the test plugins.
pub fn manifest_template() -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../stellatune-test-plugins/plugin.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("plugin.json is JSON");
    manifest["library"] = LIBRARY_NAME.into();
    manifest
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

pub fn write_tone(path: &Path, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 44_100,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(seconds * 44_100.0) as u32 {
        let s = ((i as f32 * 440.0 * std::f32::consts::TAU / 44_100.0).sin() * 8000.0) as i16;
        w.write_sample(s).unwrap();
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
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
    #[cfg(not(target_os = "linux"))]
    pub fn mapped_shadow_code(&self) -> usize {
        mapped_under(&self.shadow_dir()).0
    }

    /// Executable mappings only: the loaded code, not a symbolizer's read-only view of it.
    #[cfg(target_os = "linux")]
    pub fn mapped_shadow_code(&self) -> usize {
        let needle = self.shadow_dir().to_string_lossy().into_owned();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let mut files: Vec<&str> = maps
            .lines()
            .filter(|l| {
                l.contains(needle.as_str())
                    && l.split_whitespace().nth(1).is_some_and(|p| p.contains('x'))
            })
            .filter_map(|l| l.find(needle.as_str()).map(|i| &l[i..]))
            .map(|p| p.trim_end_matches(" (deleted)"))
            .collect();
        files.sort_unstable();
        files.dedup();
        files.len()
    }
}

/// Distinct files under `dir` loaded into this process, and (Linux) their mapping lines.
#[cfg(not(target_os = "linux"))]
pub fn mapped_under(dir: &Path) -> (usize, usize) {
    let files = stellatune_probe::mapped_libraries_under(dir).map_or(0, |f| f.len());
    (files, files)
}

/// Distinct files under `dir` mapped into this process, and their mapping lines.
#[cfg(target_os = "linux")]
pub fn mapped_under(dir: &Path) -> (usize, usize) {
    let needle = dir.to_string_lossy().into_owned();
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let lines: Vec<&str> = maps
        .lines()
        .filter(|l| l.contains(needle.as_str()))
        .collect();
    let mut files: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.find(needle.as_str()).map(|i| &l[i..]))
        .map(|p| p.trim_end_matches(" (deleted)"))
        .collect();
    files.sort_unstable();
    files.dedup();
    (files.len(), lines.len())
}

pub fn capture_route(target: &Path) -> OutputRoute {
    OutputRoute::Plugin(PluginRoute::new(
        PLUGIN_ID,
        Some("capture"),
        target.to_str().unwrap(),
    ))
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
pub fn assert_closed_before_destroyed(target: &Path, instances: usize) {
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

/// Polls until `pred` holds or the deadline passes.
pub fn wait_for(timeout: Duration, mut pred: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if pred() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    pred()
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
