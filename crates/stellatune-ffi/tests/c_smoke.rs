//! Builds the C programs in tests/c with a strict C11 compiler against the committed header,
//! links them to the cdylib cargo built for this test run, and runs them:
//! - smoke.c: init, client, null route, play a generated WAV, events, dispose, shutdown, init
//!   again, metrics, shutdown;
//! - ports.c: events pushed to Dart ports through a fake `Dart_PostCObject` written in C
//!   (kString JSON on the right port, a closed port evicts its client at once, a live port
//!   keeps a client that never calls in, shutdown during a post, init again).
//!
//! A missing C compiler fails the test: the C ABI is the product, so it is always checked.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use stellatune_test_support::artifacts;
use stellatune_test_support::process::output_within;

/// The cdylib's file name on this OS.
fn lib_name() -> String {
    artifacts::library_file_name("stellatune_ffi")
}

/// The cdylib of this very build. Cargo compiles the library's crate types in one rustc run,
/// so `deps/` holds the cdylib built together with the rlib this test links; the uplifted copy
/// one level up can be older. The workspace is built before the tests (scripts/test.sh): a
/// test never runs cargo (under Wine it could not even wait for it).
fn cdylib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps dir").to_path_buf();
    let profile_dir = deps.parent().expect("profile dir").to_path_buf();
    [deps, profile_dir]
        .into_iter()
        .find(|dir| dir.join(lib_name()).is_file())
        .unwrap_or_else(|| {
            panic!(
                "no {} beside {}: build the workspace first (scripts/test.sh does)",
                lib_name(),
                exe.display()
            )
        })
}

/// Compiles tests/c/`name`.c with a strict C11 compiler against the header, linked to the
/// cdylib in `lib_dir`; returns the program, which finds the library by its rpath.
#[cfg(not(windows))]
fn c_program(crate_dir: &Path, lib_dir: &Path, out_dir: &Path, name: &str) -> PathBuf {
    let exe = out_dir.join(name);
    let compiled = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-std=c11", "-pedantic"])
        .arg("-I")
        .arg(crate_dir.join("include"))
        .arg(crate_dir.join("tests").join("c").join(format!("{name}.c")))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(lib_dir)
        .arg(format!("-l:{}", lib_name()))
        .arg(format!("-Wl,-rpath,{}", lib_dir.display()))
        .output()
        .unwrap_or_else(|e| panic!("cannot run `cc` (a C compiler is required): {e}"));
    assert!(
        compiled.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    exe
}

/// Windows (and Wine) has no C compiler to call: scripts/test-windows.sh compiles the same
/// sources with the same flags (mingw, against this build's DLL) and names the programs in
/// `STELLATUNE_C_SMOKE_EXE` and `STELLATUNE_C_PORTS_EXE`. Each is copied beside a copy of the
/// DLL, where Windows looks first.
#[cfg(windows)]
fn c_program(_crate_dir: &Path, lib_dir: &Path, out_dir: &Path, name: &str) -> PathBuf {
    let var = format!("STELLATUNE_C_{}_EXE", name.to_uppercase());
    let built = std::env::var_os(&var).unwrap_or_else(|| {
        panic!("{var} names the compiled tests/c/{name}.c (scripts/test-windows.sh builds it)")
    });
    let exe = out_dir.join(format!("{name}.exe"));
    std::fs::copy(&built, &exe).expect("copy the C program");
    std::fs::copy(lib_dir.join(lib_name()), out_dir.join(lib_name())).expect("copy the DLL");
    exe
}

fn run_with_timeout(mut command: Command, limit: Duration) -> std::process::Output {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    output_within(child, limit, "C program")
}

#[test]
fn c_program_drives_the_runtime_through_the_header_and_cdylib() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = cdylib_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let wav = common::write_wav(tmp.path(), "tone.wav", 2.0);
    let exe = c_program(crate_dir, &lib_dir, tmp.path(), "smoke");

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

#[test]
fn c_program_gets_events_on_dart_ports_through_a_fake_post_cobject() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib_dir = cdylib_dir();
    let tmp = tempfile::tempdir().expect("temp dir");
    let wav = common::write_wav(tmp.path(), "tone.wav", 4.0);
    let exe = c_program(crate_dir, &lib_dir, tmp.path(), "ports");
    let config = |lease_ms: u64| {
        serde_json::json!({
            "data_dir": tmp.path().join("data"),
            "client_lease_ms": lease_ms,
            "log_filter": "warn",
        })
        .to_string()
    };
    let mut command = Command::new(&exe);
    // As for the smoke program: the rpath, not an older uplifted copy.
    command.env_remove("LD_LIBRARY_PATH");
    command
        .arg(&wav)
        .arg(config(60_000))
        .arg(config(500))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null());
    let output = run_with_timeout(command, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // How long the evictions took, for whoever reads the test's output.
    println!("{stdout}");
    assert!(
        output.status.success(),
        "ports program failed ({:?})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("ports: ok"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    // The eviction warning of the design, with its reason.
    assert!(
        stderr.contains("client evicted") && stderr.contains("event port closed"),
        "no eviction warning for the closed port:\n{stderr}"
    );
}
