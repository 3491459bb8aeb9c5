//! A sidecar whose handshake fails is killed at once and leaves nothing behind: no child
//! process, no zombie, no thread, and the running gauge back at zero. Alone in its binary so that the process's
//! thread count is not disturbed by other tests running beside it.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::*;
use stellatune_audio::{SinkFactory, StreamSpec};
use stellatune_plugin_host::PluginRuntime;

fn threads_of_this_process() -> u64 {
    stellatune_probe::threads().expect("thread count")
}

fn fail_once(runtime: &PluginRuntime, sidecar: &[&str]) -> String {
    let config = fake_sidecar_config(sidecar).to_string();
    let mut sink = Box::new(
        runtime
            .create_sink("asio", None, "null", Some(&config))
            .unwrap(),
    )
    .create()
    .unwrap();
    let err = sink
        .open(StreamSpec::new(RATE, 2))
        .expect_err("a sidecar without a handshake cannot open a stream");
    err.to_string()
}

#[test]
fn failed_handshakes_leave_no_child_thread_or_gauge_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = PluginRuntime::start(&data.join("plugins"), &data, Arc::new(|_| {})).unwrap();
    runtime.install(&packaged_plugin_in(dir.path())).unwrap();
    // `{"id":1,"body":{"type":"ok"}}` in hex, after its little-endian length 29.
    let wrong = format!(
        "1d000000{}",
        br#"{"id":1,"body":{"type":"ok"}}"#.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let sidecars: [&[&str]; 3] = [
        // Exits before answering: the pipe closes at once.
        &["--exit", "3"],
        // Answers with a frame whose payload is no JSON (`notjson!`), then stays alive until
        // killed.
        &[
            "--write-hex",
            "080000006e6f746a736f6e21",
            "--sleep-ms",
            "30000",
        ],
        // Answers the handshake with a well-formed frame that is no handshake answer, then
        // stays alive until killed.
        &["--write-hex", &wrong, "--sleep-ms", "30000"],
    ];
    // The first attempt starts the plugin's long-lived service thread; count after it.
    fail_once(&runtime, sidecars[0]);
    let baseline = threads_of_this_process();
    let running = || {
        runtime
            .metrics()
            .reported
            .get("asio_sidecar_running")
            .copied()
    };
    // How long each attempt at a sidecar that stays alive after its bad answer took.
    let mut hanging_took = Vec::new();
    for i in 0..20 {
        let sidecar = sidecars[i % sidecars.len()];
        let began = Instant::now();
        let message = fail_once(&runtime, sidecar);
        if i % sidecars.len() != 0 {
            hanging_took.push(began.elapsed());
        }
        assert!(message.contains("sidecar"), "attempt {i}: {message}");
        // Spawn returned its error: everything it started is already gone.
        assert_eq!(running(), Some(0), "attempt {i}: the running gauge");
        let (live, zombies) = children_of(me(), "");
        assert!(live.is_empty(), "attempt {i}: children left: {live:?}");
        assert_eq!(zombies, 0, "attempt {i}: zombies");
        // Joined before the spawn returned; the system may take a moment to drop a thread.
        wait_until("threads joined", Duration::from_secs(2), || {
            threads_of_this_process() <= baseline
        });
    }
    // A sidecar that failed its handshake is killed at once, not given the grace period of a
    // healthy one that was asked to stop (with it, every attempt would take 2 s or more).
    // Starting a process under Wine takes a few hundred ms by itself, so the bound there is
    // looser, still below the grace. The median, because a busy machine may hold up any one
    // process start.
    hanging_took.sort();
    let median = hanging_took[hanging_took.len() / 2];
    let bound = Duration::from_millis(if cfg!(windows) { 900 } else { 400 });
    assert!(
        median < bound,
        "a failed handshake took {median:?} (median); each: {hanging_took:?}"
    );
    let m = runtime.metrics();
    assert_eq!(m.reported.get("asio_sidecar_spawns_total"), Some(&21));
    runtime.shutdown();
}
