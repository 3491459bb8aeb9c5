//! RuntimeHost behaviour a front end relies on, on isolated hosts.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{
    BuiltinRoute, HostConfig, HostError, HostEvent, HostNotice, InitOutcome, LifecycleState,
    OutputRoute, PlaybackState, RuntimeHost,
};
use support::{is_track_started, wait_event, wait_for, write_tone};

struct Fixture {
    dir: tempfile::TempDir,
    tone: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let tone = dir.path().join("tone.wav");
    write_tone(&tone, 2.0);
    Fixture { dir, tone }
}

fn config(dir: &Path) -> HostConfig {
    HostConfig {
        data_dir: Some(dir.join("data")),
        log_filter: Some("warn".into()),
        ..HostConfig::default()
    }
}

fn os_threads() -> u64 {
    stellatune_probe::threads().expect("thread count")
}

fn null() -> OutputRoute {
    BuiltinRoute::Null.into()
}

#[test]
fn init_is_idempotent_and_shutdown_is_deterministic() {
    let f = fixture();
    let host = RuntimeHost::new("idem");
    let baseline = os_threads();
    assert_eq!(
        host.init(config(f.dir.path())).unwrap(),
        InitOutcome::Started
    );
    for _ in 0..10 {
        assert_eq!(
            host.init(config(f.dir.path())).unwrap(),
            InitOutcome::Reused
        );
    }
    let m = host.metrics();
    assert_eq!(m.runtime_host_inits_total, 1);
    // Supervisor, event pump, control thread, output thread and decode worker.
    assert!(wait_for(Duration::from_secs(2), || host
        .metrics()
        .runtime_threads
        == 5));
    host.shutdown().unwrap();
    assert_eq!(host.state(), LifecycleState::Stopped);
    assert_eq!(host.metrics().runtime_threads, 0);
    assert!(
        wait_for(Duration::from_secs(2), || os_threads() <= baseline),
        "engine threads still alive: {} > {baseline}",
        os_threads()
    );
    // Init after shutdown starts a new engine and counts it.
    assert_eq!(
        host.init(config(f.dir.path())).unwrap(),
        InitOutcome::Started
    );
    assert_eq!(host.metrics().runtime_host_inits_total, 2);
    let p = host.attach_client().unwrap();
    host.apply_route(p.id, null()).unwrap();
    host.play(p.id, &f.tone).unwrap();
    assert!(wait_event(&host, p.id, Duration::from_secs(5), is_track_started).is_some());
    host.shutdown().unwrap();
    assert!(wait_for(Duration::from_secs(2), || os_threads() <= baseline));
    // Shutdown twice is fine.
    host.shutdown().unwrap();
}

#[test]
fn shutdown_without_init_starts_nothing() {
    let host = RuntimeHost::new("never");
    host.shutdown().unwrap();
    assert_eq!(host.state(), LifecycleState::Uninit);
    let m = host.metrics();
    assert_eq!(m.runtime_host_inits_total, 0);
    assert_eq!(m.runtime_threads, 0);
    assert!(matches!(
        host.attach_client(),
        Err(HostError::NotInitialized)
    ));
    assert!(matches!(
        host.prepare_hot_restart(),
        Err(HostError::NotInitialized)
    ));
    assert!(matches!(host.pause(1), Err(HostError::NotInitialized)));
}

