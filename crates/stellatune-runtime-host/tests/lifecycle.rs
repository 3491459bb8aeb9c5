//! Lifecycle defects that once existed, one regression test each: races between shutdown,
//! init, attach and the lease supervisor, a lease that expired under a call in flight, an
//! eviction that left the DSP chain behind, a second engine after a shutdown timeout, and a
//! dead engine after a control-thread panic.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use stellatune_runtime_host::{
    BuiltinRoute, DspSpec, HostConfig, HostError, HostEvent, HostNotice, LifecycleState,
    OutputRoute, PlaybackState, RuntimeHost,
};
use support::*;

fn null() -> OutputRoute {
    BuiltinRoute::Null.into()
}

fn with_lease(f: &Fixture, lease_ms: u64) -> HostConfig {
    HostConfig {
        client_lease_ms: Some(lease_ms),
        ..f.config()
    }
}

/// Runs `body` on a thread and fails the test (instead of hanging it) when it takes longer
/// than `limit`: a deadlock is a failure with a message.
fn within(limit: Duration, what: &str, body: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        body();
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) => handle.join().unwrap(),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: no progress within {limit:?} (deadlock)")
        }
    }
}

/// `shutdown` once held the command gate while it joined the lease supervisor, which could
/// itself be waiting for that gate to stop playback after the last client expired.
#[test]
fn shutdown_never_deadlocks_with_the_lease_supervisor() {
    within(Duration::from_secs(120), "shutdown vs supervisor", || {
        let f = Fixture::new();
        let host = Arc::new(RuntimeHost::new("deadlock"));
        for round in 0..150u64 {
            host.init(with_lease(&f, 2)).unwrap();
            // Clients that expire at once, so the supervisor keeps reaching for the gate,
            // while a busy client holds it shared.
            for _ in 0..3 {
                host.attach_client().unwrap();
            }
            let busy = host.attach_client().unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let hammer = {
                let (host, stop) = (host.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let _ = host.apply_route(busy.id, null());
                        let _ = host.status(busy.id);
                    }
                })
            };
            std::thread::sleep(Duration::from_micros(500 * (round % 7)));
            host.shutdown().unwrap();
            stop.store(true, Ordering::SeqCst);
            hammer.join().unwrap();
        }
    });
}

/// An attach racing shutdown could register after shutdown evicted everyone: a live client
/// of a stopped runtime.
#[test]
fn no_client_survives_a_shutdown_it_raced() {
    let f = Fixture::new();
    let host = Arc::new(RuntimeHost::new("attach-race"));
    for _ in 0..200 {
        host.init(f.config()).unwrap();
        let attacher = {
            let host = host.clone();
            std::thread::spawn(move || while host.attach_client().is_ok() {})
        };
        std::thread::sleep(Duration::from_micros(200));
        host.shutdown().unwrap();
        attacher.join().unwrap();
        assert_eq!(host.state(), LifecycleState::Stopped);
        assert_eq!(
            host.metrics().player_clients_active,
            0,
            "a client attached during shutdown outlived it"
        );
        assert!(host.attach_client().is_err());
    }
}

/// A lease once counted from the start of a call: a client whose call took longer than its
/// lease (a route change that waits for a slow sink to close) was evicted while inside it.
#[test]
fn a_client_inside_a_long_call_is_not_evicted() {
    let f = Fixture::new();
    let host = RuntimeHost::new("long-call");
    host.init(with_lease(&f, 100)).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(
        c.id,
        misbehave_route(serde_json::json!({ "hang_in_close_ms": 1200 })),
    )
    .unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        host.status(c.id).unwrap().frames_written > 0
    }));
    // Replacing the route closes the misbehaving sink: 1.2 s on the engine's output thread,
    // longer than two naps of the lease supervisor. The call itself no longer waits for it
    // (the engine never waits on a sink), and the client is answered meanwhile.
    host.apply_route(c.id, null()).unwrap();
    host.status(c.id)
        .expect("the client is answered while the old sink closes");
    // A call that does wait (a poll longer than the lease) keeps the client alive, and the
    // lease counts from its end.
    host.poll_event(c.id, Duration::from_millis(300)).unwrap();
    host.status(c.id)
        .expect("the client lived through its own call");
    // A poll that waits longer than the lease keeps the client alive too.
    drain_events(&host, c.id);
    host.poll_event(c.id, Duration::from_millis(400)).unwrap();
    host.status(c.id)
        .expect("a waiting poll keeps its client alive");
    assert_eq!(host.metrics().clients_evicted_total, 0);
    host.shutdown().unwrap();
}

fn gain(g: f32) -> Vec<DspSpec> {
    vec![DspSpec::new(PLUGIN_ID, Some("gain")).with_config(serde_json::json!({ "gain": g }))]
}

fn peak(path: &std::path::Path) -> f32 {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]).abs())
        .fold(0.0, f32::max)
}

/// Lease expiry of the last client cleared the route but left its DSP chain in the engine,
/// where it muted the next session.
#[test]
fn lease_eviction_of_the_last_client_removes_its_dsp_chain() {
    let f = Fixture::new();
    let host = RuntimeHost::new("dsp-lease");
    host.init(with_lease(&f, 150)).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let gone = host.attach_client().unwrap();
    host.apply_route(gone.id, capture_route(&f.path().join("first.raw")))
        .unwrap();
    host.set_dsp_chain(gone.id, gain(0.0)).unwrap();
    // Abandoned: its lease runs out and the supervisor evicts it.
    assert!(wait_for(Duration::from_secs(5), || {
        host.metrics().player_clients_active == 0
    }));
    let next = host.attach_client().unwrap();
    let heard = f.path().join("second.raw");
    host.apply_route(next.id, capture_route(&heard)).unwrap();
    host.play(next.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(10), || {
        host.status(next.id).unwrap().state == PlaybackState::Stopped
    }));
    host.clear_route(next.id).unwrap();
    assert!(
        peak(&heard) > 0.1,
        "the evicted client's gain 0 still muted the next session"
    );
    host.shutdown().unwrap();
}

