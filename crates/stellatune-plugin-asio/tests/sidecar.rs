//! The ASIO sidecar plugin through the real host, headless (the sidecar's null and wav
//! devices). Needs the packaged plugin: `scripts/test.sh` builds the workspace and runs
//! `scripts/package-plugins.sh debug` first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::*;
use stellatune_runtime_host::{
    BuiltinRoute, EngineEvent, HostConfig, HostEvent, HostNotice, PlaybackState, RuntimeHost,
};

fn ring_count(data: &Path) -> usize {
    ring_files(data).len()
}

struct Rig {
    dir: tempfile::TempDir,
    host: RuntimeHost,
    client: u64,
}

fn rig(name: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (host, client) = host_with_asio(name, dir.path());
    Rig { dir, host, client }
}

fn wait_event(rig: &Rig, timeout: Duration, mut want: impl FnMut(&HostEvent) -> bool) -> HostEvent {
    let deadline = Instant::now() + timeout;
    loop {
        assert!(Instant::now() < deadline, "timed out waiting for an event");
        if let Some(e) = rig
            .host
            .poll_event(rig.client, Duration::from_millis(50))
            .unwrap()
        {
            if want(&e) {
                return e;
            }
        }
    }
}

/// Plays a one-second two-tone track through the ASIO plugin to its sidecar's wav device
/// `device_prefix` (`wav:` or `wav[FORMAT]:`), waits until the file is finalised and the
/// sidecar gone, and returns the track's samples and the file.
fn play_to_wav_device(rig: &Rig, device_prefix: &str) -> (Vec<f32>, std::path::PathBuf) {
    let input = rig.dir.path().join("tone.wav");
    let expected = write_two_tone(&input, 1.0);
    let out = rig.dir.path().join("heard.wav");
    rig.host
        .apply_route(
            rig.client,
            asio(&format!("{device_prefix}{}", out.display())),
        )
        .unwrap();
    rig.host.play(rig.client, &input).unwrap();
    wait_event(rig, Duration::from_secs(20), |e| {
        matches!(
            e,
            HostEvent::Engine(EngineEvent::StateChanged {
                state: PlaybackState::Stopped
            })
        )
    });
    // Cleared right after the track ended, with the last part of it still in the ring: the
    // close has the sidecar play out the ring into the device before it finalises the file.
    rig.host.clear_route(rig.client).unwrap();
    let metrics = rig.host.metrics();
    assert_eq!(
        reported(&metrics, "asio_sidecar_spawns_total"),
        1,
        "{metrics:?}"
    );
    wait_until("sidecar gone", Duration::from_secs(3), || {
        sidecars_of(me()).0.is_empty()
    });
    assert_eq!(ring_count(&rig.dir.path().join("data")), 0);
    (expected, out)
}

#[test]
fn a_track_played_through_the_sidecar_reaches_its_wav_device_intact() {
    let rig = rig("asio-wav");
    let (expected, out) = play_to_wav_device(&rig, "wav:");
    let mut reader = hound::WavReader::open(&out).unwrap();
    let heard: Vec<f32> = reader.samples::<f32>().map(Result::unwrap).collect();
    assert_eq!(heard.len(), expected.len(), "every frame arrived once");
    let worst = heard
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "output differs from input by up to {worst}");
    rig.host.shutdown().unwrap();
}

#[test]
fn a_track_played_to_a_24_bit_wav_device_arrives_within_the_dither() {
    let rig = rig("asio-wav-i24");
    let (expected, out) = play_to_wav_device(&rig, "wav[i24]:");
    let mut reader = hound::WavReader::open(&out).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_format, spec.bits_per_sample),
        (hound::SampleFormat::Int, 24)
    );
    let heard: Vec<i32> = reader.samples::<i32>().map(Result::unwrap).collect();
    assert_eq!(heard.len(), expected.len(), "every frame arrived once");
    // The track's 16-bit values lie on the 24-bit grid: only the ±1 LSB dither moves them.
    let worst = heard
        .iter()
        .zip(&expected)
        .map(|(&got, &want)| (f64::from(got) - f64::from(want) * f64::from(1 << 23)).abs())
        .fold(0.0f64, f64::max);
    assert!(
        worst <= 1.0,
        "output differs from input by up to {worst} LSB"
    );
    rig.host.shutdown().unwrap();
}

