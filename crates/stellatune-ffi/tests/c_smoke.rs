//! Builds tests/c/smoke.c with a strict C11 compiler against the committed header, links it
//! to the cdylib cargo built for this test run, and runs it: init, client, null route, play a
//! generated WAV, events, dispose, shutdown, init again, metrics, shutdown.
//!
//! A missing C compiler fails the test: the C ABI is the product, so it is always checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LIB: &str = "libstellatune_ffi.so";

/// The cdylib of this very build. Cargo compiles the library's crate types in one rustc run,
/// so `deps/` holds the `.so` built together with the rlib this test links; the uplifted copy
/// one level up can be older. If neither exists, build it with the same profile.
fn cdylib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let profile_dir = deps.parent().expect("profile dir").to_path_buf();
    if deps.join(LIB).is_file() {
        return deps;
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name")
        .to_owned();
    let profile = match profile.as_str() {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "stellatune-ffi",
            "--lib",
            "--profile",
            &profile,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build for the cdylib");
    assert!(status.success(), "cargo build of the cdylib failed");
    assert!(
        profile_dir.join(LIB).is_file(),
        "no {LIB} in {}",
        profile_dir.display()
    );
    profile_dir
}

fn run_with_timeout(mut command: Command, limit: Duration) -> std::process::Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "smoke program still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn c_program_drives_the_runtime_through_the_header_and_cdylib() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = cdylib_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let wav = common::write_wav(tmp.path(), "tone.wav", 2.0);
    let exe = tmp.path().join("smoke");

    let compiled = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-pedantic"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests").join("c").join("smoke.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(&lib_dir)
        .arg("-l:libstellatune_ffi.so")
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cc` (a C compiler is required): {e}"));
    assert!(
        compiled.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let second_config = serde_json::json!({
        "data_dir": tmp.path().join("data2"),
        "client_lease_ms": 10_000,
        "log_filter": "warn",
    })
    .to_string();
    let mut command = Command::new(&exe);
    // Cargo points LD_LIBRARY_PATH at target/<profile>, whose uplifted copy of the library
    // can be older than the one in deps/; it would win over the rpath. Use the rpath alone.
    command.env_remove("LD_LIBRARY_PATH");
    command
        .arg(&wav)
        .arg(&second_config)
        // The first init passes NULL (defaults): keep its data directory in the temp dir.
        .env("STELLATUNE_DATA_DIR", tmp.path().join("data1"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    let output = run_with_timeout(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "smoke program failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("smoke: ok"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        tmp.path().join("data1").is_dir(),
        "NULL config used the default data dir"
    );
    assert!(
        tmp.path().join("data2").is_dir(),
        "second init used its config"
    );
}
