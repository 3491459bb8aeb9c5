//! The plugin system end to end on isolated hosts, with the real test plugins
//! (`crates/stellatune-test-plugins`): reload under playback, uninstall while playing,
//! panics, refusals, close-before-destroy in every path, and a hung close.

mod support;

use std::time::{Duration, Instant};

use stellatune_runtime_host::{PlaybackState, RuntimeHost};
use support::*;

#[test]
fn twenty_reloads_during_playback_leave_one_generation_and_no_leaks() {
    let f = Fixture::new();
    let host = RuntimeHost::new("reloads");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    assert_eq!(
        host.plugins_install(&artifact(f.path())).unwrap(),
        PLUGIN_ID
    );
    let capture = f.path().join("capture.raw");
    host.apply_route(c.id, capture_route(&capture)).unwrap();
    let started = Instant::now();
    host.play(c.id, &f.tone).unwrap();
    let (_, maps_before) = f.mapped_shadow_copies();
    let mut replays = 0;
    for i in 0..20 {
        let generation = host.plugins_force_reload(PLUGIN_ID).unwrap();
        // The old instance was closed (flushing its buffer) before the reload returned.
        let before = file_len(&capture);
        let route = host.status(c.id).unwrap().route.unwrap_or_default();
        assert!(
            route.contains(&format!("(generation {generation})")),
            "reload {i}: the route did not move: {route}"
        );
        // Audio keeps flowing through the new generation: the capture file grows. The
        // capture sink is unpaced, so a track may end between reloads; it is played again.
        let grew = wait_for(Duration::from_secs(20), || {
            if file_len(&capture) > before {
                return true;
            }
            if host.status(c.id).unwrap().state == PlaybackState::Stopped {
                host.play(c.id, &f.tone).unwrap();
                replays += 1;
            }
            false
        });
        assert!(grew, "reload {i}: no audio reached the capture file");
        drain_events(&host, c.id);
    }
    eprintln!(
        "20 reloads in {:?}, {replays} replays, capture {} bytes",
        started.elapsed(),
        file_len(&capture)
    );
    let m = host.metrics();
    assert_eq!(m.plugin_generations_active, 1, "{m:?}");
    assert!(
        wait_for(Duration::from_secs(10), || host
            .metrics()
            .plugin_generations_draining
            == 0),
        "old generations did not unload: {:?}",
        host.metrics()
    );
    let m = host.metrics();
    let live = (m.plugin_generations_active + m.plugin_generations_draining) as usize;
    assert_eq!(
        f.shadow_files(),
        live,
        "one shadow copy per live generation"
    );
    assert_eq!(m.plugin_shadow_copies as usize, live);
    let (mapped_files, map_lines) = f.mapped_shadow_copies();
    let mapped_code = f.mapped_shadow_code();
    eprintln!(
        "after 20 reloads: active {}, draining {}, shadow files {}, mapped shadow files {mapped_files} \
         ({map_lines} map lines, {maps_before} before the reloads), with code mapped {mapped_code}",
        m.plugin_generations_active,
        m.plugin_generations_draining,
        f.shadow_files()
    );
    // The SDK registers no thread-local destructors, so dlclose really unmaps an old
    // generation: exactly the live one is mapped, with as many mapping lines as before.
    assert_eq!(mapped_files, live, "unloaded generations are still mapped");
    assert_eq!(mapped_code, live);
    assert_eq!(map_lines, maps_before, "mappings grew across reloads");

    host.clear_route(c.id).unwrap();
    // One instance per generation that held the route: the first and one per reload.
    assert_closed_before_destroyed(&capture, 21);
    host.shutdown().unwrap();
}

/// A 10 s tone, so that a chain of them keeps the engine playing for a while even through
/// the unpaced capture sink.
fn long_tone(f: &Fixture) -> std::path::PathBuf {
    let path = f.path().join("long.wav");
    write_tone(&path, 10.0);
    path
}

/// Keeps one track queued behind the current one, so playback never stops by itself:
/// each time a track starts, the next is queued. Returns the engine's state.
fn keep_playing(host: &RuntimeHost, id: u64, track: &std::path::Path) -> PlaybackState {
    while let Some(e) = host.poll_event(id, Duration::ZERO).unwrap() {
        if is_track_started(&e) {
            host.queue_next(id, track).unwrap();
        }
    }
    host.status(id).unwrap().state
}