#[test]
fn sinks_with_one_signature_share_one_sidecar_that_stops_after_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = stellatune_plugin_host::PluginRuntime::start(
        &data.join("plugins"),
        &data,
        std::sync::Arc::new(|_| {}),
    )
    .unwrap();
    runtime.install(&packaged_plugin_in(dir.path())).unwrap();
    use stellatune_audio::{SinkFactory, StreamSpec};
    let spec = StreamSpec::new(RATE, 2);
    let mut a = Box::new(runtime.create_sink("asio", None, "null", None).unwrap())
        .create()
        .unwrap();
    let mut b = Box::new(runtime.create_sink("asio", None, "null", None).unwrap())
        .create()
        .unwrap();
    a.open(spec).unwrap();
    assert_eq!(sidecars_of(me()).0.len(), 1);
    b.open(spec).unwrap();
    assert_eq!(
        sidecars_of(me()).0.len(),
        1,
        "the second sink reuses the sidecar"
    );
    assert_eq!(ring_count(&data), 2, "one ring per open stream");
    let block = vec![0.1f32; 2048];
    assert!(a.write(&block).unwrap() > 0);
    assert!(b.write(&block).unwrap() > 0);
    a.close().unwrap();
    drop(a);
    assert_eq!(sidecars_of(me()).0.len(), 1, "b still holds a lease");
    b.close().unwrap();
    drop(b);
    // The last lease's sidecar stops on a thread of its own: exited, reaped, counted. Its
    // rings are gone with it (on Windows a ring file lasts until the sidecar's handle on it
    // closes, and the close of a stream does not wait for the sidecar).
    wait_sidecars_reaped("sidecar stopped and reaped");
    assert_eq!(ring_count(&data), 0);
    wait_until(
        "the running gauge back at 0",
        Duration::from_secs(2),
        || runtime.metrics().reported.get("asio_sidecar_running") == Some(&0),
    );
    let m = runtime.metrics();
    assert_eq!(m.reported.get("asio_sidecar_spawns_total"), Some(&1));
}

#[test]
fn route_cycles_and_reloads_while_playing_keep_one_sidecar_and_no_zombies() {
    let rig = rig("asio-churn");
    let data = rig.dir.path().join("data");
    let input = rig.dir.path().join("tone.wav");
    write_two_tone(&input, 30.0);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    rig.host.play(rig.client, &input).unwrap();
    for i in 0..20 {
        rig.host.clear_route(rig.client).unwrap();
        rig.host.apply_route(rig.client, asio("null")).unwrap();
        rig.host.play(rig.client, &input).unwrap();
        let (live, zombies) = sidecars_of(me());
        assert!(live.len() <= 1, "cycle {i}: {} sidecars", live.len());
        assert_eq!(zombies, 0, "cycle {i}");
        assert!(
            ring_count(&data) <= 1,
            "cycle {i}: {} rings",
            ring_count(&data)
        );
    }
    for i in 0..20 {
        rig.host.plugins_force_reload("asio").unwrap();
        let (live, zombies) = sidecars_of(me());
        assert!(live.len() <= 1, "reload {i}: {} sidecars", live.len());
        assert_eq!(zombies, 0, "reload {i}");
        assert!(ring_count(&data) <= 1, "reload {i}");
        assert_eq!(
            rig.host.status(rig.client).unwrap().state,
            PlaybackState::Playing
        );
    }
    wait_until("old generations drained", Duration::from_secs(5), || {
        rig.host.metrics().plugin_generations_draining == 0
    });
    rig.host.shutdown().unwrap();
    wait_until(
        "sidecar gone after shutdown",
        Duration::from_secs(3),
        || sidecars_of(me()).0.is_empty(),
    );
    assert_eq!(ring_count(&data), 0);
    assert_eq!(sidecars_of(me()).1, 0);
}

