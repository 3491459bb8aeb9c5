//! Fault matrix rows for the runtime host (docs/reliability.md): a concurrent lifecycle soak
//! with a deadlock watchdog, a file deleted while playing, corrupt plugin artifacts, an
//! unusable data directory, and a WAV sink whose writes fail (disk full).

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{
    AudioError, BuiltinRoute, EngineEvent, HostConfig, HostError, HostEvent, LifecycleState,
    PlaybackState, PluginError, RuntimeHost,
};
use support::*;

/// A small xorshift generator: the soak needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn soak_duration() -> Duration {
    let secs = std::env::var("STELLATUNE_FAULT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(10);
    Duration::from_secs(secs)
}

/// Errors a call may legitimately get while other threads shut down, restart and evict.
fn expected_in_soak(e: &HostError) -> bool {
    !matches!(
        e,
        HostError::Internal(_)
            | HostError::ShutdownTimeout { .. }
            | HostError::UnknownClient(_)
            | HostError::Plugin(_)
            | HostError::PluginsUnavailable
    )
}

#[test]
fn eight_threads_hammering_the_lifecycle_neither_deadlock_nor_panic_nor_leak() {
    const THREADS: usize = 8;
    const STALL: Duration = Duration::from_secs(20);
    let f = Fixture::new();
    let config = HostConfig {
        client_lease_ms: Some(60_000),
        // Every rollover logs a warning per evicted client: too many to read.
        log_filter: Some("error".into()),
        ..f.config()
    };
    let host = Arc::new(RuntimeHost::new("soak"));
    host.init(config.clone()).unwrap();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    // Per thread: milliseconds since `started` at its last finished call.
    let beats: Arc<Vec<AtomicU64>> = Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
    let ops = Arc::new(AtomicU64::new(0));
    let tone = Arc::new(f.tone.clone());

    let watchdog = {
        let (done, beats) = (done.clone(), beats.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let now = started.elapsed().as_millis() as u64;
                for (t, beat) in beats.iter().enumerate() {
                    let idle = now.saturating_sub(beat.load(Ordering::SeqCst));
                    if idle > STALL.as_millis() as u64 && !done.load(Ordering::SeqCst) {
                        // The workers are stuck inside the host, so unwinding cannot end the
                        // test: end the process, which fails it.
                        eprintln!(
                            "DEADLOCK: soak thread {t} made no progress for {idle} ms; aborting"
                        );
                        std::process::abort();
                    }
                }
            }
        })
    };

    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (host, stop, beats, ops, tone, config) = (
                host.clone(),
                stop.clone(),
                beats.clone(),
                ops.clone(),
                tone.clone(),
                config.clone(),
            );
            std::thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1000_0001));
                let mut mine: Vec<u64> = Vec::new();
                let mut all: Vec<u64> = Vec::new();
                let check = |what: &str, r: Result<(), HostError>| {
                    if let Err(e) = r {
                        assert!(expected_in_soak(&e), "thread {t}: {what}: {e:?}");
                    }
                };
                while !stop.load(Ordering::SeqCst) {
                    let roll = rng.below(1000);
                    match roll {
                        0..150 => match host.attach_client() {
                            Ok(c) => {
                                mine.push(c.id);
                                all.push(c.id);
                            }
                            Err(e) => check("attach", Err(e)),
                        },
                        150..650 => {
                            if let Some(&id) =
                                mine.get(rng.below(mine.len().max(1) as u64) as usize)
                            {
                                let r = match rng.below(8) {
                                    0 => host.apply_route(id, BuiltinRoute::Null.into()),
                                    1 => host.play(id, &tone).map(drop),
                                    2 => host.pause(id),
                                    3 => host.resume(id),
                                    4 => host.set_volume(id, 0.5),
                                    5 => host.seek_ms(id, 100),
                                    6 => host.status(id).map(drop),
                                    _ => host.poll_event(id, Duration::ZERO).map(drop),
                                };
                                // Playback errors (no route, nothing playing) are answers.
                                if !matches!(r, Err(HostError::Audio(_))) {
                                    check("command", r);
                                }
                            }
                        }
                        650..850 => {
                            if !mine.is_empty() {
                                let id = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                                check("dispose", host.detach_client(id));
                            }
                        }
                        850..900 => {
                            check("prepare_hot_restart", host.prepare_hot_restart().map(drop))
                        }
                        900..930 => check("shutdown", host.shutdown()),
                        _ => check("init", host.init(config.clone()).map(drop)),
                    }
                    ops.fetch_add(1, Ordering::SeqCst);
                    beats[t].store(started.elapsed().as_millis() as u64, Ordering::SeqCst);
                }
                all
            })
        })
        .collect();

    std::thread::sleep(soak_duration());
    stop.store(true, Ordering::SeqCst);
    let mut ids = Vec::new();
    for (t, w) in workers.into_iter().enumerate() {
        // A worker that is stuck never joins; the watchdog aborts the process then.
        ids.extend(
            w.join()
                .unwrap_or_else(|_| panic!("soak thread {t} panicked")),
        );
        beats[t].store(u64::MAX / 2, Ordering::SeqCst);
    }
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    let ops = ops.load(Ordering::SeqCst);
    assert!(ops > 100, "only {ops} operations in {:?}", soak_duration());

    // Counters after a final init and disposing of everything.
    host.init(config).unwrap();
    for id in ids {
        match host.detach_client(id) {
            Ok(()) | Err(HostError::ClientDisposed(_)) | Err(HostError::ClientEvicted { .. }) => {}
            Err(e) => panic!("disposing {id}: {e:?}"),
        }
    }
    let m = host.metrics();
    assert_eq!(m.state, LifecycleState::Running, "{m:?}");
    assert_eq!(m.player_clients_active, 0, "{m:?}");
    assert_eq!(m.runtime_threads, 5, "{m:?}");
    assert_eq!(m.client_events_queued, 0, "{m:?}");
    // The engine still plays.
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, BuiltinRoute::Null.into()).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());
    host.shutdown().unwrap();
    let m = host.metrics();
    assert_eq!(m.state, LifecycleState::Stopped, "{m:?}");
    assert_eq!(m.runtime_threads, 0, "{m:?}");
    assert_eq!(m.player_clients_active, 0, "{m:?}");
    eprintln!(
        "soak: {ops} operations in {:?}, {} engine starts",
        soak_duration(),
        m.runtime_host_inits_total
    );
}

