//! The gate against the real cdylib: a clean 20-cycle run passes; the deliberate defects
//! (a thread leaked per attach, eviction switched off, a crashing child, an overrunning call)
//! each make it fail on the check that is meant to catch them.

mod common;

use std::time::Duration;

use common::run_gate;

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn twenty_hot_restarts_in_both_modes_pass() {
    let run = run_gate(
        &["--cycles", "20", "--mode", "both", "--route", "null"],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(0), "{}", run.describe());
    assert_eq!(run.summary["verdict"], "pass", "{}", run.summary);
    assert!(run.failed_checks().is_empty(), "{}", run.summary);
    assert_eq!(run.summary["stats"]["cycles"], 20);
    assert_eq!(run.summary["stats"]["confirmed"], 20);
    assert_eq!(run.summary["run"]["exit"]["kind"], "code");
    assert_eq!(run.check("runtime_host_inits_total")["value"], "1");
    assert_eq!(run.check("lost_connections")["value"], "0");
    // The runtime's default lease: no client_lease_ms passed, and the bound follows it.
    assert_eq!(run.summary["config"]["lease_ms"], 30_000);
    assert_eq!(run.summary["config"]["lease_is_runtime_default"], true);
    assert_eq!(run.summary["stats"]["clients_bound"]["max"], 2);

    let csv = std::fs::read_to_string(run.run_dir.join("samples.csv")).unwrap();
    assert_eq!(csv.lines().count(), 21, "header and 20 rows:\n{csv}");
    let header = csv.lines().next().unwrap();
    for column in [
        "threads",
        "fds",
        "rss_kb",
        "sidecars",
        "zombies",
        "rings",
        "shadow_copies",
        "runtime_host_inits_total",
        "player_clients_active",
        "runtime_threads",
        "plugin_generations_active",
        "plugin_generations_draining",
        "asio_sidecar_spawns_total",
        "asio_sidecar_running",
        "ring_files",
        "plugin_shadow_copies",
        "client_generation",
        "clients_evicted_total",
        "client_events_queued",
    ] {
        assert!(
            header.split(',').any(|c| c == column),
            "{column} in {header}"
        );
    }
    // Both modes ran, alternating.
    assert!(csv.contains(",with-prepare,") && csv.contains(",without-prepare,"));

    let md = std::fs::read_to_string(run.run_dir.join("summary.md")).unwrap();
    assert!(md.contains("# Hot-restart stress gate: PASS"), "{md}");
    assert!(
        md.contains("| check | value | threshold | result |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(run.run_dir.join("trend.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("RSS"), "an SVG plot");
    assert!(run.stdout().contains("verdict: PASS"), "{}", run.describe());
}

/// Each isolate receives its events on a port and never calls in for them; nobody calls
/// prepare_hot_restart, and the lease is the runtime's default (30 s): a dead isolate's
/// client goes the moment a post to its closed port fails, so at most two are ever alive.
#[test]
fn hot_restarts_with_event_ports_pass_on_the_default_lease_without_prepare() {
    let run = run_gate(
        &[
            "--cycles",
            "12",
            "--mode",
            "without-prepare",
            "--events",
            "port",
            "--route",
            "null",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(0), "{}", run.describe());
    assert_eq!(run.summary["verdict"], "pass", "{}", run.summary);
    assert_eq!(run.summary["stats"]["confirmed"], 12);
    assert_eq!(run.summary["config"]["events"], "port");
    assert_eq!(run.summary["config"]["lease_ms"], 30_000);
    assert_eq!(run.summary["config"]["lease_is_runtime_default"], true);
    assert_eq!(run.summary["stats"]["clients_bound"]["max"], 2);
    assert!(run.summary["stats"]["max_clients_active"].as_u64().unwrap() <= 2);
    // Every dead isolate's client was evicted (the last one's isolate died at the end).
    let csv = std::fs::read_to_string(run.run_dir.join("samples.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header
        .iter()
        .position(|c| *c == "clients_evicted_total")
        .unwrap();
    let last = csv.lines().last().unwrap().split(',').nth(column).unwrap();
    assert!(
        last.parse::<u64>().unwrap() >= 10,
        "clients_evicted_total {last}\n{csv}"
    );
}

/// The same run with eviction switched off: the dead isolates' clients pile up.
#[test]
fn port_eviction_switched_off_fails_on_player_clients_active() {
    let run = run_gate(
        &[
            "--cycles",
            "12",
            "--mode",
            "without-prepare",
            "--events",
            "port",
            "--fault",
            "skip-eviction",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    let failed = run.failed_checks();
    assert!(
        failed.contains(&"player_clients_active".to_owned()),
        "{failed:?}"
    );
    assert!(run.summary["stats"]["max_clients_active"].as_u64().unwrap() > 2);
}

#[test]
fn a_thread_leaked_per_attach_fails_the_thread_checks() {
    let run = run_gate(
        &[
            "--cycles",
            "20",
            "--mode",
            "both",
            "--fault",
            "leak-thread-per-attach",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert_eq!(run.summary["verdict"], "fail");
    let failed = run.failed_checks();
    assert!(failed.contains(&"threads".to_owned()), "{failed:?}");
    assert!(failed.contains(&"threads_slope".to_owned()), "{failed:?}");
    // Only the thread checks: playback, clients and the rest still hold. (On Windows every
    // leaked thread's committed stack is in the working set too, so memory grows with them.)
    assert!(
        failed
            .iter()
            .all(|id| id.starts_with("threads") || (cfg!(windows) && id == "rss_slope")),
        "{failed:?}"
    );
}

#[test]
fn eviction_switched_off_fails_on_player_clients_active() {
    let run = run_gate(
        &[
            "--cycles",
            "20",
            "--mode",
            "without-prepare",
            "--fault",
            "skip-eviction",
            // 500 ms cycles: ceil(300 / 500) + 1 = 2 clients at most while eviction works.
            "--lease-ms",
            "300",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    let failed = run.failed_checks();
    assert!(
        failed.contains(&"player_clients_active".to_owned()),
        "{failed:?}"
    );
    assert!(run.summary["stats"]["max_clients_active"].as_u64().unwrap() > 2);
    assert_eq!(run.summary["stats"]["clients_bound"]["max"], 2);
}

#[test]
fn a_crashing_child_is_a_failed_verdict_with_its_signal() {
    let run = run_gate(&["--cycles", "5", "--fault", "abort-child"], LIMIT);
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    let exit = &run.summary["run"]["exit"];
    common::assert_abort_exit(exit, &run.summary);
    let check = run.check("child_exit");
    assert_eq!(check["pass"], false);
    assert!(
        check["value"]
            .as_str()
            .unwrap()
            .contains(common::ABORT_NAME)
    );
    assert_eq!(run.check("cycles_completed")["value"], "2 of 5");
    assert!(
        run.stdout()
            .contains(&format!("crashed: {}", common::ABORT_TEXT)),
        "{}",
        run.describe()
    );
}

#[test]
fn an_overrunning_call_is_a_lost_connection() {
    // A bound generous enough that no honest call overruns it on a loaded machine; four
    // cycles, so the abandoned worker has long finished by the last sample.
    let run = run_gate(
        &[
            "--cycles",
            "4",
            "--fault",
            "stall-call",
            "--call-timeout-ms",
            "1000",
        ],
        LIMIT,
    );
    assert_eq!(run.output.status.code(), Some(1), "{}", run.describe());
    assert_eq!(run.failed_checks(), ["lost_connections"], "{}", run.summary);
    assert_eq!(run.check("lost_connections")["value"], "1");
    let last = &run.summary["stats"]["last"];
    assert_eq!(last["lost_connections"], 1, "{}", run.summary);
}