/// Frames written so far, after waiting for them to advance by a quarter second: playback
/// is really going on, not just reported as playing.
fn audio_flows(rig: &Rig, what: &str) {
    let before = rig.host.status(rig.client).unwrap().frames_written;
    wait_until(what, Duration::from_secs(5), || {
        rig.host.status(rig.client).unwrap().frames_written > before + RATE as u64 / 4
    });
    assert_eq!(
        rig.host.status(rig.client).unwrap().state,
        PlaybackState::Playing,
        "{what}"
    );
}

/// Shadow directories of loaded (or unloading) generations.
fn shadow_dirs(data: &Path) -> usize {
    std::fs::read_dir(data.join("plugins").join(".shadow")).map_or(0, |d| d.count())
}

/// The installed files are never in use: the sidecar runs from its generation's shadow
/// directory, so upgrading, uninstalling and reinstalling the plugin while it plays all work,
/// on Windows too, where a running executable's file cannot be deleted or replaced.
#[test]
fn upgrade_uninstall_and_reinstall_while_playing_never_touch_a_file_in_use() {
    let rig = rig("asio-reinstall");
    let data = rig.dir.path().join("data");
    let installed = data.join("plugins").join("asio");
    let package = packaged_plugin_in(rig.dir.path());
    let input = rig.dir.path().join("tone.wav");
    write_two_tone(&input, 60.0);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    rig.host.play(rig.client, &input).unwrap();
    // Playing, not just spawned: `play` returns before the output has opened its stream.
    wait_until("sidecar up and playing", Duration::from_secs(5), || {
        sidecars_of(me()).0.len() == 1 && rig.host.status(rig.client).unwrap().frames_written > 0
    });
    let sidecar = sidecars_of(me()).0[0];
    let exe = stellatune_probe::executable(sidecar).expect("the sidecar's program file");
    assert!(
        exe.components().any(|c| c.as_os_str() == ".shadow"),
        "the sidecar runs from {exe:?}, not from a shadow directory"
    );
    audio_flows(&rig, "playing before the upgrade");

    for round in 0..3 {
        rig.host.plugins_install(&package).unwrap();
        audio_flows(&rig, &format!("round {round}: playing after the upgrade"));
        rig.host.plugins_uninstall("asio").unwrap();
        assert!(
            !installed.exists(),
            "round {round}: the installed directory is still there after uninstall"
        );
        audio_flows(&rig, &format!("round {round}: playing after the uninstall"));
        rig.host.plugins_install(&package).unwrap();
        assert!(installed.join("plugin.json").is_file(), "round {round}");
        audio_flows(&rig, &format!("round {round}: playing after the reinstall"));
        let (live, zombies) = sidecars_of(me());
        assert!(live.len() <= 1, "round {round}: {} sidecars", live.len());
        assert_eq!(zombies, 0, "round {round}");
        assert!(
            ring_count(&data) <= 1,
            "round {round}: {} rings",
            ring_count(&data)
        );
    }

    rig.host.clear_route(rig.client).unwrap();
    wait_until("sidecar stopped", Duration::from_secs(5), || {
        sidecars_of(me()).0.is_empty()
    });
    wait_until("old generations unloaded", Duration::from_secs(5), || {
        rig.host.metrics().plugin_generations_draining == 0 && shadow_dirs(&data) == 1
    });
    assert_eq!(ring_count(&data), 0);
    rig.host.shutdown().unwrap();
    assert_eq!(shadow_dirs(&data), 0, "shutdown left shadow directories");
}

