//! Sidecar lifecycle as the host sees it: which stops are reported as faults
//! (`sidecar_exited`) and what the host log says about spawn, reuse and stop. Needs the
//! plugin and sidecar built: `cargo build -p stellatune-plugin-asio -p stellatune-sidecar-host`.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

mod common;

use common::*;
use stellatune_audio::{Sink, SinkFactory, StreamSpec};
use stellatune_plugin_host::{PluginNotice, PluginRuntime};

/// A plugin runtime with the packaged asio plugin installed, and every plugin event it saw.
struct Rig {
    _dir: tempfile::TempDir,
    runtime: PluginRuntime,
    notices: Arc<Mutex<Vec<PluginNotice>>>,
}

impl Rig {
    fn new() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let notices = Arc::new(Mutex::new(Vec::new()));
        let seen = notices.clone();
        let runtime = PluginRuntime::start(
            &data.join("plugins"),
            &data,
            Arc::new(move |n| seen.lock().unwrap_or_else(PoisonError::into_inner).push(n)),
        )
        .unwrap();
        runtime.install(&packaged_plugin_in(dir.path())).unwrap();
        Rig {
            _dir: dir,
            runtime,
            notices,
        }
    }

    fn sink(&self) -> Box<dyn Sink> {
        Box::new(
            self.runtime
                .create_sink("asio", None, "null", None)
                .unwrap(),
        )
        .create()
        .unwrap()
    }

    fn events(&self, kind: &str) -> usize {
        self.notices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|n| n.kind == kind)
            .count()
    }

    fn metric(&self, name: &str) -> i64 {
        self.runtime
            .metrics()
            .reported
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn wait_sidecar_stopped(&self) {
        wait_until("sidecar stopped", Duration::from_secs(3), || {
            self.metric("asio_sidecar_running") == 0
        });
    }
}

/// One lease cycle with two sinks: the first spawns the sidecar, the second reuses it, the
/// last close stops it.
fn two_sink_cycle(rig: &Rig) {
    let spec = StreamSpec::new(RATE, 2);
    let mut a = rig.sink();
    let mut b = rig.sink();
    a.open(spec).unwrap();
    b.open(spec).unwrap();
    assert!(a.write(&[0.1f32; 512]).unwrap() > 0);
    a.close().unwrap();
    drop(a);
    assert_eq!(
        rig.metric("asio_sidecar_running"),
        1,
        "b still holds a lease"
    );
    b.close().unwrap();
    drop(b);
    rig.wait_sidecar_stopped();
}

#[test]
fn releasing_the_last_lease_stops_the_sidecar_without_a_fault_event() {
    let rig = Rig::new();
    for _ in 0..3 {
        two_sink_cycle(&rig);
    }
    // The reader thread reports an exit as it sees the pipe close; give a late report time
    // to arrive before asserting there is none.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.events("sidecar_exited"),
        0,
        "a deliberate stop is no fault"
    );
    assert_eq!(rig.metric("asio_sidecar_spawns_total"), 3);
    rig.runtime.shutdown();
}

#[test]
fn a_deliberate_stop_is_silent_but_a_killed_sidecar_is_still_reported() {
    let rig = Rig::new();
    let spec = StreamSpec::new(RATE, 2);
    let mut sink = rig.sink();
    sink.open(spec).unwrap();
    sink.close().unwrap();
    // A closed sink keeps its lease (its next open reuses the sidecar); destroying it
    // releases the last lease.
    drop(sink);
    rig.wait_sidecar_stopped();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        rig.events("sidecar_exited"),
        0,
        "a deliberate stop is no fault"
    );
    let mut sink = rig.sink();
    sink.open(spec).unwrap();
    {
        let (live, _) = sidecars_of(me());
        assert_eq!(live.len(), 1, "{live:?}");
        stellatune_probe::kill(live[0]).unwrap();
        wait_until(
            "sidecar_exited after a kill",
            Duration::from_secs(3),
            || rig.events("sidecar_exited") == 1,
        );
        // The next write recovers onto a fresh sidecar.
        wait_until("recovery", Duration::from_secs(3), || {
            sink.write(&[0.0f32; 256]).is_ok() && rig.events("sidecar_recovered") == 1
        });
    }
    sink.close().unwrap();
    drop(sink);
    rig.wait_sidecar_stopped();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(rig.events("sidecar_exited"), 1, "only the kill was a fault");
    rig.runtime.shutdown();
}

