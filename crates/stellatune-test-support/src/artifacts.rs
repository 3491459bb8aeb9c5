//! Where this build's artifacts are, and plugin directories laid out from them.
//!
//! Tests never run cargo (under Wine they could not even wait for it): the workspace is built
//! and the plugins packaged first (scripts/test.sh). Everything is found from the running
//! test binary, in `<target>/<profile>/deps/`, so it follows `CARGO_TARGET_DIR` and a
//! `--target` build's extra directory level (the Windows cross build) without knowing either.
//! File names come from the platform's conventions (`lib*.so`, `*.dll`, `.exe`).

use std::env::consts::{DLL_PREFIX, DLL_SUFFIX, EXE_SUFFIX};
use std::path::{Path, PathBuf};

/// The plugin id of the test plugins (`crates/stellatune-test-plugins`).
pub const TEST_PLUGINS: &str = "test-plugins";
/// The file stem of the test plugins' cdylib.
pub const TEST_PLUGINS_STEM: &str = "stellatune_test_plugins";
/// The file stem of the ASIO plugin's cdylib.
pub const ASIO_STEM: &str = "stellatune_plugin_asio";
/// The program name of the ASIO sidecar.
pub const SIDECAR: &str = "stellatune-sidecar-host";

/// `<target>/<profile>`: the directory above this test binary's `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary in <target>/<profile>/deps")
        .to_path_buf()
}

/// The workspace root (this crate is `crates/stellatune-test-support`).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A workspace crate's directory, e.g. `crate_dir("stellatune-test-plugins")`.
pub fn crate_dir(name: &str) -> PathBuf {
    workspace_dir().join("crates").join(name)
}

/// A dynamic library's file name as this OS spells it: `lib<stem>.so`, `<stem>.dll`, ...
pub fn library_file_name(stem: &str) -> String {
    format!("{DLL_PREFIX}{stem}{DLL_SUFFIX}")
}

/// A program's file name as this OS spells it (`.exe` on Windows).
pub fn exe_file_name(name: &str) -> String {
    format!("{name}{EXE_SUFFIX}")
}

/// `file` in the profile directory; panics with how to build it when it is missing.
pub fn built(file: &str) -> PathBuf {
    let path = profile_dir().join(file);
    assert!(
        path.is_file(),
        "no {}: build the workspace first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// This build's cdylib of `stem`.
pub fn built_library(stem: &str) -> PathBuf {
    built(&library_file_name(stem))
}

/// This build's program `name`.
pub fn built_program(name: &str) -> PathBuf {
    built(&exe_file_name(name))
}

/// The test plugins' cdylib.
pub fn test_plugins_library() -> PathBuf {
    built_library(TEST_PLUGINS_STEM)
}

/// `stellatune-fake-sidecar` (of the test-plugins package), a sidecar that misbehaves as its
/// arguments say: the same on every OS.
pub fn fake_sidecar() -> PathBuf {
    built_program("stellatune-fake-sidecar")
}

/// The manifest template of a plugin crate (`crates/<crate_name>/plugin.json`), with
/// `library` set to this OS's file name of `stem`.
pub fn plugin_manifest(crate_name: &str, stem: &str) -> serde_json::Value {
    let path = crate_dir(crate_name).join("plugin.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("plugin.json is JSON");
    manifest["library"] = library_file_name(stem).into();
    manifest
}

/// Writes an installable plugin directory `dir`: the manifest of `crate_name`, this build's
/// library `stem` under the manifest's name, and `extras` (file names in the profile
/// directory, such as a sidecar) beside it. Each test lays out its own, in its own scratch
/// directory: tests run in parallel processes, so none of them rewrites a shared one.
pub fn lay_out_plugin(dir: &Path, crate_name: &str, stem: &str, extras: &[&str]) -> PathBuf {
    let library = built_library(stem);
    std::fs::create_dir_all(dir).unwrap();
    let manifest = plugin_manifest(crate_name, stem);
    std::fs::write(dir.join("plugin.json"), manifest.to_string()).unwrap();
    std::fs::copy(&library, dir.join(library_file_name(stem))).unwrap();
    for extra in extras {
        std::fs::copy(built(extra), dir.join(extra)).unwrap();
    }
    dir.to_path_buf()
}

/// The test plugins, installable, in `dir`.
pub fn lay_out_test_plugins(dir: &Path) -> PathBuf {
    lay_out_plugin(dir, "stellatune-test-plugins", TEST_PLUGINS_STEM, &[])
}

/// The ASIO plugin and its sidecar, installable, in `dir`.
pub fn lay_out_asio(dir: &Path) -> PathBuf {
    lay_out_plugin(
        dir,
        "stellatune-plugin-asio",
        ASIO_STEM,
        &[&exe_file_name(SIDECAR)],
    )
}

/// The plugin `id` as scripts/package-plugins.sh packaged it
/// (`<target>/<profile>/plugins/<id>`), if it is there.
pub fn packaged_plugin(id: &str) -> Option<PathBuf> {
    let dir = profile_dir().join("plugins").join(id);
    dir.join("plugin.json").is_file().then_some(dir)
}

/// The packaged ASIO plugin for a bench: `$STELLATUNE_BENCH_ASIO_PLUGIN`, else
/// `plugins/asio` in this binary's profile directory, else the release build's. `None`
/// (after a note on stderr naming `skipped`, what is not measured) when there is none.
pub fn bench_asio_plugin(skipped: &str) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("STELLATUNE_BENCH_ASIO_PLUGIN") {
        candidates.push(PathBuf::from(dir));
    }
    candidates.push(profile_dir().join("plugins").join("asio"));
    candidates.push(workspace_dir().join("target/release/plugins/asio"));
    let found = candidates
        .iter()
        .find(|d| d.join("plugin.json").is_file())
        .cloned();
    if found.is_none() {
        eprintln!(
            "note: no packaged ASIO plugin in {candidates:?}: {skipped} skipped (run `cargo \
             build --release --workspace && bash scripts/package-plugins.sh release`)"
        );
    }
    found
}
