//! ReplayGain and tags through the C ABI, end to end: a tagged FLAC (made by ffmpeg, skipped
//! as `stellatune_test_support::ffmpeg` says) played with the config's `"replaygain"`, then
//! with `stellatune_player_set_replaygain`, rendered by an unpaced wav route whose samples
//! are read back; and `track_started` carrying the file's tags and ReplayGain values.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use stellatune_ffi::*;
use stellatune_test_support::ffmpeg::ffmpeg;
use stellatune_test_support::tone::{RATE, multichannel_tones, write_wav_int};

const WITHIN: Duration = Duration::from_secs(60);

/// Plays `input` to a fresh unpaced wav file and returns its samples and the
/// `track_started` event.
fn render(client: u64, input: &Path, out: &Path) -> (Vec<f32>, serde_json::Value) {
    let route = serde_json::json!({"kind": "wav", "path": out, "paced": false}).to_string();
    ok(apply_route(client, &route));
    ok(play(client, input));
    let started = poll_until(client, "track_started", WITHIN);
    poll_until(client, "track_ended", WITHIN);
    // Clearing the route finalises the file.
    ok(stellatune_output_route_clear(client));
    let samples = hound::WavReader::open(out)
        .unwrap()
        .samples::<f32>()
        .map(Result::unwrap)
        .collect();
    (samples, started)
}

fn peak(samples: &[f32]) -> f32 {
    samples.iter().map(|s| s.abs()).fold(0.0, f32::max)
}

#[test]
fn replaygain_from_the_config_and_the_command_scales_what_is_heard() {
    let Some(ff) = ffmpeg("replaygain_from_the_config_and_the_command_scales_what_is_heard") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.wav");
    write_wav_int(
        &source,
        RATE,
        2,
        16,
        &multichannel_tones(RATE as usize / 2, 2, 16),
    );
    let tagged = dir.path().join("tagged.flac");
    ff.encode_tagged(
        &source,
        &tagged,
        &["-c:a", "flac"],
        &[
            "title=Quiet Please",
            "artist=The Sines",
            "REPLAYGAIN_TRACK_GAIN=-6.00 dB",
            "REPLAYGAIN_TRACK_PEAK=0.7",
        ],
        None,
    );
    let config = serde_json::json!({
        "data_dir": dir.path().join("data"),
        "log_filter": "error",
        "replaygain": "track",
    })
    .to_string();
    ok(init(Some(&config)));
    let client = create_client();

    let (off, _) = {
        let json = c(r#"{"mode":"off"}"#);
        // SAFETY: a live CString.
        ok(unsafe { stellatune_player_set_replaygain(client, json.as_ptr()) });
        render(client, &tagged, &dir.path().join("off.wav"))
    };
    let json = c(r#"{"mode":"track"}"#);
    // SAFETY: a live CString.
    ok(unsafe { stellatune_player_set_replaygain(client, json.as_ptr()) });
    let (track, started) = render(client, &tagged, &dir.path().join("track.wav"));

    assert_eq!(started["tags"]["title"], "Quiet Please", "{started}");
    assert_eq!(started["tags"]["artist"], "The Sines", "{started}");
    assert_eq!(started["replaygain"]["track_gain_db"], -6.0, "{started}");
    assert_eq!(started["replaygain"]["track_peak"], 0.7, "{started}");
    assert_eq!(off.len(), track.len());
    let ratio = peak(&track) / peak(&off);
    assert!(
        (ratio - 0.501_187).abs() < 1e-3,
        "track mode plays -6 dB: ratio {ratio}"
    );

    ok(stellatune_player_dispose_client(client));
    ok(stellatune_runtime_shutdown());

    // The config alone turns it on.
    ok(init(Some(&config)));
    let client = create_client();
    let (from_config, _) = render(client, &tagged, &dir.path().join("config.wav"));
    assert!(
        (peak(&from_config) / peak(&off) - 0.501_187).abs() < 1e-3,
        "the config's track mode applies from the start"
    );
    ok(stellatune_player_dispose_client(client));
    ok(stellatune_runtime_shutdown());
}
