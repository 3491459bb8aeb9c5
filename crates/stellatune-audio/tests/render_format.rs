//! The `wav` route with a fixed format: every track is mixed and resampled to the channel
//! count and rate the route names, and the file has exactly that format. The mix is checked
//! sample by sample against the ITU-R BS.775 coefficients written out here, not against the
//! engine's own matrix.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use stellatune_audio::{BuiltinRoute, SinkFactory};
use stellatune_test_support::tone::write_wav_int;

const SHUTDOWN: Duration = Duration::from_secs(20);

/// A mono sine (`tone_i16` is stereo: one side of it).
fn mono_tone(rate: u32, frames: usize, freq: f64) -> Vec<i16> {
    tone_i16(rate, frames, freq, 0.5)
        .into_iter()
        .step_by(2)
        .collect()
}

fn fixed_route(path: &Path, channels: Option<u16>, rate: Option<u32>) -> Box<dyn SinkFactory> {
    Box::new(BuiltinRoute::Wav {
        path: path.to_path_buf(),
        paced: false,
        channels,
        sample_rate: rate,
    })
}

fn render_fixed(
    name: &str,
    input: &Path,
    out: &Path,
    channels: Option<u16>,
    rate: Option<u32>,
) -> (hound::WavSpec, Vec<f32>) {
    let (engine, events) = start_engine(name);
    engine
        .apply_route(fixed_route(out, channels, rate))
        .expect("apply wav route");
    let id = engine.play(input).expect("play");
    events.wait_finished(id);
    engine.clear_route().expect("clear route");
    engine.shutdown(SHUTDOWN).expect("shutdown");
    assert!(errors(&events.all()).is_empty(), "{:?}", events.all());
    read_wav_f32(out)
}

/// A 5.1 file (L R C LFE Ls Rs), 24-bit, with a distinct constant level on every channel.
const LEVELS: [f32; 6] = [0.5, -0.25, 0.375, 0.9, 0.125, -0.0625];

fn write_five_one(path: &Path, rate: u32, frames: usize) {
    let full = f64::from(1i32 << 23);
    let samples: Vec<i32> = (0..frames)
        .flat_map(|_| LEVELS.iter().map(move |l| (f64::from(*l) * full) as i32))
        .collect();
    write_wav_int(path, rate, 6, 24, &samples);
}

/// BS.775: each side is its front, plus the centre and its surround at -3 dB; the LFE is
/// left out; normalised so the weights of a side sum to one.
fn bs775_stereo(frame: &[f32]) -> (f32, f32) {
    let k = std::f32::consts::FRAC_1_SQRT_2;
    let norm = 1.0 + 2.0 * k;
    let [l, r, c, _lfe, ls, rs] = frame else {
        panic!("a 5.1 frame")
    };
    ((l + k * c + k * ls) / norm, (r + k * c + k * rs) / norm)
}

#[test]
fn five_one_renders_to_a_stereo_wav_with_the_bs775_mix() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("surround.wav");
    let out = dir.path().join("stereo.wav");
    write_five_one(&input, 48_000, 4_800);
    let (spec, written) = render_fixed("fmt-51", &input, &out, Some(2), None);
    assert_eq!((spec.channels, spec.sample_rate), (2, 48_000));
    assert_eq!(written.len(), 4_800 * 2, "every frame, none added");
    let (want_l, want_r) = bs775_stereo(&LEVELS);
    for (i, frame) in written.chunks_exact(2).enumerate() {
        assert!(
            (frame[0] - want_l).abs() < 1e-6 && (frame[1] - want_r).abs() < 1e-6,
            "frame {i}: {frame:?}, want ({want_l}, {want_r})"
        );
    }
}

#[test]
fn mono_renders_to_both_sides_of_a_stereo_wav_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mono.wav");
    let out = dir.path().join("stereo.wav");
    let mono = mono_tone(44_100, 22_050, 1_000.0);
    write_wav_i16(&input, 44_100, 1, &mono);
    let (spec, written) = render_fixed("fmt-mono", &input, &out, Some(2), None);
    assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));
    assert_eq!(written.len(), mono.len() * 2);
    for (i, (frame, s)) in written.chunks_exact(2).zip(&mono).enumerate() {
        let s = i16_to_f32(*s);
        assert!(
            frame[0] == s && frame[1] == s,
            "frame {i}: {frame:?} vs {s}"
        );
    }
}

#[test]
fn a_48k_track_renders_to_44k1_with_the_same_duration_and_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("48k.wav");
    let out = dir.path().join("44k1.wav");
    // Two seconds of a 1 kHz tone, mono.
    let tone = mono_tone(48_000, 96_000, 1_000.0);
    write_wav_i16(&input, 48_000, 1, &tone);
    let (spec, written) = render_fixed("fmt-rate", &input, &out, None, Some(44_100));
    assert_eq!((spec.channels, spec.sample_rate), (1, 44_100));
    let frames = written.len() as i64;
    assert!(
        (frames - 88_200).abs() <= 1,
        "2 s at 44.1 kHz is 88 200 frames, got {frames}"
    );
    let freq = estimate_frequency(&written, 1, 0, 44_100);
    assert!((freq - 1_000.0).abs() < 5.0, "pitch kept: {freq} Hz");
}

#[test]
fn channels_and_rate_together_mix_then_resample() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("surround.wav");
    let out = dir.path().join("stereo44.wav");
    write_five_one(&input, 48_000, 48_000);
    let (spec, written) = render_fixed("fmt-both", &input, &out, Some(2), Some(44_100));
    assert_eq!((spec.channels, spec.sample_rate), (2, 44_100));
    let frames = written.len() / 2;
    assert!((frames as i64 - 44_100).abs() <= 1, "{frames} frames");
    // Away from the resampler's edges a constant stays the mixed constant.
    let (want_l, want_r) = bs775_stereo(&LEVELS);
    for frame in written[2 * 4_000..2 * 40_000].chunks_exact(2) {
        assert!(
            (frame[0] - want_l).abs() < 1e-3 && (frame[1] - want_r).abs() < 1e-3,
            "{frame:?}, want ({want_l}, {want_r})"
        );
    }
}

#[test]
fn a_fixed_format_out_of_range_is_refused_when_the_route_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.wav");
    let (engine, _events) = start_engine("fmt-bad");
    for (channels, rate, what) in [
        (Some(0), None, "channels"),
        (Some(9), None, "channels"),
        (None, Some(100), "sample_rate"),
        (None, Some(1_000_000), "sample_rate"),
    ] {
        let error = engine
            .apply_route(fixed_route(&out, channels, rate))
            .expect_err("refused")
            .to_string();
        assert!(error.contains(what), "{error}");
    }
    engine.shutdown(SHUTDOWN).expect("shutdown");
}
