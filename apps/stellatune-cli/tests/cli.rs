//! The `stellatune` binary end to end: tone, play to a wav file, plugin management and a
//! plugin output, and clear failures for bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stellatune_test_support::artifacts;

fn stellatune(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stellatune"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("run stellatune")
}

fn ok(data_dir: &Path, args: &[&str]) -> String {
    let out = stellatune(data_dir, args);
    assert!(
        out.status.success(),
        "stellatune {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail; returns its stderr.
fn fails(data_dir: &Path, args: &[&str]) -> String {
    let out = stellatune(data_dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "stellatune {args:?} should fail; stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.trim().is_empty(), "stellatune {args:?}: no message");
    stderr
}

/// The test plugins, installable, laid out from this build's cdylib.
fn plugin_artifact(parent: &Path) -> PathBuf {
    artifacts::lay_out_test_plugins(&parent.join("test-plugins-artifact"))
}

/// The closing line adds up every track's time: a 1 s and a 2 s track played one after the
/// other are 3.0 s, not the longest of them.
#[test]
fn playing_two_files_reports_their_total_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let a = tmp.path().join("a.wav");
    let b = tmp.path().join("b.wav");
    ok(&data, &["tone", a.to_str().unwrap(), "--seconds", "1"]);
    ok(&data, &["tone", b.to_str().unwrap(), "--seconds", "2"]);
    let out = stellatune(
        &data,
        &[
            "play",
            a.to_str().unwrap(),
            b.to_str().unwrap(),
            "--output",
            "null",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("played 2 track(s), 3.0 s"),
        "closing line: {stderr}"
    );
}

#[test]
fn tone_play_and_plugins_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tone = tmp.path().join("tone.wav");
    let tone_s = tone.to_str().unwrap();
    ok(&data, &["tone", tone_s, "--seconds", "1"]);
    let frames = hound::WavReader::open(&tone).unwrap().duration();
    assert_eq!(frames, 44_100);

    // Builtin wav output, rendered as fast as possible.
    let heard = tmp.path().join("heard.wav");
    ok(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            &format!("wav:{}", heard.display()),
            "--unpaced",
        ],
    );
    let reader = hound::WavReader::open(&heard).unwrap();
    assert_eq!(reader.spec().channels, 2);
    assert_eq!(reader.duration(), frames);

    // Plugins: install, list, play through the capture sink, reload, uninstall.
    let artifact = plugin_artifact(tmp.path());
    let installed: serde_json::Value = serde_json::from_str(&ok(
        &data,
        &["plugins", "install", artifact.to_str().unwrap()],
    ))
    .unwrap();
    assert_eq!(installed["id"], "test-plugins", "{installed}");
    let list: serde_json::Value = serde_json::from_str(&ok(&data, &["plugins", "list"])).unwrap();
    let list = list.as_array().expect("a JSON array");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], "test-plugins");
    assert!(list[0]["generation"].is_u64(), "{list:?}");
    assert!(list[0]["load_error"].is_null(), "{list:?}");
    let sinks: Vec<&str> = list[0]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "output_sink")
        .filter_map(|c| c["type_id"].as_str())
        .collect();
    assert_eq!(sinks, ["capture", "capture_fading", "misbehave"]);

    let capture = tmp.path().join("capture.raw");
    ok(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            &format!("plugin:test-plugins/capture@{}", capture.display()),
        ],
    );
    let bytes = std::fs::metadata(&capture).unwrap().len();
    assert_eq!(
        bytes,
        u64::from(frames) * 2 * 4,
        "every frame as two f32 samples"
    );
    let calls = std::fs::read_to_string(format!("{}.calls", capture.display())).unwrap();
    assert!(calls.ends_with("close\ndestroy\n"), "{calls}");

    // A plugin config reaches the sink: a misbehaving one fails the run, with its message.
    let stderr = fails(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            "plugin:test-plugins/misbehave@default",
            "--plugin-config",
            r#"{"error_in":["open"]}"#,
        ],
    );
    assert!(stderr.contains("misbehave: error in Open"), "{stderr}");

    let report: serde_json::Value =
        serde_json::from_str(&ok(&data, &["plugins", "reload"])).unwrap();
    assert_eq!(
        report["unchanged"],
        serde_json::json!(["test-plugins"]),
        "{report}"
    );

    ok(&data, &["plugins", "uninstall", "test-plugins"]);
    let list: serde_json::Value = serde_json::from_str(&ok(&data, &["plugins", "list"])).unwrap();
    assert_eq!(list, serde_json::json!([]));
    let stderr = fails(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            &format!("plugin:test-plugins/capture@{}", capture.display()),
        ],
    );
    assert!(stderr.contains("test-plugins"), "{stderr}");
}