#[test]
fn a_killed_sidecar_is_reported_and_replaced_while_playback_goes_on() {
    let rig = rig("asio-kill");
    let input = rig.dir.path().join("tone.wav");
    write_two_tone(&input, 30.0);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    rig.host.play(rig.client, &input).unwrap();
    // Playing, not just spawned: `play` returns before the output has opened its stream.
    wait_until("sidecar up and playing", Duration::from_secs(5), || {
        sidecars_of(me()).0.len() == 1 && rig.host.status(rig.client).unwrap().frames_written > 0
    });
    let victim = sidecars_of(me()).0[0];
    let spawns_before = reported(&rig.host.metrics(), "asio_sidecar_spawns_total");
    let killed_at = Instant::now();
    stellatune_probe::kill(victim).unwrap();
    let exited = wait_event(
        &rig,
        Duration::from_secs(5),
        |e| matches!(e, HostEvent::Host(HostNotice::PluginEvent { kind, .. }) if kind == "sidecar_exited"),
    );
    assert!(
        killed_at.elapsed() < Duration::from_millis(500),
        "detected in {:?}: {exited:?}",
        killed_at.elapsed()
    );
    wait_event(
        &rig,
        Duration::from_secs(5),
        |e| matches!(e, HostEvent::Host(HostNotice::PluginEvent { kind, .. }) if kind == "sidecar_recovered"),
    );
    wait_until("a new sidecar", Duration::from_secs(5), || {
        let live = sidecars_of(me()).0;
        live.len() == 1 && live[0] != victim
    });
    assert_eq!(
        reported(&rig.host.metrics(), "asio_sidecar_spawns_total"),
        spawns_before + 1
    );
    let before = rig.host.status(rig.client).unwrap().frames_written;
    wait_until("audio flows again", Duration::from_secs(5), || {
        rig.host.status(rig.client).unwrap().frames_written > before + RATE as u64 / 4
    });
    assert_eq!(
        rig.host.status(rig.client).unwrap().state,
        PlaybackState::Playing
    );
    assert_eq!(sidecars_of(me()).1, 0, "the killed sidecar was reaped");
    rig.host.shutdown().unwrap();
}