/// After a shutdown that timed out (a sink hung in close), the host went `Stopped` with the
/// old control thread still alive, and the next init started a second engine beside it.
#[test]
fn init_after_a_timed_out_shutdown_never_runs_two_engines() {
    let f = Fixture::new();
    let host = RuntimeHost::new("timeout");
    // Supervisor, event pump, control thread, output thread and decode worker: what one
    // running runtime owns.
    let fresh_threads = 5;
    let settles_at = |n: u64| {
        wait_for(Duration::from_secs(2), || {
            host.metrics().runtime_threads == n
        }) && {
            std::thread::sleep(Duration::from_millis(100));
            host.metrics().runtime_threads == n
        }
    };
    host.init(f.config()).unwrap();
    assert!(settles_at(fresh_threads));
    host.shutdown().unwrap();
    let config = HostConfig {
        shutdown_timeout_ms: Some(300),
        ..f.config()
    };
    host.init(config.clone()).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(
        c.id,
        misbehave_route(serde_json::json!({ "hang_in_close_ms": 1500 })),
    )
    .unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        host.status(c.id).unwrap().frames_written > 0
    }));
    assert!(matches!(
        host.shutdown(),
        Err(HostError::ShutdownTimeout { .. })
    ));
    // Right away: either refused (the old engine still stops) or started alone.
    match host.init(config.clone()) {
        Ok(_) => {
            // Counted at once: a second engine beside the old one would show 4 or more.
            let threads = host.metrics().runtime_threads;
            assert!(
                threads <= fresh_threads,
                "a second engine started beside the one still stopping: {threads} threads"
            );
            assert!(
                settles_at(fresh_threads),
                "a second engine started beside the one still stopping: {} threads",
                host.metrics().runtime_threads
            );
        }
        Err(e) => {
            assert!(matches!(e, HostError::ShutdownTimeout { .. }), "{e}");
            assert!(wait_for(Duration::from_secs(5), || host
                .init(config.clone())
                .is_ok()));
            assert!(host.metrics().runtime_threads <= fresh_threads);
            assert!(settles_at(fresh_threads));
        }
    }
    host.shutdown().unwrap();
    assert_eq!(host.metrics().runtime_threads, 0);
}

/// A panic on the engine's control thread once left the host `Running` with a dead engine:
/// every command failed until the app restarted the runtime.
#[test]
fn a_crashed_engine_is_replaced_and_keeps_its_route() {
    let f = Fixture::new();
    let host = RuntimeHost::new("crash");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, null()).unwrap();
    host.play(c.id, &f.tone).unwrap();
    // Supervisor, event pump, control thread, output thread and decode worker.
    let threads = 5;
    assert!(wait_for(Duration::from_secs(2), || {
        host.metrics().runtime_threads == threads
    }));
    host.inject_engine_panic().unwrap();
    let restarted = wait_event(&host, c.id, Duration::from_secs(5), |e| {
        matches!(e, HostEvent::Host(HostNotice::EngineRestarted { .. }))
    });
    assert!(restarted.is_some(), "no engine_restarted notice");
    assert_eq!(host.metrics().engine_restarts_total, 1);
    assert_eq!(host.state(), LifecycleState::Running);
    let status = host.status(c.id).unwrap();
    assert!(status.route.is_some(), "the route was not re-applied");
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(5), || {
        host.status(c.id).unwrap().state == PlaybackState::Playing
    }));
    assert!(
        wait_for(Duration::from_secs(2), || {
            host.metrics().runtime_threads == threads
        }),
        "threads {} != {threads}",
        host.metrics().runtime_threads
    );
    host.shutdown().unwrap();
    assert_eq!(host.metrics().runtime_threads, 0);
}

/// A command that meets the dead engine before the supervisor does also brings it back.
#[test]
fn a_command_that_finds_the_engine_dead_restarts_it() {
    let f = Fixture::new();
    let host = RuntimeHost::new("crash-command");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.inject_engine_panic().unwrap();
    // Whoever notices first (this command or the supervisor) restarts it once.
    assert!(wait_for(Duration::from_secs(5), || host
        .set_volume(c.id, 0.5)
        .is_ok()));
    assert_eq!(host.metrics().engine_restarts_total, 1);
    host.shutdown().unwrap();
}

/// A route was once recorded only when the engine answered in time; a sink slow to open made
/// the call time out, the engine applied the route later anyway, and the next rollover
/// skipped its stop-and-clear: music (and a sidecar) went on after `prepare_hot_restart`.
#[test]
fn a_route_that_timed_out_is_still_cleared_by_a_rollover() {
    let f = Fixture::new();
    let host = RuntimeHost::new("late-route");
    host.init(f.config()).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, null()).unwrap();
    host.play(c.id, &f.tone).unwrap();
    // The engine opens a new route at once while playing, on its output thread: the call
    // answers as soon as the route is handed over, while the sink still hangs in open.
    let slow = misbehave_route(serde_json::json!({ "hang_in_open_ms": 2000 }));
    host.apply_route(c.id, slow).unwrap();
    host.prepare_hot_restart().unwrap();
    let next = host.attach_client().unwrap();
    let status = host.status(next.id).unwrap();
    assert_eq!(status.route, None, "the late route survived the rollover");
    assert_eq!(status.state, PlaybackState::Stopped);
    host.shutdown().unwrap();
}