#[test]
fn uninstall_while_playing_keeps_playing_until_the_route_is_cleared() {
    let f = Fixture::new();
    let track = long_tone(&f);
    let host = RuntimeHost::new("uninstall");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let capture = f.path().join("capture.raw");
    // Paced: with the unpaced capture a 10 s track ends within milliseconds, and playback
    // could stop between a track's start and the test queueing the next one.
    host.apply_route(c.id, paced_capture_route(&capture))
        .unwrap();
    host.play(c.id, &track).unwrap();
    host.queue_next(c.id, &track).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file_len(&capture) > 0));

    host.plugins_uninstall(PLUGIN_ID).unwrap();
    let m = host.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (0, 1),
        "the playing generation drains: {m:?}"
    );
    assert!(host.plugins_list().unwrap().is_empty());
    // The route plays on from the shadow copy: the file keeps growing, the state stays
    // Playing, tracks keep starting.
    for round in 0..3 {
        let before = file_len(&capture);
        let grew = wait_for(Duration::from_secs(20), || {
            assert_eq!(
                keep_playing(&host, c.id, &track),
                PlaybackState::Playing,
                "round {round}"
            );
            file_len(&capture) > before
        });
        assert!(grew, "round {round}: the capture file stopped growing");
    }
    assert_eq!(host.metrics().plugin_generations_draining, 1);
    assert_eq!(f.shadow_files(), 1);

    host.clear_route(c.id).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || host
            .metrics()
            .plugin_generations_draining
            == 0),
        "{:?}",
        host.metrics()
    );
    assert_eq!(f.shadow_files(), 0, "the shadow copy is deleted");
    assert_eq!(f.mapped_shadow_copies().0, 0, "the library is unmapped");
    assert!(!f.installed_dir().exists(), "the installed files are gone");
    assert_eq!(host.metrics().plugin_generations_active, 0);
    assert!(matches!(
        host.plugins_force_reload(PLUGIN_ID),
        Err(stellatune_runtime_host::HostError::Plugin(
            stellatune_runtime_host::PluginError::UnknownPlugin(_)
        ))
    ));
    host.shutdown().unwrap();
}

fn is_error_event(e: &stellatune_runtime_host::HostEvent) -> Option<String> {
    match e {
        stellatune_runtime_host::HostEvent::Engine(
            stellatune_runtime_host::EngineEvent::Error { message, .. },
        ) => Some(message.clone()),
        _ => None,
    }
}

#[test]
fn a_panicking_plugin_becomes_an_error_and_the_engine_plays_on() {
    let f = Fixture::new();
    let host = RuntimeHost::new("panics");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let null =
        || stellatune_runtime_host::OutputRoute::from(stellatune_runtime_host::BuiltinRoute::Null);
    for call in [
        "create",
        "negotiate",
        "open",
        "write",
        "reset",
        "flush",
        "close",
        "status",
        "destroy",
    ] {
        // Something plays (in real time, through the null route) when the plugin route is
        // applied, so the new sink is negotiated and opened at once.
        host.apply_route(c.id, null()).unwrap();
        host.play(c.id, &f.tone).unwrap();
        drain_events(&host, c.id);
        let applied = host.apply_route(
            c.id,
            misbehave_route(serde_json::json!({ "panic_in": [call] })),
        );
        match call {
            "create" | "negotiate" | "open" => {
                // Either the route is refused on the calling thread, or the engine's output
                // thread meets the panic (at once if something plays, else at the next
                // play) and reports it as an `error` event.
                let message = match applied {
                    Err(e) => e.to_string(),
                    Ok(()) => {
                        if host.status(c.id).unwrap().route.is_some() {
                            let _ = host.play(c.id, &f.tone);
                        }
                        let event = wait_event(&host, c.id, Duration::from_secs(20), |e| {
                            is_error_event(e).is_some()
                        })
                        .unwrap_or_else(|| panic!("{call}: no error event"));
                        is_error_event(&event).unwrap()
                    }
                };
                assert!(
                    message.contains("panicked") && message.contains(call),
                    "{call}: {message}"
                );
            }
            "write" | "flush" => {
                applied.unwrap_or_else(|e| panic!("{call}: {e}"));
                if host.status(c.id).unwrap().state == PlaybackState::Stopped {
                    host.play(c.id, &f.tone).unwrap();
                }
                // A write error stops playback; a flush error comes at the end of the track.
                let event = wait_event(&host, c.id, Duration::from_secs(20), |e| {
                    is_error_event(e).is_some()
                })
                .unwrap_or_else(|| panic!("{call}: no error event"));
                let message = is_error_event(&event).unwrap();
                assert!(message.contains("panicked"), "{call}: {message}");
                let wanted = format!("panic in {}{}", call[..1].to_uppercase(), &call[1..]);
                assert!(message.contains(&wanted), "{call}: {message}");
            }
            _ => {
                // reset (stop), close (route change), status (the engine never asks a sink
                // for its status) and destroy (route change): the host has nobody to report
                // to but its log, and carries on.
                applied.unwrap_or_else(|e| panic!("{call}: {e}"));
                if host.status(c.id).unwrap().state == PlaybackState::Stopped {
                    host.play(c.id, &f.tone).unwrap();
                }
                host.stop(c.id).unwrap();
            }
        }
        // The builtin route takes over (closing and destroying the misbehaving sink) and
        // the next track plays.
        host.apply_route(c.id, null()).unwrap();
        drain_events(&host, c.id);
        host.play(c.id, &f.tone).unwrap();
        assert!(
            wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some(),
            "{call}: the next track did not start"
        );
        assert_eq!(
            host.status(c.id).unwrap().state,
            PlaybackState::Playing,
            "{call}"
        );
    }
    // The plugin itself is still usable.
    let capture = f.path().join("after-panics.raw");
    host.apply_route(c.id, capture_route(&capture)).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file_len(&capture) > 0));
    // The generation that panicked unloads on reload: its code is unmapped. (With
    // RUST_BACKTRACE set, the plugin's own std may have mapped the file read-only to
    // symbolize a backtrace; that mapping is data, not the loaded library, and is printed.)
    host.plugins_force_reload(PLUGIN_ID).unwrap();
    assert!(wait_for(Duration::from_secs(10), || host
        .metrics()
        .plugin_generations_draining
        == 0));
    let (files, lines) = f.mapped_shadow_copies();
    eprintln!(
        "after the panics and a reload: shadow files mapped {files} ({lines} lines), with code {}",
        f.mapped_shadow_code()
    );
    assert_eq!(
        f.mapped_shadow_code(),
        1,
        "only the new generation's code is mapped"
    );
    assert_eq!(f.shadow_files(), 1);
    host.shutdown().unwrap();
}