fn engine_error(e: &HostEvent) -> Option<String> {
    match e {
        HostEvent::Engine(EngineEvent::Error { message, .. }) => Some(message.clone()),
        _ => None,
    }
}

fn is_stopped(e: &HostEvent) -> bool {
    matches!(
        e,
        HostEvent::Engine(EngineEvent::StateChanged {
            state: PlaybackState::Stopped
        })
    )
}

/// The engine plays `tone` through the null route: the track starts.
fn assert_engine_plays(host: &RuntimeHost, id: u64, tone: &Path) {
    host.apply_route(id, BuiltinRoute::Null.into()).unwrap();
    host.play(id, tone).unwrap();
    assert!(
        wait_event(host, id, Duration::from_secs(10), is_track_started).is_some(),
        "the engine plays on"
    );
    host.stop(id).unwrap();
}

#[test]
fn a_file_deleted_while_playing_plays_on_or_ends_and_the_engine_keeps_working() {
    let f = Fixture::new();
    let host = RuntimeHost::new("deleted-file");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    let doomed = f.path().join("doomed.wav");
    write_tone(&doomed, 1.5);
    host.apply_route(c.id, BuiltinRoute::Null.into()).unwrap();
    host.play(c.id, &doomed).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());
    std::fs::remove_file(&doomed).unwrap();
    // The open handle keeps the inode: the track plays to its end (or, on a platform
    // where it cannot, ends with an error). Either way it stops, in time.
    let mut error = None;
    let ended = wait_event(&host, c.id, Duration::from_secs(10), |e| {
        if let Some(m) = engine_error(e) {
            error = Some(m);
        }
        is_stopped(e)
    });
    assert!(ended.is_some(), "the track never stopped");
    if let Some(message) = &error {
        assert!(!message.is_empty());
    }
    let status = host.status(c.id).unwrap();
    assert_eq!(status.state, PlaybackState::Stopped);
    assert!(
        error.is_some() || status.frames_written >= 44_100,
        "neither played through ({} frames) nor reported an error",
        status.frames_written
    );
    // Playing the deleted path again is refused by the call, and the engine plays on. (Where
    // a deleted file keeps its name while the engine's kept handle is open, as on Windows
    // before 10 1809, FAT and Wine, the name may still open, or fail as "delete pending".)
    let again = host.play(c.id, &doomed);
    assert!(
        matches!(again, Err(HostError::Audio(AudioError::NotFound(_))))
            || (cfg!(windows)
                && matches!(again, Ok(_) | Err(HostError::Audio(AudioError::Io { .. })))),
        "{again:?}"
    );
    if again.is_ok() {
        host.stop(c.id).unwrap();
    }
    assert_engine_plays(&host, c.id, &f.tone);
    host.shutdown().unwrap();
}