/// The last lease's sidecar stops on a thread of the plugin's: the thread that lets go (in a
/// player, the engine's output thread closing its sink, or a shutdown) does not wait out the
/// sidecar's exit, and a new lease of the same signature waits for that stop before it
/// spawns, so two sidecars of one signature never run at once. A suspended sidecar cannot
/// exit when its stdin closes: it is killed after its grace period, while the drop has long
/// returned.
#[test]
fn the_last_lease_stops_its_sidecar_off_the_releasing_thread_and_a_new_lease_waits_for_it() {
    let rig = Rig::new();
    let spec = StreamSpec::new(RATE, 2);
    let mut first = rig.sink();
    first.open(spec).unwrap();
    let (live, _) = sidecars_of(me());
    assert_eq!(live.len(), 1, "{live:?}");
    let old = live[0];
    stellatune_probe::suspend(old).unwrap();
    first.close().unwrap();
    drop(first);
    assert!(
        stellatune_probe::is_running(old),
        "the releasing thread waited for the sidecar's exit"
    );
    let mut second = rig.sink();
    second.open(spec).unwrap();
    let (live, _) = sidecars_of(me());
    assert!(
        !stellatune_probe::is_running(old),
        "the new lease did not wait for the old sidecar's stop"
    );
    assert_eq!(live.len(), 1, "one sidecar at a time: {live:?}");
    assert_ne!(live[0], old);
    assert!(second.write(&[0.1f32; 512]).unwrap() > 0);
    second.close().unwrap();
    drop(second);
    rig.wait_sidecar_stopped();
    assert_eq!(rig.metric("asio_sidecar_spawns_total"), 2);
    rig.runtime.shutdown();
}

#[test]
fn a_sink_reopened_at_another_spec_keeps_its_sidecar() {
    let rig = Rig::new();
    let mut sink = rig.sink();
    for (rate, channels) in [(44_100, 2), (48_000, 2), (96_000, 1), (44_100, 2)] {
        sink.open(StreamSpec::new(rate, channels)).unwrap();
        let frames = vec![0.1f32; 256 * usize::from(channels)];
        assert!(sink.write(&frames).unwrap() > 0, "{rate} Hz, {channels} ch");
        sink.close().unwrap();
        assert_eq!(rig.metric("asio_sidecar_running"), 1);
    }
    assert_eq!(rig.metric("asio_sidecar_spawns_total"), 1);
    drop(sink);
    rig.wait_sidecar_stopped();
    rig.runtime.shutdown();
}

/// Writes all of `frames` (stereo) into `sink`, as fast as its ring takes them.
fn feed(sink: &mut dyn Sink, frames: usize) {
    let block = vec![0.25f32; 2 * 1024];
    let mut left = frames;
    wait_until("the ring took every frame", Duration::from_secs(10), || {
        let offer = left.min(1024) * 2;
        left -= sink.write(&block[..offer]).unwrap();
        left == 0
    });
}

fn wait_played_out(sink: &dyn Sink) {
    wait_until("queued frames played", Duration::from_secs(10), || {
        sink.status().queued_frames == 0
    });
}

#[test]
fn an_underrun_of_the_sidecar_reaches_the_sink_status_and_the_generic_counter() {
    let rig = Rig::new();
    let mut sink = rig.sink();
    sink.open(StreamSpec::new(RATE, 2)).unwrap();
    // A track that ends: written, marked drained (flush), played out, then the next one. The
    // silence between them is no underrun.
    feed(sink.as_mut(), RATE as usize / 10);
    sink.flush().unwrap();
    wait_played_out(sink.as_ref());
    feed(sink.as_mut(), RATE as usize / 10);
    sink.flush().unwrap();
    wait_played_out(sink.as_ref());
    assert_eq!(sink.status().underruns, 0, "a drained end is no underrun");
    assert_eq!(rig.metric("audio_underruns_total"), 0);
    // The writer stops feeding in the middle of the stream: the device runs dry, and when
    // audio comes again the gap is one underrun.
    feed(sink.as_mut(), RATE as usize / 10);
    wait_played_out(sink.as_ref());
    feed(sink.as_mut(), RATE as usize / 10);
    wait_until("underrun reported", Duration::from_secs(5), || {
        sink.status().underruns == 1
    });
    assert_eq!(rig.metric("audio_underruns_total"), 1);
    sink.flush().unwrap();
    sink.close().unwrap();
    // The count stays the sink's across streams.
    sink.open(StreamSpec::new(48_000, 2)).unwrap();
    assert_eq!(sink.status().underruns, 1);
    sink.close().unwrap();
    drop(sink);
    rig.wait_sidecar_stopped();
    assert_eq!(rig.metric("audio_underruns_total"), 1);
    rig.runtime.shutdown();
}

