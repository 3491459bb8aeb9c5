//! Every format the build decodes by default, decoded by `TrackSource` from fixtures that
//! ffmpeg makes from a synthetic tone (see `stellatune_test_support::ffmpeg` for when these
//! are skipped): lossless formats must give back every input sample exactly; lossy ones the
//! same duration (within one codec frame) and the same signal (correlation with the input).

use std::path::{Path, PathBuf};

use stellatune_audio::TrackSource;
use stellatune_test_support::ffmpeg::{Ffmpeg, ffmpeg};
use stellatune_test_support::tone::{RATE, int_to_f32, multichannel_tones, write_wav_int};

/// Decodes the whole file: (sample rate, channels, interleaved samples, codec name).
fn decode(path: &Path) -> (u32, u16, Vec<f32>, String) {
    let mut source =
        TrackSource::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let info = source.info().clone();
    let mut samples = Vec::new();
    while let Some(block) = source
        .next_block()
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
    {
        samples.extend(block);
    }
    (info.sample_rate, info.channels, samples, info.codec)
}

struct Fixture {
    _dir: tempfile::TempDir,
    wav: PathBuf,
    samples: Vec<i32>,
    frames: usize,
}

/// A WAV of 1.5 s (plus an odd remainder, so no codec frame size divides it) of
/// distinct tones per channel.
fn source_wav(channels: u16, bits: u16) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let frames = RATE as usize * 3 / 2 + 321;
    let samples = multichannel_tones(frames, channels, bits);
    let wav = dir.path().join(format!("in-{channels}ch-{bits}.wav"));
    write_wav_int(&wav, RATE, channels, bits, &samples);
    Fixture {
        _dir: dir,
        wav,
        samples,
        frames,
    }
}

/// Encodes a tone of `channels` x `bits` with `codec` into `name` and checks that decoding
/// gives back every sample exactly; returns the codec name symphonia reported.
fn lossless(ff: &Ffmpeg, name: &str, channels: u16, bits: u16, codec: &[&str]) -> String {
    let fx = source_wav(channels, bits);
    let encoded = fx.wav.with_file_name(name);
    ff.encode(&fx.wav, &encoded, codec);
    let (rate, got_channels, decoded, codec_name) = decode(&encoded);
    let what = format!("{name} ({channels} ch, {bits}-bit, {codec_name})");
    assert_eq!((rate, got_channels), (RATE, channels), "{what}");
    assert_eq!(
        decoded.len() / usize::from(channels),
        fx.frames,
        "{what}: frame count"
    );
    let expected: Vec<f32> = fx.samples.iter().map(|&s| int_to_f32(s, bits)).collect();
    if let Some(i) = (0..expected.len()).find(|&i| decoded[i] != expected[i]) {
        panic!(
            "{what}: sample {i} (frame {}, channel {}) is {} instead of {}",
            i / usize::from(channels),
            i % usize::from(channels),
            decoded[i],
            expected[i]
        );
    }
    codec_name
}

#[test]
fn alac_in_m4a_is_sample_exact() {
    let Some(ff) = ffmpeg("alac_in_m4a_is_sample_exact") else {
        return;
    };
    for (channels, bits, fmt) in [
        (2, 16, "s16p"),
        (1, 16, "s16p"),
        (2, 24, "s32p"),
        (6, 16, "s16p"),
    ] {
        let codec = lossless(
            &ff,
            &format!("alac-{channels}-{bits}.m4a"),
            channels,
            bits,
            &["-c:a", "alac", "-sample_fmt", fmt],
        );
        assert_eq!(codec, "alac");
    }
}

#[test]
fn aiff_is_sample_exact() {
    let Some(ff) = ffmpeg("aiff_is_sample_exact") else {
        return;
    };
    for (channels, bits, codec) in [
        (2, 16, "pcm_s16be"),
        (1, 16, "pcm_s16be"),
        (2, 24, "pcm_s24be"),
        (6, 24, "pcm_s24be"),
    ] {
        lossless(
            &ff,
            &format!("tone-{channels}-{bits}.aiff"),
            channels,
            bits,
            &["-c:a", codec],
        );
    }
}