#[test]
fn corrupt_libraries_and_missing_or_malformed_manifests_are_clear_plugin_errors() {
    let f = Fixture::new();
    let host = RuntimeHost::new("corrupt-plugins");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    assert_eq!(
        host.plugins_install(&artifact(f.path())).unwrap(),
        PLUGIN_ID
    );
    let capture = f.path().join("captured.raw");

    // Random bytes as the shared library.
    let mut manifest = manifest_template();
    manifest["id"] = "corrupt-lib".into();
    let dir = artifact_with(f.path(), "corrupt-lib", &manifest);
    let library = dir.join(manifest["library"].as_str().unwrap());
    let mut rng = Rng(0xDEAD_BEEF);
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| rng.below(256) as u8).collect();
    std::fs::write(&library, garbage).unwrap();
    match host.plugins_install(&dir) {
        Err(HostError::Plugin(e @ PluginError::Load { .. })) => {
            assert!(e.to_string().contains("corrupt-lib"), "{e}")
        }
        other => panic!("random bytes as the library: {other:?}"),
    }

    // No plugin.json at all.
    let dir = artifact_with(f.path(), "no-manifest", &manifest_template());
    std::fs::remove_file(dir.join("plugin.json")).unwrap();
    match host.plugins_install(&dir) {
        Err(HostError::Plugin(
            e @ (PluginError::Manifest { .. } | PluginError::Install { .. }),
        )) => {
            assert!(e.to_string().contains("plugin.json"), "{e}")
        }
        other => panic!("missing plugin.json: {other:?}"),
    }

    // plugin.json that is not JSON, and JSON missing a field.
    for (name, text, needle) in [
        ("bad-json", "{\"id\": \"bad-json\", ", "EOF"),
        (
            "no-library",
            r#"{"id":"no-library","name":"x","version":"1","api_version":"1.0"}"#,
            "library",
        ),
    ] {
        let dir = artifact_with(f.path(), name, &manifest_template());
        std::fs::write(dir.join("plugin.json"), text).unwrap();
        match host.plugins_install(&dir) {
            Err(HostError::Plugin(e @ PluginError::Manifest { .. })) => {
                assert!(e.to_string().contains(needle), "{name}: {e}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    // Nothing else is affected: the good plugin is the only one and still plays.
    let list = host.plugins_list().unwrap();
    assert_eq!(
        list.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        [PLUGIN_ID]
    );
    let m = host.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (1, 0),
        "{m:?}"
    );
    host.apply_route(c.id, capture_route(&capture)).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());
    assert!(wait_for(Duration::from_secs(5), || file_len(&capture) > 0));
    assert_engine_plays(&host, c.id, &f.tone);
    host.shutdown().unwrap();
}

#[test]
fn an_unusable_data_dir_leaves_builtin_routes_working_and_plugins_unavailable() {
    let f = Fixture::new();
    // Tests run as root, which ignores a 0o500 directory; a path under a regular file
    // cannot be created by anyone.
    let blocker = f.path().join("not-a-dir");
    std::fs::write(&blocker, b"a file").unwrap();
    let data_dir: PathBuf = blocker.join("data");
    let host = RuntimeHost::new("unusable-data-dir");
    host.init(HostConfig {
        data_dir: Some(data_dir.clone()),
        ..f.config()
    })
    .expect("init works without a data directory");
    let c = host.attach_client().unwrap();
    assert_engine_plays(&host, c.id, &f.tone);
    let wav = f.path().join("out.wav");
    host.apply_route(
        c.id,
        BuiltinRoute::Wav {
            path: wav.clone(),
            paced: false,
            channels: None,
            sample_rate: None,
        }
        .into(),
    )
    .unwrap();
    drain_events(&host, c.id);
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_stopped).is_some());
    host.clear_route(c.id).unwrap();
    assert!(file_len(&wav) > 3 * 44_100 * 4, "{} bytes", file_len(&wav));

    assert_eq!(
        host.plugins_install(&artifact(f.path())),
        Err(HostError::PluginsUnavailable)
    );
    assert_eq!(
        host.plugins_list().err(),
        Some(HostError::PluginsUnavailable)
    );
    assert_eq!(
        host.apply_route(c.id, capture_route(&f.path().join("x.raw"))),
        Err(HostError::PluginsUnavailable)
    );
    assert_eq!(
        host.plugins_reload().err(),
        Some(HostError::PluginsUnavailable)
    );
    assert!(!data_dir.exists());
    assert_engine_plays(&host, c.id, &f.tone);
    host.shutdown().unwrap();
    assert_eq!(host.metrics().runtime_threads, 0);
}