/// The log lines of `body`, run in a child process of this test binary whose stderr carries
/// the host's log (the subscriber writes straight to stderr, past the test harness).
fn host_log_of(test_name: &str, body: impl FnOnce(&Path)) -> Option<String> {
    const CHILD: &str = "STELLATUNE_ASIO_LOG_CHILD";
    if let Some(dir) = std::env::var_os(CHILD) {
        stellatune_runtime_host::init_logging(
            Some("info"),
            stellatune_runtime_host::LogFormat::Text,
        );
        body(Path::new(&dir));
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "child run failed: {out:?}\n{log}");
    Some(log)
}

fn lines_with<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn one_lease_cycle_logs_spawn_reuse_and_stop_with_the_reason() {
    let Some(log) = host_log_of(
        "one_lease_cycle_logs_spawn_reuse_and_stop_with_the_reason",
        |_| {
            let rig = Rig::new();
            two_sink_cycle(&rig);
            rig.runtime.shutdown();
        },
    ) else {
        return;
    };
    let spawned = lines_with(&log, "sidecar spawned");
    assert_eq!(spawned.len(), 1, "{log}");
    assert!(
        spawned[0].contains("pid ") && spawned[0].contains("builtin") && spawned[0].contains(" ms"),
        "spawn names pid, backend and time: {}",
        spawned[0]
    );
    assert!(spawned[0].contains("leases 1"), "{}", spawned[0]);
    let reused = lines_with(&log, "sidecar reused");
    assert_eq!(reused.len(), 1, "{log}");
    assert!(reused[0].contains("leases 2"), "{}", reused[0]);
    let stopped = lines_with(&log, "sidecar stopped");
    assert_eq!(stopped.len(), 1, "{log}");
    assert!(
        stopped[0].contains("reason: last lease released") && stopped[0].contains(" INFO "),
        "{}",
        stopped[0]
    );
    assert!(
        lines_with(&log, "stopped talking").is_empty(),
        "a deliberate stop logs no fault: {log}"
    );
    assert!(lines_with(&log, " WARN ").is_empty(), "{log}");
}

#[cfg(unix)] // SIGKILL is how a crash is simulated; there is no portable equivalent.
#[test]
fn a_crashed_sidecar_is_logged_as_replaced_with_its_reason() {
    let Some(log) = host_log_of(
        "a_crashed_sidecar_is_logged_as_replaced_with_its_reason",
        |_| {
            let rig = Rig::new();
            let mut sink = rig.sink();
            sink.open(StreamSpec::new(RATE, 2)).unwrap();
            let (live, _) = sidecars_of(me());
            stellatune_probe::kill(live[0]).unwrap();
            wait_until("sidecar_exited", Duration::from_secs(3), || {
                rig.events("sidecar_exited") == 1
            });
            wait_until("recovery", Duration::from_secs(3), || {
                sink.write(&[0.0f32; 256]).is_ok() && rig.events("sidecar_recovered") == 1
            });
            sink.close().unwrap();
            drop(sink);
            rig.wait_sidecar_stopped();
            rig.runtime.shutdown();
        },
    ) else {
        return;
    };
    assert_eq!(lines_with(&log, "sidecar spawned").len(), 2, "{log}");
    let stopped = lines_with(&log, "sidecar stopped");
    assert_eq!(stopped.len(), 2, "{log}");
    assert!(stopped[0].contains("reason: replaced: crashed"), "{log}");
    assert!(stopped[1].contains("reason: last lease released"), "{log}");
    assert_eq!(lines_with(&log, "stopped talking").len(), 1, "{log}");
}
