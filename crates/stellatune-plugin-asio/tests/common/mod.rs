//! Helpers shared by the ASIO plugin's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{OutputRoute, PluginRoute};

pub const RATE: u32 = 44_100;

/// The plugin's library and its sidecar as this OS names them.
pub const LIBRARY: &str = if cfg!(windows) {
    "stellatune_plugin_asio.dll"
} else {
    "libstellatune_plugin_asio.so"
};
pub const SIDECAR: &str = if cfg!(windows) {
    "stellatune-sidecar-host.exe"
} else {
    "stellatune-sidecar-host"
};

/// `stellatune-fake-sidecar` (of the test-plugins package), a sidecar that misbehaves as
/// its arguments say: the same on every OS.
pub fn fake_sidecar() -> PathBuf {
    let path = profile_dir().join(format!(
        "stellatune-fake-sidecar{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        path.is_file(),
        "no {}: build the workspace first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A route config that runs the fake sidecar with `args`.
pub fn fake_sidecar_config(args: &[&str]) -> serde_json::Value {
    serde_json::json!({ "sidecar_path": fake_sidecar(), "sidecar_args": args })
}

pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A plugin directory made from this build's library and sidecar, inside `scratch`: tests
/// run in parallel processes, so none of them rewrites a shared directory.
pub fn packaged_plugin_in(scratch: &Path) -> PathBuf {
    let profile = profile_dir();
    let lib = profile.join(LIBRARY);
    let host = profile.join(SIDECAR);
    assert!(
        lib.is_file() && host.is_file(),
        "build the plugin and sidecar first: cargo build -p stellatune-plugin-asio -p stellatune-sidecar-host (scripts/test.sh does)"
    );
    let dir = scratch.join("asio-plugin");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugin.json")).unwrap();
    let manifest = manifest.replace("libstellatune_plugin_asio.so", LIBRARY);
    std::fs::write(dir.join("plugin.json"), manifest).unwrap();
    std::fs::copy(&lib, dir.join(LIBRARY)).unwrap();
    std::fs::copy(&host, dir.join(SIDECAR)).unwrap();
    dir
}

/// Writes a stereo 16-bit tone (440 Hz left, 660 Hz right) and returns its samples as f32.
pub fn write_tone(path: &Path, seconds: f32) -> Vec<f32> {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    let mut expected = Vec::new();
    for i in 0..(seconds * RATE as f32) as u32 {
        let l = ((i as f32 * 440.0 * std::f32::consts::TAU / RATE as f32).sin() * 9000.0) as i16;
        let r = ((i as f32 * 660.0 * std::f32::consts::TAU / RATE as f32).sin() * 7000.0) as i16;
        w.write_sample(l).unwrap();
        w.write_sample(r).unwrap();
        expected.push(f32::from(l) / 32768.0);
        expected.push(f32::from(r) / 32768.0);
    }
    w.finalize().unwrap();
    expected
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

/// The sidecar's program name as the probe reports it: Linux keeps 15 bytes of the command
/// name (`stellatune-side`), Windows the whole exe name; this prefix matches both.
pub const SIDECAR_NAME: &str = "stellatune-side";

/// Live sidecar children of `parent`, and zombies among all of its children.
pub fn sidecars_of(parent: u32) -> (Vec<u32>, usize) {
    children_of(parent, SIDECAR_NAME)
}

pub fn me() -> u32 {
    std::process::id()
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

/// Polls `pred` every 10 ms; panics naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
