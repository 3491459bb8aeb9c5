//! Helpers shared by the ASIO plugin's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{OutputRoute, PluginRoute};

pub const RATE: u32 = 44_100;

pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().to_path_buf()
}

/// A plugin directory made from this build's library and sidecar, inside `scratch`: tests
/// run in parallel processes, so none of them rewrites a shared directory.
pub fn packaged_plugin_in(scratch: &Path) -> PathBuf {
    let profile = profile_dir();
    let lib = profile.join("libstellatune_plugin_asio.so");
    let host = profile.join("stellatune-asio-host");
    assert!(
        lib.is_file() && host.is_file(),
        "build the plugin and sidecar first: cargo build -p stellatune-plugin-asio -p stellatune-asio-host (scripts/test.sh does)"
    );
    let dir = scratch.join("asio-plugin");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plugin.json")).unwrap();
    std::fs::write(dir.join("plugin.json"), manifest).unwrap();
    std::fs::copy(&lib, dir.join("libstellatune_plugin_asio.so")).unwrap();
    std::fs::copy(&host, dir.join("stellatune-asio-host")).unwrap();
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

/// Live children of `parent` whose command name contains `name`, and zombies among all of
/// its children.
pub fn children_of(parent: u32, name: &str) -> (Vec<u32>, usize) {
    let mut live = Vec::new();
    let mut zombies = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) != Some(parent) {
            continue;
        }
        if fields[0] == "Z" {
            zombies += 1;
        } else if comm.contains(name) {
            live.push(pid);
        }
    }
    (live, zombies)
}

/// Live sidecar children of `parent`, and zombies among all of its children.
pub fn sidecars_of(parent: u32) -> (Vec<u32>, usize) {
    children_of(parent, "stellatune-asio")
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
