//! Simulated Flutter hot restarts at the ABI level, in-process through the rlib: 50 cycles of
//! init, (every other cycle) prepare_hot_restart, create a client, route, play, wait for the
//! track to start, and abandon the client without disposing of it. Threads, file descriptors
//! and clients must not pile up, and the runtime must have started exactly once.
//!
//! One test in this file, so it owns the process-wide runtime.

mod common;

use std::time::Duration;

use common::*;
use stellatune_ffi::*;

const CYCLES: usize = 50;
const LEASE_MS: u64 = 150;

fn threads() -> u64 {
    stellatune_probe::threads().expect("thread count")
}

/// File descriptors on Linux, handles on Windows.
fn handles() -> u64 {
    stellatune_probe::handles().expect("handle count")
}

#[test]
fn fifty_hot_restarts_leak_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 2.0);
    let config = serde_json::json!({
        "client_lease_ms": LEASE_MS,
        "data_dir": tmp.path().join("data"),
        "log_filter": "error",
    })
    .to_string();

    let mut baseline = None;
    for cycle in 1..=CYCLES {
        ok(init(Some(&config)));
        if cycle % 2 == 0 {
            ok(stellatune_runtime_prepare_hot_restart());
        }
        let client = create_client();
        ok(apply_route(client, r#"{"kind":"null"}"#));
        ok(play(client, &wav));
        poll_until(client, "track_started", Duration::from_secs(10));
        // Abandoned: no dispose. The next prepare_hot_restart or the lease ends it.
        if cycle == 1 {
            baseline = Some((threads(), handles()));
        }
    }
    let (threads_1, fds_1) = baseline.unwrap();
    let (threads_n, fds) = (threads(), handles());
    assert!(
        threads_n <= threads_1 + 2,
        "threads grew from {threads_1} after cycle 1 to {threads_n}"
    );
    assert!(
        fds <= fds_1 + 4,
        "fds grew from {fds_1} after cycle 1 to {fds}"
    );

    // Past one lease (and a supervisor round) every abandoned client is gone.
    std::thread::sleep(Duration::from_millis(LEASE_MS + 600));
    let m = metrics();
    assert!(m["player_clients_active"].as_u64().unwrap() <= 1, "{m}");
    assert_eq!(m["runtime_host_inits_total"], 1, "{m}");
    assert_eq!(m["state"], "running", "{m}");
    assert!(
        m["clients_evicted_total"].as_u64().unwrap() >= (CYCLES - 1) as u64,
        "{m}"
    );
    assert_eq!(m["client_generation"], 1 + (CYCLES / 2) as u64, "{m}");

    ok(stellatune_runtime_shutdown());
    let m = metrics();
    assert_eq!(m["runtime_threads"], 0, "{m}");
    assert_eq!(m["player_clients_active"], 0, "{m}");
    assert!(threads() <= threads_1, "runtime threads joined at shutdown");
}
