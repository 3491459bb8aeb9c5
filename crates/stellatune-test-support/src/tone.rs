//! Generated WAV fixtures. The standard test tone is a 440 Hz sine on both channels of 16-bit
//! stereo at 44.1 kHz: real, decodable audio whose length is exact, so a test can count the
//! frames that come out the other end.

use std::f32::consts::TAU;
use std::path::Path;

/// The sample rate of the generated tones.
pub const RATE: u32 = 44_100;
/// The peak of the standard tone, in 16-bit steps: well below full scale, so that a gain of
/// two does not clip.
pub const TONE_PEAK: f32 = 8000.0;

/// Writes interleaved 16-bit PCM.
pub fn write_wav_i16(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("create test wav {}: {e}", path.display()));
    for s in samples {
        w.write_sample(*s).expect("write test wav");
    }
    w.finalize().expect("finalize test wav");
}

/// Interleaved stereo 16-bit sine tones at [`RATE`]: `left` and `right` are (frequency in Hz,
/// peak in 16-bit steps).
pub fn stereo_sines(seconds: f32, left: (f32, f32), right: (f32, f32)) -> Vec<i16> {
    let frames = (seconds * RATE as f32) as u32;
    let mut out = Vec::with_capacity(frames as usize * 2);
    for i in 0..frames {
        for (hz, peak) in [left, right] {
            out.push(((i as f32 * hz * TAU / RATE as f32).sin() * peak) as i16);
        }
    }
    out
}

/// Writes the standard test tone: `seconds` of 440 Hz on both channels, 16-bit stereo at
/// 44.1 kHz.
pub fn write_tone(path: &Path, seconds: f32) {
    let tone = (440.0, TONE_PEAK);
    write_wav_i16(path, RATE, 2, &stereo_sines(seconds, tone, tone));
}

/// Writes a tone that tells the channels apart (440 Hz left, 660 Hz right) and returns its
/// samples as f32, exactly as a decoder reads them back, for bit-exact comparisons.
pub fn write_two_tone(path: &Path, seconds: f32) -> Vec<f32> {
    let samples = stereo_sines(seconds, (440.0, 9000.0), (660.0, 7000.0));
    write_wav_i16(path, RATE, 2, &samples);
    samples.iter().map(|&s| i16_to_f32(s)).collect()
}

/// i16 -> f32 exactly as the decoder (symphonia) converts it.
pub fn i16_to_f32(s: i16) -> f32 {
    f32::from(s) / 32768.0
}

/// Writes interleaved integer PCM of `bits` (8 to 32) per sample; `samples` hold values in
/// that range.
pub fn write_wav_int(path: &Path, rate: u32, channels: u16, bits: u16, samples: &[i32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .unwrap_or_else(|e| panic!("create test wav {}: {e}", path.display()));
    for s in samples {
        w.write_sample(*s).expect("write test wav");
    }
    w.finalize().expect("finalize test wav");
}

/// `frames` of interleaved `channels`-channel integer samples of `bits` at [`RATE`]: on
/// channel `c` a sine of 300 + 110·c Hz at 0.6 of full scale plus a small offset that keeps
/// the low bits busy, so every channel is told apart and a lost bit shows.
pub fn multichannel_tones(frames: usize, channels: u16, bits: u16) -> Vec<i32> {
    let full = f64::from((1u32 << (bits - 1)) - 1);
    let mut out = Vec::with_capacity(frames * usize::from(channels));
    for n in 0..frames {
        let t = n as f64 / f64::from(RATE);
        for c in 0..channels {
            let hz = 300.0 + 110.0 * f64::from(c);
            let s = 0.6 * (std::f64::consts::TAU * hz * t).sin();
            out.push((s * full).round() as i32 | 1);
        }
    }
    out
}

/// An integer sample of `bits` as f32, exactly as symphonia converts it.
pub fn int_to_f32(s: i32, bits: u16) -> f32 {
    (f64::from(s) / f64::from(1u32 << (bits - 1))) as f32
}