#[test]
fn bad_input_fails_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tone = tmp.path().join("tone.wav");
    let tone_s = tone.to_str().unwrap();
    ok(&data, &["tone", tone_s, "--seconds", "0.2"]);

    let missing = tmp.path().join("missing.wav");
    let stderr = fails(
        &data,
        &["play", missing.to_str().unwrap(), "--output", "null"],
    );
    assert!(stderr.contains("missing.wav"), "{stderr}");

    for output in [
        "speaker",
        "wav:",
        "plugin:",
        "plugin:/capture",
        "plugin:x/@t",
    ] {
        let stderr = fails(&data, &["play", tone_s, "--output", output]);
        assert!(stderr.contains("output"), "{output}: {stderr}");
        assert!(
            stderr.contains(&format!("{output:?}")),
            "{output}: {stderr}"
        );
    }
    let stderr = fails(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            "plugin:x@t",
            "--plugin-config",
            "{oops",
        ],
    );
    assert!(stderr.contains("--plugin-config"), "{stderr}");
    let stderr = fails(
        &data,
        &["play", tone_s, "--output", "null", "--plugin-config", "{}"],
    );
    assert!(stderr.contains("--plugin-config"), "{stderr}");

    let stderr = fails(&data, &["play", tone_s, "--output", "plugin:nope@t"]);
    assert!(stderr.contains("nope"), "{stderr}");
    let nowhere = tmp.path().join("nowhere");
    let stderr = fails(&data, &["plugins", "install", nowhere.to_str().unwrap()]);
    assert!(stderr.contains("nowhere"), "{stderr}");
    let stderr = fails(&data, &["plugins", "uninstall", "nope"]);
    assert!(stderr.contains("nope"), "{stderr}");
}

/// `stellatune info FILE` prints the probe JSON of the C ABI (`stellatune_media_probe_json`).
#[test]
fn info_prints_the_probe_json() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("tone.wav");
    stellatune_test_support::tone::write_tone(&wav, 0.5);
    let out = ok(dir.path(), &["info", wav.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("info prints JSON");
    assert_eq!(v["codec"], "pcm_s16le");
    assert_eq!(v["sample_rate"], 44_100);
    assert_eq!(v["channels"], 2);
    assert_eq!(v["bits_per_sample"], 16);
    assert_eq!(v["duration_ms"], 500);
    assert!(v["tags"].is_object() && v["replaygain"].is_object());
    assert_eq!(v["cover"], serde_json::Value::Null);
    let err = fails(
        dir.path(),
        &["info", dir.path().join("nope.flac").to_str().unwrap()],
    );
    assert!(err.contains("file not found"), "{err}");
}

#[test]
fn play_renders_a_wav_at_a_fixed_format_and_takes_replaygain_options() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tone = tmp.path().join("tone.wav");
    let tone_s = tone.to_str().unwrap();
    ok(&data, &["tone", tone_s, "--seconds", "1"]);

    let mono = tmp.path().join("mono.wav");
    ok(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            &format!("wav:{}", mono.display()),
            "--unpaced",
            "--channels",
            "1",
            "--sample-rate",
            "22050",
            "--replaygain",
            "track",
            "--preamp-db",
            "-3",
        ],
    );
    let reader = hound::WavReader::open(&mono).unwrap();
    assert_eq!(reader.spec().channels, 1);
    assert_eq!(reader.spec().sample_rate, 22_050);
    assert!(
        reader.duration().abs_diff(22_050) <= 1,
        "{}",
        reader.duration()
    );

    let stderr = fails(
        &data,
        &["play", tone_s, "--output", "null", "--channels", "2"],
    );
    assert!(stderr.contains("only apply to a wav output"), "{stderr}");
    let stderr = fails(
        &data,
        &[
            "play",
            tone_s,
            "--output",
            "null",
            "--replaygain",
            "album",
            "--preamp-db",
            "40",
        ],
    );
    assert!(stderr.contains("preamp_db"), "{stderr}");
}

/// `stellatune devices` prints what `stellatune_output_devices_json` writes: here the test
/// plugins' targets, each with the route that plays there, which `play --output` takes too.
#[test]
fn devices_lists_every_output_with_its_route() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let artifact = plugin_artifact(tmp.path());
    ok(&data, &["plugins", "install", artifact.to_str().unwrap()]);
    let list: serde_json::Value = serde_json::from_str(&ok(&data, &["devices"])).unwrap();
    let list = list.as_array().expect("a JSON array");
    let capture = list
        .iter()
        .find(|d| d["id"] == "plugin:test-plugins:capture:capture.raw")
        .unwrap_or_else(|| panic!("{list:#?}"));
    assert_eq!(
        capture["route"],
        serde_json::json!({"kind": "plugin", "plugin_id": "test-plugins", "sink": "capture", "target": "capture.raw"})
    );
    let system = list
        .iter()
        .filter(|d| d["route"]["kind"] == "device")
        .count();
    // Windows builds always have device output, but WASAPI under Wine lists nothing in time.
    if !cfg!(windows) {
        assert_eq!(system > 0, cfg!(feature = "device"), "{list:#?}");
    }
}

/// Device output in a build without it names the command that builds it and the package
/// Linux needs.
#[cfg(not(any(feature = "device", windows)))]
#[test]
fn device_output_without_the_feature_says_how_to_build_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let tone = tmp.path().join("tone.wav");
    ok(&data, &["tone", tone.to_str().unwrap(), "--seconds", "0.2"]);
    for output in ["device", "device:alsa:default"] {
        let stderr = fails(&data, &["play", tone.to_str().unwrap(), "--output", output]);
        for needle in [
            "built without the `device` feature",
            "cargo build --release -p stellatune-cli --features device",
            "libasound2-dev",
        ] {
            assert!(stderr.contains(needle), "{output}: {stderr}");
        }
    }
}