#[test]
fn bad_artifacts_are_refused_and_leave_nothing_broken() {
    use stellatune_runtime_host::{HostError, PluginError};
    let f = Fixture::new();
    let host = RuntimeHost::new("refusals");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();

    // api_version 2.0 is refused from plugin.json alone: the library is not even an ELF
    // file, so a dlopen would have failed differently.
    let mut manifest = manifest_template();
    manifest["api_version"] = "2.0".into();
    let dir = artifact_with(f.path(), "abi-2", &manifest);
    std::fs::write(dir.join(library_name()), b"not a shared library").unwrap();
    match host.plugins_install(&dir) {
        Err(HostError::Plugin(PluginError::AbiMismatch {
            plugin_major: 2,
            host_major: 1,
            ..
        })) => {}
        other => panic!("api_version 2.0: {other:?}"),
    }

    let mut manifest = manifest_template();
    manifest["library"] = "../x.so".into();
    let dir = artifact_with(f.path(), "traversal", &manifest);
    std::fs::copy(plugin_library(), f.path().join("x.so")).unwrap();
    match host.plugins_install(&dir) {
        Err(HostError::Plugin(e @ PluginError::Manifest { .. })) => {
            assert!(e.to_string().contains("library"), "{e}")
        }
        other => panic!("library ../x.so: {other:?}"),
    }

    let zip_path = f.path().join("evil.zip");
    {
        use std::io::Write;
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("plugin.json", options).unwrap();
        zip.write_all(manifest_template().to_string().as_bytes())
            .unwrap();
        zip.start_file(library_name(), options).unwrap();
        zip.write_all(&std::fs::read(plugin_library()).unwrap())
            .unwrap();
        zip.start_file("../evil", options).unwrap();
        zip.write_all(b"outside").unwrap();
        zip.finish().unwrap();
    }
    match host.plugins_install(&zip_path) {
        Err(HostError::Plugin(e @ PluginError::Install { .. })) => {
            assert!(e.to_string().contains("../evil"), "{e}")
        }
        other => panic!("zip with ../evil: {other:?}"),
    }
    assert!(!f.plugin_dir().join("evil").exists());
    assert!(!f.data_dir().join("evil").exists());

    // A real shared library without the entry symbol.
    let (system_library, file_name) = system_library();
    let manifest = serde_json::json!({
        "id": "not-a-plugin",
        "name": "a system library",
        "version": "1.0.0",
        "api_version": "1.0",
        "library": file_name,
    });
    let dir = artifact_with(f.path(), "system-library", &manifest);
    std::fs::copy(&system_library, dir.join(file_name)).unwrap();
    match host.plugins_install(&dir) {
        Err(HostError::Plugin(e @ PluginError::Load { .. })) => {
            assert!(e.to_string().contains("stellatune_plugin_entry"), "{e}")
        }
        other => panic!("{}: {other:?}", system_library.display()),
    }

    // Nothing broken is left behind, nothing is loaded, and the engine plays.
    let list = host.plugins_list().unwrap();
    assert!(list.is_empty(), "{list:?}");
    let m = host.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (0, 0)
    );
    assert_eq!(f.shadow_files(), 0);
    assert_eq!(f.mapped_shadow_copies().0, 0);
    let leftovers: Vec<_> = std::fs::read_dir(f.plugin_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    host.apply_route(c.id, stellatune_runtime_host::BuiltinRoute::Null.into())
        .unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());
    host.shutdown().unwrap();
}