#[test]
fn attach_dispose_and_hot_restart_cycles_keep_threads_flat() {
    let f = fixture();
    let host = RuntimeHost::new("cycles");
    host.init(config(f.dir.path())).unwrap();
    // Supervisor, event pump, control thread, output thread and decode worker.
    assert!(wait_for(Duration::from_secs(2), || host
        .metrics()
        .runtime_threads
        == 5));
    // The control thread counts the decode worker just before it creates it, so the count
    // can say 3 while the OS lists 2 of them (seen under load). The control thread answers
    // commands only after that spawn returned: one answered command makes the baseline whole.
    let probe = host.attach_client().unwrap();
    host.status(probe.id).unwrap();
    host.detach_client(probe.id).unwrap();
    let threads_before = os_threads();
    for _ in 0..1000 {
        let c = host.attach_client().unwrap();
        host.detach_client(c.id).unwrap();
    }
    let mut last_generation = 0;
    for i in 0..200 {
        let generation = host.prepare_hot_restart().unwrap();
        assert!(generation > last_generation);
        last_generation = generation;
        let c = host.attach_client().unwrap();
        assert_eq!(c.generation, generation);
        if i % 20 == 0 {
            host.apply_route(c.id, null()).unwrap();
            host.play(c.id, &f.tone).unwrap();
        }
        // The isolate dies without disposing: the next rollover must collect it.
    }
    let m = host.metrics();
    assert_eq!(m.runtime_host_inits_total, 1);
    assert_eq!(m.runtime_threads, 5);
    assert!(m.player_clients_active <= 1, "{m:?}");
    assert_eq!(m.clients_evicted_total, 199);
    // A thread that is just exiting may still be listed for a moment; a leak stays.
    assert!(
        wait_for(Duration::from_secs(2), || os_threads() <= threads_before),
        "threads grew: {} > {threads_before}",
        os_threads()
    );
    host.shutdown().unwrap();
}

#[test]
fn hot_restart_evicts_old_clients_stops_playback_and_clears_the_route() {
    let f = fixture();
    let host = RuntimeHost::new("rollover");
    host.init(config(f.dir.path())).unwrap();
    let old = host.attach_client().unwrap();
    host.apply_route(old.id, null()).unwrap();
    host.play(old.id, &f.tone).unwrap();
    host.prepare_hot_restart().unwrap();
    let new = host.attach_client().unwrap();
    let status = host.status(new.id).unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert_eq!(status.route, None);
    // The old isolate's commands fail with a typed error and change nothing.
    assert!(matches!(
        host.play(old.id, &f.tone),
        Err(HostError::ClientEvicted { id, .. }) if id == old.id
    ));
    assert!(matches!(
        host.apply_route(old.id, null()),
        Err(HostError::ClientEvicted { .. })
    ));
    assert!(matches!(
        host.poll_event(old.id, Duration::ZERO),
        Err(HostError::ClientEvicted { .. })
    ));
    let status = host.status(new.id).unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert_eq!(status.route, None);
    host.shutdown().unwrap();
}

#[test]
fn evicted_client_cannot_disturb_the_new_one() {
    let f = fixture();
    let host = RuntimeHost::new("disturb");
    host.init(config(f.dir.path())).unwrap();
    let old = host.attach_client().unwrap();
    host.prepare_hot_restart().unwrap();
    let new = host.attach_client().unwrap();
    host.apply_route(new.id, null()).unwrap();
    let track = host.play(new.id, &f.tone).unwrap();
    assert!(wait_event(&host, new.id, Duration::from_secs(5), is_track_started).is_some());
    assert!(matches!(
        host.seek_ms(old.id, 1500),
        Err(HostError::ClientEvicted { .. })
    ));
    assert!(matches!(
        host.pause(old.id),
        Err(HostError::ClientEvicted { .. })
    ));
    assert!(matches!(
        host.stop(old.id),
        Err(HostError::ClientEvicted { .. })
    ));
    assert!(matches!(
        host.clear_route(old.id),
        Err(HostError::ClientEvicted { .. })
    ));
    let status = host.status(new.id).unwrap();
    assert_eq!(status.state, PlaybackState::Playing);
    assert_eq!(status.track_id, Some(track));
    assert!(
        status.position_ms < 1500,
        "the evicted seek must not have happened"
    );
    assert_eq!(status.route.as_deref(), Some("null"));
    host.shutdown().unwrap();
}

