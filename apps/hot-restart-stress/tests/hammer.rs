//! The lifecycle hammer against the real cdylib: a short clean run passes with every call
//! made, and the watchdog, the crash detection and the code check each fail the run when
//! they should.

mod common;

use std::time::Duration;

use common::{packaged_asio_plugin, run_hammer};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_few_seconds_of_hammering_leave_a_clean_runtime() {
    let plugin = packaged_asio_plugin();
    let plugin_arg = plugin.as_ref().map(|p| p.display().to_string());
    let mut args = vec!["--duration", "4s", "--threads", "8"];
    match &plugin_arg {
        Some(dir) => args.extend(["--install-plugin", dir.as_str()]),
        None => {
            eprintln!("no packaged ASIO plugin (scripts/package-plugins.sh): hammering without it")
        }
    }
    let run = run_hammer(&args, LIMIT);
    assert_eq!(run.output.status.code(), Some(0), "{}", run.describe());
    assert_eq!(run.summary["verdict"], "pass", "{}", run.summary);
    assert!(run.failed_checks().is_empty(), "{}", run.summary);
    let result = &run.summary["result"];
    assert!(result["total_calls"].as_u64().unwrap() > 100, "{result}");
    // Every function of the ABI was called, from 8 threads (on Windows all but the device
    // list, which Wine's WASAPI never answers: see `Call::ALL`).
    assert_eq!(
        result["per_call"].as_object().unwrap().len(),
        if cfg!(windows) { 28 } else { 29 },
        "{result}"
    );
    assert_eq!(result["threads"], 8);
    let state = &result["final_state"];
    assert_eq!(state["live_children"], 0);
    assert_eq!(state["rings"], 0);
    assert_eq!(state["threads"], state["baseline_threads"]);
    let stdout = run.stdout();
    assert!(
        stdout.contains("| call | calls | return codes |"),
        "{stdout}"
    );
    assert!(stdout.contains("| code | name | calls |"), "{stdout}");
    assert!(
        stdout.lines().last().unwrap().starts_with("hammer: PASS: "),
        "{stdout}"
    );
}

#[test]
fn a_call_that_does_not_return_is_caught_by_the_watchdog() {
    let run = run_hammer(
        &[
            "--duration",
            "10s",
            "--threads",
            "2",
            "--call-limit-ms",
            "1500",
            "--no-gdb",
            "--fault",
            "stall",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert!(
        run.failed_checks().contains(&"watchdog".to_owned()),
        "{}",
        run.summary
    );
    let stuck = &run.summary["stuck"]["stuck"][0];
    assert_eq!(stuck["thread"], "hammer-0", "{}", run.summary);
    assert!(stuck["call"].as_str().unwrap().contains("fault: stall"));
    assert!(
        run.stdout()
            .contains("hammer-0 stuck in runtime_metrics_json (fault: stall)"),
        "{}",
        run.describe()
    );
}

#[test]
fn a_crash_is_reported_with_its_signal() {
    let run = run_hammer(
        &["--duration", "10s", "--threads", "4", "--fault", "abort"],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    common::assert_abort_exit(&run.summary["exit"], &run.summary);
    assert!(run.failed_checks().contains(&"child_exit".to_owned()));
    assert!(
        run.stdout()
            .contains(&format!("crashed: {}", common::ABORT_TEXT)),
        "{}",
        run.describe()
    );
}

#[test]
fn a_code_the_header_does_not_define_fails() {
    let run = run_hammer(
        &[
            "--duration",
            "2s",
            "--threads",
            "2",
            "--fault",
            "undocumented-code",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert_eq!(
        run.failed_checks(),
        ["undocumented_codes"],
        "{}",
        run.summary
    );
    assert_eq!(run.summary["result"]["undocumented"][0]["code"], -99);
}