/// Plays `track` through a capture route to `target` until the sink has written something,
/// so the instance is open (the SDK forwards `close` to a sink only once it was opened).
fn play_into(host: &RuntimeHost, id: u64, target: &std::path::Path, track: &std::path::Path) {
    host.apply_route(id, capture_route(target)).unwrap();
    let before = file_len(target);
    host.play(id, track).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || file_len(target) > before),
        "{}: no audio",
        target.display()
    );
}

#[test]
fn every_path_closes_a_sink_before_destroying_it() {
    let f = Fixture::new();
    let host = RuntimeHost::new("close-order");
    host.init(f.config()).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let target = |name: &str| f.path().join(format!("{name}.raw"));

    // Route cleared.
    let c = host.attach_client().unwrap();
    play_into(&host, c.id, &target("clear"), &f.tone);
    host.clear_route(c.id).unwrap();
    assert_closed_before_destroyed(&target("clear"), 1);

    // Route replaced by another route.
    play_into(&host, c.id, &target("replaced"), &f.tone);
    host.apply_route(c.id, stellatune_runtime_host::BuiltinRoute::Null.into())
        .unwrap();
    assert_closed_before_destroyed(&target("replaced"), 1);

    // Reload: the route moves to the new generation, the old instance goes. (The new
    // instance is opened by the next play: the track may have ended before the reload.)
    play_into(&host, c.id, &target("reload"), &f.tone);
    host.plugins_force_reload(PLUGIN_ID).unwrap();
    let before = file_len(&target("reload"));
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file_len(&target(
        "reload"
    )) > before));
    host.clear_route(c.id).unwrap();
    assert_closed_before_destroyed(&target("reload"), 2);

    // Hot restart evicts the client and clears its route.
    play_into(&host, c.id, &target("hot-restart"), &f.tone);
    host.prepare_hot_restart().unwrap();
    assert_closed_before_destroyed(&target("hot-restart"), 1);

    // The last client detaching stops playback and clears the route.
    let c = host.attach_client().unwrap();
    play_into(&host, c.id, &target("detach"), &f.tone);
    host.detach_client(c.id).unwrap();
    assert_closed_before_destroyed(&target("detach"), 1);

    // Host shutdown.
    let c = host.attach_client().unwrap();
    play_into(&host, c.id, &target("shutdown"), &f.tone);
    host.shutdown().unwrap();
    assert_closed_before_destroyed(&target("shutdown"), 1);

    // Lease expiry: the supervisor evicts the silent client and clears the route.
    let g = Fixture::new();
    let host = RuntimeHost::new("close-order-lease");
    host.init(stellatune_runtime_host::HostConfig {
        client_lease_ms: Some(500),
        ..g.config()
    })
    .unwrap();
    host.plugins_install(&artifact(g.path())).unwrap();
    let c = host.attach_client().unwrap();
    let lease_target = g.path().join("lease.raw");
    play_into(&host, c.id, &lease_target, &g.tone);
    assert!(
        wait_for(Duration::from_secs(10), || calls(&lease_target)
            .last()
            .is_some_and(|l| l == "destroy")),
        "the expired client's sink was not destroyed: {:?}",
        calls(&lease_target)
    );
    assert_eq!(host.metrics().player_clients_active, 0);
    assert_closed_before_destroyed(&lease_target, 1);
    host.shutdown().unwrap();
}

