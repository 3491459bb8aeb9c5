//! Runs the real gate binary against the real cdylib.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use stellatune_test_support::artifacts;
use stellatune_test_support::process::output_within;

/// How `std::process::abort` ends a child: SIGABRT on Unix; on Windows a fail-fast
/// exception, whose NTSTATUS is the exit code.
#[cfg(unix)]
pub const ABORT_TEXT: &str = "signal 6 (SIGABRT)";
#[cfg(unix)]
pub const ABORT_NAME: &str = "SIGABRT";
#[cfg(windows)]
pub const ABORT_TEXT: &str = "exception 0xC0000409 (fail-fast)";
#[cfg(windows)]
pub const ABORT_NAME: &str = "fail-fast";

/// Checks a report's `exit` object for an aborted child.
pub fn assert_abort_exit(exit: &serde_json::Value, summary: &serde_json::Value) {
    #[cfg(unix)]
    {
        assert_eq!(exit["kind"], "signal", "{summary}");
        assert_eq!(exit["signal"], 6);
    }
    #[cfg(windows)]
    {
        assert_eq!(exit["kind"], "exception", "{summary}");
        assert_eq!(exit["code"], 0xC000_0409_u32);
    }
    assert_eq!(exit["name"], ABORT_NAME);
}

/// The cdylib the gate loads, beside the gate binary (`target/<profile>/`). The workspace is
/// built before the tests (scripts/test.sh): this package does not depend on stellatune-ffi,
/// it loads it at run time, and a test never runs cargo (under Wine it could not even wait
/// for it).
pub fn cdylib() -> PathBuf {
    artifacts::built(&hot_restart_stress::lib_name())
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
    artifacts::packaged_plugin("asio")
}

fn run_with_report(args: &[&str], limit: Duration, report: &str) -> GateRun {
    let lib = cdylib();
    let out = tempfile::tempdir().expect("temp dir");
    let child = Command::new(env!("CARGO_BIN_EXE_hot-restart-stress"))
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
    let output = output_within(child, limit, "gate");
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