#[test]
fn lease_expiry_evicts_an_abandoned_client_and_frees_its_queue() {
    let f = fixture();
    let host = RuntimeHost::new("lease");
    let mut cfg = config(f.dir.path());
    cfg.client_lease_ms = Some(200);
    host.init(cfg).unwrap();
    let abandoned = host.attach_client().unwrap();
    host.apply_route(abandoned.id, null()).unwrap();
    host.play(abandoned.id, &f.tone).unwrap();
    // Events pile up in the abandoned client's queue until the lease runs out.
    assert!(wait_for(Duration::from_secs(2), || host
        .metrics()
        .client_events_queued
        > 0));
    assert!(
        wait_for(Duration::from_secs(5), || host
            .metrics()
            .player_clients_active
            == 0),
        "the supervisor must evict without any call from the client"
    );
    let m = host.metrics();
    assert_eq!(m.client_events_queued, 0, "the evicted queue is freed");
    assert_eq!(m.clients_evicted_total, 1);
    match host.pause(abandoned.id) {
        Err(HostError::ClientEvicted { reason, .. }) => {
            assert!(reason.contains("lease"), "{reason}")
        }
        other => panic!("expected eviction, got {other:?}"),
    }
    // With nobody left, playback stopped.
    let probe = host.attach_client().unwrap();
    assert_eq!(host.status(probe.id).unwrap().state, PlaybackState::Stopped);
    host.shutdown().unwrap();
}

#[test]
fn a_polling_client_keeps_its_lease() {
    let f = fixture();
    let host = RuntimeHost::new("renew");
    let mut cfg = config(f.dir.path());
    cfg.client_lease_ms = Some(150);
    host.init(cfg).unwrap();
    let c = host.attach_client().unwrap();
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        host.poll_event(c.id, Duration::from_millis(40)).unwrap();
    }
    assert_eq!(host.metrics().player_clients_active, 1);
    host.detach_client(c.id).unwrap();
    host.shutdown().unwrap();
}

#[test]
fn disposed_unknown_and_stale_ids_get_distinct_errors() {
    let f = fixture();
    let host = RuntimeHost::new("ids");
    host.init(config(f.dir.path())).unwrap();
    let c = host.attach_client().unwrap();
    host.detach_client(c.id).unwrap();
    assert!(matches!(host.detach_client(c.id), Err(HostError::ClientDisposed(id)) if id == c.id));
    assert!(matches!(
        host.pause(c.id),
        Err(HostError::ClientDisposed(_))
    ));
    assert!(matches!(
        host.pause(u64::MAX),
        Err(HostError::UnknownClient(_))
    ));
    assert!(matches!(host.pause(0), Err(HostError::UnknownClient(0))));
    // Ids are never reused, and ids from before a shutdown stay dead after re-init.
    let before = host.attach_client().unwrap();
    host.shutdown().unwrap();
    host.init(config(f.dir.path())).unwrap();
    let after = host.attach_client().unwrap();
    assert!(after.id > before.id);
    assert!(matches!(
        host.pause(before.id),
        Err(HostError::ClientEvicted { .. })
    ));
    host.shutdown().unwrap();
}

#[test]
fn bad_files_are_refused_and_the_engine_keeps_working() {
    let f = fixture();
    let host = RuntimeHost::new("bad");
    host.init(config(f.dir.path())).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, null()).unwrap();
    let corrupt = f.dir.path().join("corrupt.flac");
    std::fs::write(
        &corrupt,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    let text = f.dir.path().join("notes.txt");
    std::fs::write(&text, "not audio at all").unwrap();
    let cases: [(&Path, &str); 4] = [
        (&f.dir.path().join("missing.wav"), "not found"),
        (f.dir.path(), "not a regular file"),
        (&corrupt, "corrupt.flac"),
        (&text, "notes.txt"),
    ];
    for (path, expect) in cases {
        let err = host.play(c.id, path).unwrap_err();
        assert!(matches!(err, HostError::Audio(_)), "{err:?}");
        assert!(err.to_string().contains(expect), "{path:?}: {err}");
        assert_eq!(host.status(c.id).unwrap().state, PlaybackState::Stopped);
    }
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(5), is_track_started).is_some());
    host.shutdown().unwrap();
}