#[test]
fn a_hung_close_is_abandoned_in_time_and_its_generation_unloads_when_it_returns() {
    let f = Fixture::new();
    let host = RuntimeHost::new("hung-close");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    host.apply_route(
        c.id,
        misbehave_route(serde_json::json!({ "hang_in_close_ms": 4000 })),
    )
    .unwrap();
    // Open the sink (the SDK only forwards close to an opened sink).
    host.play(c.id, &f.tone).unwrap();
    // `play` returns before the output thread has opened the sink.
    assert!(wait_for(Duration::from_secs(5), || host
        .status(c.id)
        .unwrap()
        .output_spec
        .is_some()));

    let started = Instant::now();
    host.clear_route(c.id).unwrap();
    let took = started.elapsed();
    eprintln!("clear_route with a close hanging 4 s returned after {took:?}");
    assert!(
        took < Duration::from_millis(3500),
        "clear_route waited {took:?} for a hung close"
    );
    assert!(
        took >= stellatune_plugin_host::CLOSE_TIMEOUT.mul_f32(0.9),
        "clear_route did not wait for close at all ({took:?})"
    );

    // The generation whose close is still running cannot unload yet.
    host.plugins_force_reload(PLUGIN_ID).unwrap();
    let m = host.metrics();
    assert!(
        started.elapsed() < Duration::from_millis(3900),
        "too slow to observe the hang ({:?})",
        started.elapsed()
    );
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (1, 1),
        "{m:?}"
    );
    assert_eq!(f.shadow_files(), 2);

    // The engine works on.
    host.apply_route(c.id, stellatune_runtime_host::BuiltinRoute::Null.into())
        .unwrap();
    drain_events(&host, c.id);
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());

    assert!(
        wait_for(Duration::from_secs(15), || host
            .metrics()
            .plugin_generations_draining
            == 0),
        "the generation did not unload after the close returned: {:?}",
        host.metrics()
    );
    let unloaded_after = started.elapsed();
    eprintln!("the hung generation unloaded {unloaded_after:?} after the close began");
    assert!(unloaded_after >= Duration::from_millis(3900));
    assert_eq!(f.shadow_files(), 1);
    assert_eq!(f.mapped_shadow_copies().0, 1);
    host.shutdown().unwrap();
}

#[test]
fn a_refused_update_leaves_the_working_install_in_place() {
    let f = Fixture::new();
    let host = RuntimeHost::new("refused-update");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    let generation = host.plugins_list().unwrap()[0].generation;
    assert!(generation.is_some());
    let capture = f.path().join("capture.raw");
    play_into(&host, c.id, &capture, &f.tone);

    let mut manifest = manifest_template();
    manifest["api_version"] = "2.0".into();
    manifest["version"] = "0.2.0".into();
    let update = artifact_with(f.path(), "update", &manifest);
    let err = host.plugins_install(&update).unwrap_err();
    assert!(
        matches!(
            err,
            stellatune_runtime_host::HostError::Plugin(
                stellatune_runtime_host::PluginError::AbiMismatch { .. }
            )
        ),
        "{err:?}"
    );
    let list = host.plugins_list().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].generation, generation, "{list:?}");
    assert_eq!(list[0].version, "0.1.0");
    assert_eq!(list[0].load_error, None);
    let installed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(f.installed_dir().join("plugin.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        installed["api_version"], "1.0",
        "the installed files are the old ones"
    );
    let m = host.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (1, 0)
    );
    // The route still plays through the working generation, and it reloads from its files
    // (the route moves to the new generation, which the next play opens).
    let before = file_len(&capture);
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file_len(&capture) > before));
    host.plugins_force_reload(PLUGIN_ID).unwrap();
    let before = file_len(&capture);
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_for(Duration::from_secs(10), || file_len(&capture) > before));
    host.clear_route(c.id).unwrap();
    assert_closed_before_destroyed(&capture, 2);
    let leftovers: Vec<_> = std::fs::read_dir(f.plugin_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".shadow")
        .collect();
    assert_eq!(
        leftovers,
        [PLUGIN_ID],
        "no staging or set-aside files are left"
    );
    host.shutdown().unwrap();
}

/// A shared library every machine has, and its file name: libm on Linux, version.dll on
/// Windows.
#[cfg(not(windows))]
fn system_library() -> (std::path::PathBuf, &'static str) {
    let path = [
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/usr/lib/x86_64-linux-gnu/libm.so.6",
        "/lib64/libm.so.6",
        "/usr/lib/aarch64-linux-gnu/libm.so.6",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.is_file())
    .expect("libm.so.6");
    (path, "libm.so.6")
}

#[cfg(windows)]
fn system_library() -> (std::path::PathBuf, &'static str) {
    let root = std::env::var_os("SystemRoot").unwrap_or_else(|| r"C:\Windows".into());
    let path = std::path::Path::new(&root)
        .join("System32")
        .join("version.dll");
    assert!(path.is_file(), "{}", path.display());
    (path, "version.dll")
}
