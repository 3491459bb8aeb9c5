//! Runs the real gate binary against the real cdylib.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

const LIB: &str = "libstellatune_ffi.so";

/// True when `lib` is missing, or older than any source file its dep-info (`.d`) lists.
fn needs_build(lib: &Path, dep_info: &Path) -> bool {
    let Ok(built) = std::fs::metadata(lib).and_then(|m| m.modified()) else {
        return true;
    };
    let Ok(deps) = std::fs::read_to_string(dep_info) else {
        return false;
    };
    let modified = |p: &str| -> Option<SystemTime> { std::fs::metadata(p).ok()?.modified().ok() };
    deps.lines()
        .filter_map(|line| line.split_once(": ").map(|(_, inputs)| inputs))
        .flat_map(str::split_whitespace)
        .any(|source| modified(source).is_none_or(|m| m > built))
}

/// The cdylib the gate loads: `target/<profile>/libstellatune_ffi.so` beside the gate binary.
/// Built first with `$CARGO build -p stellatune-ffi --lib` if it is missing or older than its
/// sources (this package does not depend on stellatune-ffi: it loads it at run time).
pub fn cdylib() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_hot-restart-stress"));
    let profile_dir = bin.parent().expect("profile dir");
    let lib = profile_dir.join(LIB);
    if needs_build(&lib, &profile_dir.join("libstellatune_ffi.d")) {
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
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
    }
    assert!(lib.is_file(), "no {}", lib.display());
    lib
}

pub struct GateRun {
    pub output: Output,
    pub run_dir: PathBuf,
    pub summary: serde_json::Value,
    _out: tempfile::TempDir,
}

impl GateRun {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn describe(&self) -> String {
        format!(
            "status {:?}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            self.stdout(),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    pub fn check(&self, id: &str) -> &serde_json::Value {
        self.summary["checks"]
            .as_array()
            .expect("checks array")
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no check {id}: {}", self.summary))
    }

    pub fn failed_checks(&self) -> Vec<String> {
        self.summary["checks"]
            .as_array()
            .expect("checks array")
            .iter()
            .filter(|c| c["pass"] == false)
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Runs the gate with `args` (plus `--lib` and a temporary `--out`), at most `limit`.
pub fn run_gate(args: &[&str], limit: Duration) -> GateRun {
    run_with_report(args, limit, "summary.json")
}

/// Runs `hot-restart-stress hammer` with `args` (plus `--lib` and a temporary `--out`), at
/// most `limit`; `summary` is its hammer.json.
pub fn run_hammer(args: &[&str], limit: Duration) -> GateRun {
    let args: Vec<&str> = std::iter::once("hammer")
        .chain(args.iter().copied())
        .collect();
    run_with_report(&args, limit, "hammer.json")
}

/// The packaged ASIO plugin beside the gate binary (`target/<profile>/plugins/asio`, laid
/// out by scripts/package-plugins.sh), if it is there.
pub fn packaged_asio_plugin() -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_BIN_EXE_hot-restart-stress"));
    let dir = bin.parent()?.join("plugins").join("asio");
    dir.join("plugin.json").is_file().then_some(dir)
}

fn run_with_report(args: &[&str], limit: Duration, report: &str) -> GateRun {
    let lib = cdylib();
    let out = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hot-restart-stress"))
        .args(args)
        .arg("--lib")
        .arg(&lib)
        .arg("--out")
        .arg(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the gate");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().expect("output");
            panic!(
                "gate still running after {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let runs: Vec<PathBuf> = std::fs::read_dir(out.path())
        .expect("output root")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(
        runs.len(),
        1,
        "one run directory: {runs:?}\n{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let run_dir = runs[0].clone();
    let summary_path = run_dir.join(report);
    let summary = std::fs::read_to_string(&summary_path)
        .unwrap_or_else(|e| panic!("{}: {e}", summary_path.display()));
    GateRun {
        output,
        run_dir,
        summary: serde_json::from_str(&summary).expect("summary.json is JSON"),
        _out: out,
    }
}