// /dev/full (every write fails with ENOSPC) has no Windows counterpart short of a full disk.
#[cfg(target_os = "linux")]
#[test]
fn a_wav_sink_whose_writes_fail_reports_an_error_stops_and_the_next_route_plays() {
    let f = Fixture::new();
    let host = RuntimeHost::new("disk-full");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    // Every write to /dev/full fails with ENOSPC, like a full disk.
    host.apply_route(
        c.id,
        BuiltinRoute::Wav {
            path: "/dev/full".into(),
            paced: false,
            channels: None,
            sample_rate: None,
        }
        .into(),
    )
    .unwrap();
    let started = Instant::now();
    let message = match host.play(c.id, &f.tone) {
        // Refused by the call (the header could not be written) ...
        Err(HostError::Audio(e @ AudioError::Sink(_))) => e.to_string(),
        Err(e) => panic!("play into /dev/full: {e:?}"),
        // ... or an `error` event once buffered writes reach the file.
        Ok(_) => {
            let mut message = None;
            let stopped = wait_event(&host, c.id, Duration::from_secs(10), |e| {
                if let Some(m) = engine_error(e) {
                    message = Some(m);
                }
                message.is_some() && is_stopped(e)
            });
            assert!(stopped.is_some(), "no error and stop within 10 s");
            message.unwrap()
        }
    };
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        message.contains("space") || message.contains("/dev/full"),
        "the error says what failed: {message}"
    );
    assert_eq!(host.status(c.id).unwrap().state, PlaybackState::Stopped);
    // Nothing else is broken: the next route plays, and so does a real wav file.
    assert_engine_plays(&host, c.id, &f.tone);
    let wav = f.path().join("after.wav");
    host.apply_route(
        c.id,
        BuiltinRoute::Wav {
            path: wav.clone(),
            paced: false,
            channels: None,
            sample_rate: None,
        }
        .into(),
    )
    .unwrap();
    drain_events(&host, c.id);
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_stopped).is_some());
    host.clear_route(c.id).unwrap();
    assert!(file_len(&wav) > 3 * 44_100 * 4, "{} bytes", file_len(&wav));
    host.shutdown().unwrap();
    assert_eq!(host.metrics().runtime_threads, 0);
}

/// Headers that claim absurd sizes: a RIFF/WAVE whose `fmt ` chunk says it is nearly 4 GiB,
/// a FLAC whose metadata block says 16 MiB, an MP3 whose ID3v2 tag says 256 MiB, each in a
/// file of a few dozen bytes. Each is refused (or read as empty) quickly, without
/// allocating what it claims, and the engine plays on.
#[test]
fn media_with_huge_headers_are_refused_quickly() {
    let f = Fixture::new();
    let host = RuntimeHost::new("huge-headers");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.apply_route(c.id, BuiltinRoute::Null.into()).unwrap();
    let mut wav = b"RIFF\xff\xff\xff\x7fWAVEfmt \xf0\xff\xff\xff".to_vec();
    wav.extend_from_slice(&[1, 0, 2, 0, 0x44, 0xac, 0, 0, 0x10, 0xb1, 2, 0, 4, 0, 16, 0]);
    let mut flac = b"fLaC\x00\xff\xff\xff".to_vec();
    flac.extend_from_slice(&[0u8; 34]);
    let mut mp3 = b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f".to_vec();
    mp3.extend_from_slice(&[0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]);
    for (name, bytes) in [("huge.wav", wav), ("huge.flac", flac), ("huge.mp3", mp3)] {
        let path = f.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let started = Instant::now();
        let result = host.play(c.id, &path);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: took {:?}",
            started.elapsed()
        );
        assert!(
            result.is_err(),
            "{name}: a header-only file cannot play: {result:?}"
        );
        assert_engine_plays(&host, c.id, &f.tone);
    }
    host.shutdown().unwrap();
}