#[test]
fn flac_and_wav_from_ffmpeg_are_sample_exact() {
    let Some(ff) = ffmpeg("flac_and_wav_from_ffmpeg_are_sample_exact") else {
        return;
    };
    for (channels, bits, fmt) in [(2, 16, "s16"), (6, 24, "s32"), (1, 16, "s16")] {
        let codec = lossless(
            &ff,
            &format!("tone-{channels}-{bits}.flac"),
            channels,
            bits,
            &["-c:a", "flac", "-sample_fmt", fmt],
        );
        assert_eq!(codec, "flac");
    }
    for (channels, bits, codec) in [(2, 16, "pcm_s16le"), (6, 24, "pcm_s24le")] {
        lossless(
            &ff,
            &format!("tone-{channels}-{bits}.wav"),
            channels,
            bits,
            &["-c:a", codec],
        );
    }
}

/// Pearson correlation of two equally long signals.
fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let mean = |x: &[f32]| x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (ma, mb) = (mean(a), mean(b));
    let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x) - ma, f64::from(y) - mb);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa * bb).sqrt()
}

/// One channel of an interleaved signal.
fn channel(interleaved: &[f32], channels: u16, c: u16) -> Vec<f32> {
    interleaved
        .iter()
        .skip(usize::from(c))
        .step_by(usize::from(channels))
        .copied()
        .collect()
}

/// Encodes a 16-bit tone with a lossy `codec` and checks the decode: same rate and channels,
/// the frame count within `frame_tolerance` of the input, and every channel correlated with
/// its input channel above `min_correlation` (over the middle of the file, so the codec's
/// start-up and end are left out).
fn lossy(
    ff: &Ffmpeg,
    name: &str,
    channels: u16,
    codec: &[&str],
    frame_tolerance: usize,
    min_correlation: f64,
) -> String {
    let fx = source_wav(channels, 16);
    let encoded = fx.wav.with_file_name(name);
    ff.encode(&fx.wav, &encoded, codec);
    let (rate, got_channels, decoded, codec_name) = decode(&encoded);
    let what = format!("{name} ({channels} ch, {codec_name})");
    assert_eq!((rate, got_channels), (RATE, channels), "{what}");
    let frames = decoded.len() / usize::from(channels);
    assert!(
        frames.abs_diff(fx.frames) <= frame_tolerance,
        "{what}: decoded {frames} frames of {} (tolerance {frame_tolerance})",
        fx.frames
    );
    let expected: Vec<f32> = fx.samples.iter().map(|&s| int_to_f32(s, 16)).collect();
    let (from, to) = (4410, fx.frames.min(frames) - 4410);
    for c in 0..channels {
        let got = channel(&decoded, channels, c);
        let want = channel(&expected, channels, c);
        let r = correlation(&got[from..to], &want[from..to]);
        assert!(
            r >= min_correlation,
            "{what}: channel {c} correlates {r:.5} with its input (at least {min_correlation})"
        );
    }
    codec_name
}

#[test]
fn aac_lc_in_m4a_decodes() {
    let Some(ff) = ffmpeg("aac_lc_in_m4a_decodes") else {
        return;
    };
    for channels in [2, 1] {
        let codec = lossy(
            &ff,
            &format!("aac-{channels}.m4a"),
            channels,
            &["-c:a", "aac", "-b:a", "192k"],
            // The edit list trims the priming and padding; its duration is in the movie
            // timescale (ms for ffmpeg), so one millisecond of frames is the tolerance.
            RATE as usize / 1000 + 1,
            0.99,
        );
        assert_eq!(codec, "aac");
    }
}

#[test]
fn ima_and_ms_adpcm_in_wav_decode() {
    let Some(ff) = ffmpeg("ima_and_ms_adpcm_in_wav_decode") else {
        return;
    };
    for (codec, name) in [("adpcm_ima_wav", "ima"), ("adpcm_ms", "ms")] {
        for channels in [2, 1] {
            lossy(
                &ff,
                &format!("{name}-{channels}.wav"),
                channels,
                &["-c:a", codec],
                // ADPCM blocks are a few hundred to ~2000 frames; the last one is padded.
                2048,
                0.99,
            );
        }
    }
}