#[test]
fn every_live_client_sees_global_events_and_a_new_client_sees_no_old_ones() {
    let f = fixture();
    let host = RuntimeHost::new("fanout");
    host.init(config(f.dir.path())).unwrap();
    let a = host.attach_client().unwrap();
    let b = host.attach_client().unwrap();
    host.apply_route(a.id, null()).unwrap();
    host.play(a.id, &f.tone).unwrap();
    assert!(wait_event(&host, a.id, Duration::from_secs(5), is_track_started).is_some());
    assert!(wait_event(&host, b.id, Duration::from_secs(5), is_track_started).is_some());
    host.prepare_hot_restart().unwrap();
    let fresh = host.attach_client().unwrap();
    // Nothing from before the attach, and nothing twice.
    let mut seen = Vec::new();
    while let Some(e) = host
        .poll_event(fresh.id, Duration::from_millis(100))
        .unwrap()
    {
        seen.push(e);
    }
    assert!(seen.is_empty(), "new client saw old events: {seen:?}");
    host.shutdown().unwrap();
}

#[test]
fn a_full_queue_drops_oldest_and_reports_lag() {
    let f = fixture();
    let host = RuntimeHost::new("lag");
    let mut cfg = config(f.dir.path());
    cfg.event_queue_capacity = Some(4);
    host.init(cfg).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, null()).unwrap();
    for _ in 0..4 {
        host.play(c.id, &f.tone).unwrap();
        host.stop(c.id).unwrap();
    }
    assert!(wait_for(Duration::from_secs(2), || host
        .metrics()
        .client_events_queued
        == 4));
    let first = host.poll_event(c.id, Duration::ZERO).unwrap().unwrap();
    assert!(
        matches!(first, HostEvent::Host(HostNotice::Lagged { dropped }) if dropped > 0),
        "{first:?}"
    );
    host.shutdown().unwrap();
}

#[test]
fn concurrent_clients_do_not_deadlock_and_counts_stay_consistent() {
    let f = fixture();
    let host = Arc::new(RuntimeHost::new("hammer"));
    host.init(config(f.dir.path())).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ops = Arc::new(AtomicU64::new(0));
    let tone = Arc::new(f.tone.clone());
    let workers: Vec<_> = (0..8)
        .map(|t| {
            let (host, stop, ops, tone) = (host.clone(), stop.clone(), ops.clone(), tone.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let Ok(c) = host.attach_client() else {
                        continue;
                    };
                    let _ = host.apply_route(c.id, BuiltinRoute::Null.into());
                    if (i + t) % 5 == 0 {
                        let _ = host.play(c.id, &tone);
                    }
                    let _ = host.pause(c.id);
                    let _ = host.resume(c.id);
                    let _ = host.seek_ms(c.id, 100);
                    let _ = host.set_volume(c.id, 0.5);
                    let _ = host.poll_event(c.id, Duration::ZERO);
                    if t == 0 && i % 50 == 0 {
                        let _ = host.prepare_hot_restart();
                    }
                    // A client evicted by another thread's rollover may already be gone.
                    match host.detach_client(c.id) {
                        Ok(()) | Err(HostError::ClientEvicted { .. }) => {}
                        Err(e) => panic!("unexpected detach error: {e}"),
                    }
                    ops.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let watchdog = Instant::now();
    for w in workers {
        w.join().expect("worker panicked");
    }
    assert!(
        watchdog.elapsed() < Duration::from_secs(30),
        "workers did not finish: deadlock?"
    );
    assert!(ops.load(Ordering::SeqCst) > 8, "no progress");
    let m = host.metrics();
    assert_eq!(m.player_clients_active, 0, "{m:?}");
    assert_eq!(m.runtime_host_inits_total, 1);
    assert_eq!(m.runtime_threads, 5);
    host.shutdown().unwrap();
    assert_eq!(host.metrics().runtime_threads, 0);
}

#[test]
fn bad_config_is_refused_before_anything_starts() {
    let host = RuntimeHost::new("badcfg");
    let err = host
        .init(HostConfig {
            client_lease_ms: Some(0),
            ..HostConfig::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("client_lease_ms"), "{err}");
    let err = host
        .init(HostConfig {
            log_filter: Some("[[[".into()),
            ..HostConfig::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("log_filter"), "{err}");
    assert_eq!(host.state(), LifecycleState::Uninit);
    assert_eq!(host.metrics().runtime_host_inits_total, 0);
}