#[test]
fn the_sidecar_exits_when_its_host_is_killed_and_the_next_start_reaps_the_ring() {
    let cli = built_program("stellatune");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let input = dir.path().join("tone.wav");
    write_two_tone(&input, 30.0);
    let install = Command::new(&cli)
        .arg("--data-dir")
        .arg(&data)
        .args(["plugins", "install"])
        .arg(packaged_plugin_in(dir.path()))
        .output()
        .unwrap();
    assert!(install.status.success(), "{install:?}");
    let mut host = Command::new(&cli)
        .arg("--data-dir")
        .arg(&data)
        .arg("play")
        .arg(&input)
        .args(["--output", "plugin:asio@null"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host_pid = host.id();
    wait_until("sidecar of the host", Duration::from_secs(10), || {
        sidecars_of(host_pid).0.len() == 1 && ring_count(&data) == 1
    });
    let sidecar = sidecars_of(host_pid).0[0];
    host.kill().unwrap();
    host.wait().unwrap();
    let killed = Instant::now();
    wait_until("orphaned sidecar exits", Duration::from_secs(2), || {
        !stellatune_probe::is_running(sidecar)
    });
    assert!(
        killed.elapsed() < Duration::from_secs(1),
        "took {:?}",
        killed.elapsed()
    );
    if cfg!(windows) {
        // The ring was created delete-on-close: the system removed it with the last handle.
        wait_until(
            "the dead host's ring deleted",
            Duration::from_secs(2),
            || ring_count(&data) == 0,
        );
    } else {
        assert_eq!(ring_count(&data), 1, "the dead host left its ring behind");
    }
    // The next run of the plugin reaps it.
    let host = RuntimeHost::new("asio-reap");
    host.init(HostConfig {
        data_dir: Some(data.clone()),
        log_filter: Some("warn".into()),
        ..HostConfig::default()
    })
    .unwrap();
    // The dead host's shadow copy went at start: only this process's copies remain.
    let shadows: Vec<String> = std::fs::read_dir(data.join("plugins").join(".shadow"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        shadows.iter().all(|n| n.contains(&format!("-p{}-", me()))),
        "shadow copies of the dead host were left: {shadows:?}"
    );
    let client = host.attach_client().unwrap().id;
    host.apply_route(client, asio("null")).unwrap();
    assert_eq!(ring_count(&data), 0, "stale ring reaped");
    host.apply_route(client, BuiltinRoute::Null.into()).unwrap();
    host.shutdown().unwrap();
}

#[test]
fn a_hung_sidecar_is_detected_killed_and_replaced() {
    let rig = rig("asio-hang");
    let input = rig.dir.path().join("tone.wav");
    write_two_tone(&input, 30.0);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    rig.host.play(rig.client, &input).unwrap();
    // Playing, not just spawned: `play` returns before the output has opened its stream.
    wait_until("sidecar up and playing", Duration::from_secs(5), || {
        sidecars_of(me()).0.len() == 1 && rig.host.status(rig.client).unwrap().frames_written > 0
    });
    let victim = sidecars_of(me()).0[0];
    // Stopped, not ended: from outside it looks hung; the plugin kills it later.
    stellatune_probe::suspend(victim).unwrap();
    let stopped_at = Instant::now();
    wait_event(
        &rig,
        Duration::from_secs(5),
        |e| matches!(e, HostEvent::Host(HostNotice::PluginEvent { kind, .. }) if kind == "sidecar_hung"),
    );
    let detected = stopped_at.elapsed();
    wait_event(
        &rig,
        Duration::from_secs(5),
        |e| matches!(e, HostEvent::Host(HostNotice::PluginEvent { kind, .. }) if kind == "sidecar_recovered"),
    );
    wait_until("the hung sidecar is gone", Duration::from_secs(3), || {
        !sidecars_of(me()).0.contains(&victim)
    });
    let before = rig.host.status(rig.client).unwrap().frames_written;
    wait_until("audio flows again", Duration::from_secs(5), || {
        rig.host.status(rig.client).unwrap().frames_written > before + RATE as u64 / 4
    });
    assert!(
        detected < Duration::from_secs(2),
        "hang detected after {detected:?}"
    );
    assert_eq!(sidecars_of(me()).1, 0, "no zombie");
    rig.host.shutdown().unwrap();
}

/// Distinct generations of the asio plugin whose library is still loaded in this process
/// (each runs from its own shadow directory `asio-p<pid>-...`).
fn mapped_asio_generations(data: &Path) -> usize {
    stellatune_probe::mapped_libraries_under(&data.join("plugins").join(".shadow"))
        .expect("loaded libraries")
        .iter()
        .filter(|p| {
            p.parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n.to_string_lossy().starts_with("asio-"))
        })
        .count()
}

#[test]
fn replaced_generations_really_leave_the_address_space() {
    let rig = rig("asio-unmap");
    let input = rig.dir.path().join("tone.wav");
    write_two_tone(&input, 30.0);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    rig.host.play(rig.client, &input).unwrap();
    for _ in 0..8 {
        // Every reload moves the route: the old instance closes its stream on this
        // process's threads, the sidecar is leased anew, and the old generation unloads.
        rig.host.plugins_force_reload("asio").unwrap();
        assert_eq!(
            rig.host.status(rig.client).unwrap().state,
            PlaybackState::Playing
        );
    }
    wait_until("old generations drained", Duration::from_secs(5), || {
        rig.host.metrics().plugin_generations_draining == 0
    });
    // Thread-locals with destructors registered on host threads would pin every old
    // generation's library in memory (dlclose would not unmap it).
    assert_eq!(
        mapped_asio_generations(&rig.dir.path().join("data")),
        1,
        "only the active generation stays mapped"
    );
    rig.host.shutdown().unwrap();
    assert_eq!(
        mapped_asio_generations(&rig.dir.path().join("data")),
        0,
        "shutdown unloads the last one too"
    );
}

/// Short stereo tones at `rates`, one file each.
fn tracks_at(dir: &Path, rates: &[u32], seconds: f32) -> Vec<std::path::PathBuf> {
    use stellatune_test_support::tone::{stereo_sines, write_wav_i16};
    rates
        .iter()
        .enumerate()
        .map(|(i, &rate)| {
            let path = dir.join(format!("track{i}-{rate}.wav"));
            // The samples are made at 44.1 kHz and labelled with `rate`: only the rate matters.
            let samples = stereo_sines(seconds, (440.0, 6000.0), (550.0, 6000.0));
            write_wav_i16(&path, rate, 2, &samples);
            path
        })
        .collect()
}

fn wait_stopped(rig: &Rig) {
    wait_event(rig, Duration::from_secs(20), |e| {
        matches!(
            e,
            HostEvent::Engine(EngineEvent::StateChanged {
                state: PlaybackState::Stopped
            })
        )
    });
}

#[test]
fn a_playlist_of_mixed_rates_reconfigures_one_sidecar_instead_of_respawning() {
    let rig = rig("asio-rates");
    let rates = [44_100, 48_000, 96_000, 44_100];
    let tracks = tracks_at(rig.dir.path(), &rates, 0.3);
    rig.host.apply_route(rig.client, asio("null")).unwrap();
    // One after another, each started by `play`.
    for (track, rate) in tracks.iter().zip(rates) {
        rig.host.play(rig.client, track).unwrap();
        wait_stopped(&rig);
        assert!(sidecars_of(me()).0.len() <= 1, "after the {rate} Hz track");
    }
    // The same playlist through the queue: each next track is queued while one plays.
    let mut ids = vec![rig.host.play(rig.client, &tracks[0]).unwrap()];
    for track in &tracks[1..] {
        let playing = *ids.last().unwrap();
        wait_event(
            &rig,
            Duration::from_secs(20),
            |e| matches!(e, HostEvent::Engine(EngineEvent::TrackStarted { track_id, .. }) if *track_id == playing),
        );
        ids.push(rig.host.queue_next(rig.client, track).unwrap());
        assert!(sidecars_of(me()).0.len() <= 1);
    }
    let last = *ids.last().unwrap();
    wait_event(
        &rig,
        Duration::from_secs(20),
        |e| matches!(e, HostEvent::Engine(EngineEvent::TrackEnded { track_id }) if *track_id == last),
    );
    let metrics = rig.host.metrics();
    assert_eq!(
        reported(&metrics, "asio_sidecar_spawns_total"),
        1,
        "one sidecar for the whole playback: {metrics:?}"
    );
    assert_eq!(reported(&metrics, "asio_sidecar_running"), 1);
    assert!(sidecars_of(me()).0.len() <= 1);
    rig.host.clear_route(rig.client).unwrap();
    wait_until("sidecar gone", Duration::from_secs(3), || {
        sidecars_of(me()).0.is_empty()
    });
    rig.host.shutdown().unwrap();
}

/// Plays `samples` (stereo at `RATE`) through the sidecar's wav device, seeks to 2 s after
/// half a second was played, stops a quarter second later, clears the route and shuts the
/// host down; returns what the device wrote.
fn seek_then_stop_through_the_sidecar(name: &str, samples: &[i16]) -> Vec<f32> {
    let rig = rig(name);
    let input = rig.dir.path().join("input.wav");
    stellatune_test_support::tone::write_wav_i16(&input, RATE, 2, samples);
    let out = rig.dir.path().join("heard.wav");
    rig.host
        .apply_route(rig.client, asio(&format!("wav:{}", out.display())))
        .unwrap();
    rig.host.play(rig.client, &input).unwrap();
    // What the device got so far: the file grows as the sidecar writes (8 bytes a frame).
    let played = |frames: u32| {
        wait_until(
            &format!("{frames} frames played"),
            Duration::from_secs(20),
            || std::fs::metadata(&out).is_ok_and(|m| m.len() >= 44 + 8 * u64::from(frames)),
        )
    };
    played(RATE / 2);
    rig.host.seek_ms(rig.client, 2_000).unwrap();
    played(RATE / 2 + RATE / 4);
    rig.host.stop(rig.client).unwrap();
    wait_event(&rig, Duration::from_secs(20), |e| {
        matches!(
            e,
            HostEvent::Engine(EngineEvent::StateChanged {
                state: PlaybackState::Stopped
            })
        )
    });
    // The close plays out what the ring still holds and finalises the file.
    rig.host.clear_route(rig.client).unwrap();
    wait_until("sidecar gone", Duration::from_secs(3), || {
        sidecars_of(me()).0.is_empty()
    });
    rig.host.shutdown().unwrap();
    hound::WavReader::open(&out)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect()
}

/// A seek and a stop through the sidecar: the engine resets the sink, which drops what the
/// ring still holds (up to 200 ms). The sidecar fades that out and what comes after the reset
/// in, so its wav device never gets a step larger than the music's own (a 997 Hz sine at half
/// scale has no larger, and no whole number of its periods fits a block, so a cut is a step),
/// from the silence before the track to the silence after the stop.
#[test]
fn a_seek_and_a_stop_through_the_sidecar_leave_no_step_in_its_wav_device() {
    let sine: Vec<i16> = (0..RATE * 3)
        .flat_map(|n| {
            let s = 0.5 * (2.0 * std::f64::consts::PI * 997.0 * f64::from(n) / f64::from(RATE));
            let s = (s.sin() * 32_767.0) as i16;
            [s, s]
        })
        .collect();
    let heard = seek_then_stop_through_the_sidecar("asio-declick", &sine);
    assert!(
        heard.len() > 2 * RATE as usize / 2 && heard.len() < sine.len() / 2,
        "heard half a second, the seek skipped a second and the stop the rest: {} frames",
        heard.len() / 2
    );
    let mut step = 0.0f32;
    for ch in 0..2 {
        let channel: Vec<f32> = heard.iter().skip(ch).step_by(2).copied().collect();
        for w in channel.windows(2) {
            step = step.max((w[1] - w[0]).abs());
        }
        step = step.max(channel.first().map_or(0.0, |s| s.abs()));
        step = step.max(channel.last().map_or(0.0, |s| s.abs()));
    }
    let sine_step = (2.0 * 0.5 * (std::f64::consts::PI * 997.0 / f64::from(RATE)).sin()) as f32;
    assert!(
        step <= sine_step * 1.01,
        "largest step {step}, the sine's own {sine_step}"
    );
}

/// The ASIO sink says its sidecar fades out what a reset drops (`FADES_ON_RESET`), so the
/// engine writes no fade-out of its own after a seek's reset: written after the drop, it was
/// audio from about the ring's length ahead of what was heard, which the sidecar's fade-in
/// turned into a faint swell (peaking near a quarter of the music's level). Seeking into
/// silence makes anything of it show in the wav device: after the fade-out of the sine,
/// only silence.
#[test]
fn a_seek_through_the_sidecar_plays_nothing_of_the_dropped_audio() {
    // 1.5 s of a 997 Hz sine at half scale, then 1.5 s of silence.
    let samples: Vec<i16> = (0..RATE * 3)
        .flat_map(|n| {
            let s = if n < RATE * 3 / 2 {
                0.5 * (2.0 * std::f64::consts::PI * 997.0 * f64::from(n) / f64::from(RATE)).sin()
            } else {
                0.0
            };
            let s = (s * 32_767.0) as i16;
            [s, s]
        })
        .collect();
    let heard = seek_then_stop_through_the_sidecar("asio-no-ghost", &samples);
    let frames = heard.len() / 2;
    let level = |from: usize, to: usize| {
        heard[from.min(frames) * 2..to.min(frames) * 2]
            .iter()
            .map(|s| s.abs())
            .fold(0.0f32, f32::max)
    };
    // The sine is at full level until its fade-out starts: the last frame near its peak is
    // within the first few frames of that fade-out, which ends a 5 ms ramp later.
    let last_loud = (0..frames)
        .rev()
        .find(|&f| level(f, f + 1) > 0.45)
        .expect("the sine was heard");
    assert!(
        last_loud > RATE as usize / 2,
        "half a second of the sine before the seek: {last_loud}"
    );
    let fade = (RATE * stellatune_sidecar_proto::RESET_FADE_MS / 1000) as usize;
    let after = last_loud + fade + 10;
    assert!(
        frames > after + RATE as usize / 10,
        "the silence of the new position was heard: {frames} frames"
    );
    let ghost = level(after, after + RATE as usize / 100);
    assert!(
        ghost < 0.01,
        "the 10 ms after the fade-out reach {ghost}, the sine's amplitude is 0.5"
    );
    assert!(
        level(after, frames) < 0.01,
        "only silence after the fade-out"
    );
}