#[test]
fn mp3_and_vorbis_from_ffmpeg_decode() {
    let Some(ff) = ffmpeg("mp3_and_vorbis_from_ffmpeg_decode") else {
        return;
    };
    // MP3: the LAME tag states delay and padding, so the count is exact up to one frame.
    let codec = lossy(
        &ff,
        "tone.mp3",
        2,
        &["-c:a", "libmp3lame", "-b:a", "192k"],
        1152,
        0.99,
    );
    assert_eq!(codec, "mp3");
    let codec = lossy(
        &ff,
        "tone.ogg",
        2,
        &["-c:a", "libvorbis", "-q:a", "5"],
        1024,
        0.99,
    );
    assert_eq!(codec, "vorbis");
}

/// A seek in an AAC track counts from the track's first frame, not from the priming: what
/// follows a seek to 500 ms is the input from 500 ms on.
#[test]
fn aac_seek_lands_on_the_track_position() {
    let Some(ff) = ffmpeg("aac_seek_lands_on_the_track_position") else {
        return;
    };
    let fx = source_wav(1, 16);
    let encoded = fx.wav.with_file_name("seek.m4a");
    ff.encode(&fx.wav, &encoded, &["-c:a", "aac", "-b:a", "192k"]);
    let mut source = TrackSource::open(&encoded).unwrap();
    let total = source
        .info()
        .total_frames
        .expect("the edit list states the length");
    assert!(
        total.abs_diff(fx.frames as u64) <= 45,
        "{total} of {}",
        fx.frames
    );
    source.seek(500).unwrap();
    let mut after = Vec::new();
    while let Some(block) = source.next_block().unwrap() {
        after.extend(block);
    }
    let target = RATE as usize / 2;
    assert!(
        after.len().abs_diff(fx.frames - target) <= 45,
        "{} frames after the seek, {} expected",
        after.len(),
        fx.frames - target
    );
    let want: Vec<f32> = fx.samples[target..]
        .iter()
        .map(|&s| int_to_f32(s, 16))
        .collect();
    let n = 20_000;
    let r = correlation(&after[..n], &want[..n]);
    assert!(
        r > 0.99,
        "the audio after the seek correlates {r:.4} with the input there"
    );
    // Past the end is the end.
    source.seek(60_000).unwrap();
    assert_eq!(source.next_block().unwrap(), None);
}

/// 16-bit WAV is converted straight from its packets (not through symphonia's decoder): every
/// sample, full scale included, must come out as symphonia's conversion gives it, for any
/// channel count, from the start and from wherever a seek lands.
#[test]
fn wav_16_bit_is_sample_exact_from_the_start_and_after_a_seek() {
    for channels in [1u16, 2, 6] {
        let dir = tempfile::tempdir().expect("temp dir");
        let wav = dir.path().join(format!("extremes-{channels}.wav"));
        let frames = RATE as usize * 2;
        let mut samples = multichannel_tones(frames, channels, 16);
        // Full scale both ways, and zero, in every channel.
        for (i, s) in samples
            .iter_mut()
            .take(3 * usize::from(channels))
            .enumerate()
        {
            *s = [i32::from(i16::MIN), i32::from(i16::MAX), 0][i / usize::from(channels)];
        }
        write_wav_int(&wav, RATE, channels, 16, &samples);
        let expected: Vec<f32> = samples.iter().map(|&s| int_to_f32(s, 16)).collect();

        let (_, got_channels, decoded, codec) = decode(&wav);
        assert_eq!(got_channels, channels);
        assert!(
            decoded == expected,
            "{channels} ch ({codec}): samples differ"
        );

        let mut source = TrackSource::open(&wav).expect("open");
        source.seek(1_250).expect("seek");
        let mut after = Vec::new();
        while let Some(block) = source.next_block().expect("decode") {
            after.extend(block);
        }
        let from = RATE as usize * 1_250 / 1_000 * usize::from(channels);
        assert!(
            after == expected[from..],
            "{channels} ch: after a seek to 1.25 s the samples differ ({} vs {})",
            after.len(),
            expected.len() - from
        );
    }
}
