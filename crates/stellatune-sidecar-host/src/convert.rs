//! Sample formats a device can be opened in, and the conversion of the ring's f32 into them.
//!
//! Integer formats use the usual full-scale convention: `x` becomes `x * 2^(bits-1)`, so -1.0 is
//! the most negative code and +1.0 clamps to the most positive one (one step short of it).
//! Everything out of range clamps; nothing wraps. Reductions to 16 and 24 bits add TPDF dither
//! (triangular, ±1 LSB), which turns the rounding error into signal-independent noise instead of
//! distortion that follows the signal (audible on quiet fades). f32 passes through unchanged:
//! float devices have headroom, and the WAV device promises exactly what was played.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The sample formats of the sidecar's devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleFormat {
    I16,
    /// 24-bit integer, carried in an i32 whose top byte is the sign extension.
    I24,
    I32,
    F32,
}

impl SampleFormat {
    /// Every format, in the order of preference for opening a device.
    pub const ALL: [SampleFormat; 4] = [
        SampleFormat::F32,
        SampleFormat::I32,
        SampleFormat::I24,
        SampleFormat::I16,
    ];

    /// The name used in device ids (`wav[i16]:PATH`).
    pub fn name(self) -> &'static str {
        match self {
            SampleFormat::I16 => "i16",
            SampleFormat::I24 => "i24",
            SampleFormat::I32 => "i32",
            SampleFormat::F32 => "f32",
        }
    }

    pub fn from_name(name: &str) -> Option<SampleFormat> {
        SampleFormat::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn bits(self) -> u16 {
        match self {
            SampleFormat::I16 => 16,
            SampleFormat::I24 => 24,
            SampleFormat::I32 | SampleFormat::F32 => 32,
        }
    }

    pub fn is_float(self) -> bool {
        self == SampleFormat::F32
    }

    /// The format to open a device in among those it offers: f32 when offered (the ring's own
    /// format: no conversion at all), else the widest integer format (the least quantisation).
    #[cfg(any(feature = "cpal", test))]
    pub fn preferred(offered: impl IntoIterator<Item = SampleFormat>) -> Option<SampleFormat> {
        let offered: Vec<SampleFormat> = offered.into_iter().collect();
        SampleFormat::ALL.into_iter().find(|f| offered.contains(f))
    }
}

impl fmt::Display for SampleFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Distinguishes the dither sequences of streams opened in the same process.
static NEXT_DITHER_SEED: AtomicU64 = AtomicU64::new(0x5EED_D17E_4A11_0001);

/// TPDF dither from a per-stream xorshift64* generator: statistical quality far beyond what
/// audible noise needs, a few cycles per sample, and no locking or allocation, so it can run in
/// a device callback.
pub struct TpdfDither {
    state: u64,
}

impl TpdfDither {
    /// A generator with a seed of its own, different from every other one in this process.
    pub fn new() -> TpdfDither {
        TpdfDither::with_seed(NEXT_DITHER_SEED.fetch_add(1, Ordering::Relaxed))
    }

    pub fn with_seed(seed: u64) -> TpdfDither {
        // splitmix64 of the seed: neighbouring seeds give unrelated states, and the state is
        // never 0 (the one state xorshift cannot leave).
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        TpdfDither {
            state: if z == 0 { 1 } else { z },
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform on [0, 1) from the generator's high bits (its strongest ones).
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// One dither value in LSBs: the difference of two uniforms, triangular on (-1, 1) with
    /// mean 0.
    pub fn next_lsb(&mut self) -> f64 {
        self.uniform() - self.uniform()
    }
}

impl Default for TpdfDither {
    fn default() -> Self {
        TpdfDither::new()
    }
}

/// Scales to a `bits`-bit integer with dither, rounds and clamps. Computed in f64: at 24 bits
/// an f32 has no fraction bits left for the dither to act on.
fn dithered(sample: f32, bits: u32, dither: &mut TpdfDither) -> i32 {
    let full_scale = (1i64 << (bits - 1)) as f64;
    let value = (f64::from(sample) * full_scale + dither.next_lsb()).round();
    // `as` maps NaN to 0; the clamp keeps everything else in range.
    value.clamp(-full_scale, full_scale - 1.0) as i32
}

/// f32 to 16-bit, dithered.
pub fn to_i16(sample: f32, dither: &mut TpdfDither) -> i16 {
    // The clamp in `dithered` keeps the value within i16.
    dithered(sample, 16, dither) as i16
}

/// f32 to 24-bit (in an i32), dithered.
pub fn to_i24(sample: f32, dither: &mut TpdfDither) -> i32 {
    dithered(sample, 24, dither)
}

/// f32 to 32-bit, rounded and clamped, without dither. An f32 holds 24 significant bits, so at
/// 32 bits the rounding error (at most 2^-32 of full scale, about -193 dB) is far below the
/// precision the source already has and below the analog noise of any converter, which
/// decorrelates it the way dither would; dither there would only add noise.
pub fn to_i32(sample: f32) -> i32 {
    let full_scale = 2_147_483_648.0_f64;
    (f64::from(sample) * full_scale)
        .round()
        .clamp(-full_scale, full_scale - 1.0) as i32
}

/// A sample type a device callback can be filled with, converted from the ring's f32. Its
/// `Default` is silence.
pub trait DeviceSample: Copy + Default + Send + 'static {
    fn from_f32(sample: f32, dither: &mut TpdfDither) -> Self;
}

impl DeviceSample for f32 {
    fn from_f32(sample: f32, _: &mut TpdfDither) -> f32 {
        sample
    }
}

impl DeviceSample for i16 {
    fn from_f32(sample: f32, dither: &mut TpdfDither) -> i16 {
        to_i16(sample, dither)
    }
}

/// i32 is the full 32-bit format; 24-bit samples also travel in i32 but are made by [`to_i24`].
impl DeviceSample for i32 {
    fn from_f32(sample: f32, _: &mut TpdfDither) -> i32 {
        to_i32(sample)
    }
}

/// Converts `src` into the same-length `dst`.
#[cfg(any(feature = "cpal", test))]
pub fn convert<T: DeviceSample>(src: &[f32], dst: &mut [T], dither: &mut TpdfDither) {
    debug_assert_eq!(src.len(), dst.len());
    for (out, &sample) in dst.iter_mut().zip(src) {
        *out = T::from_f32(sample, dither);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 200_000;

    #[test]
    fn full_scale_and_beyond_clamps_instead_of_wrapping() {
        let mut d = TpdfDither::with_seed(1);
        for _ in 0..1000 {
            assert_eq!(to_i16(1.0, &mut d), i16::MAX);
            assert_eq!(to_i16(1.5, &mut d), i16::MAX);
            assert_eq!(to_i16(f32::INFINITY, &mut d), i16::MAX);
            assert_eq!(to_i16(-1.5, &mut d), i16::MIN);
            assert_eq!(to_i16(f32::NEG_INFINITY, &mut d), i16::MIN);
            // -1.0 is exactly representable; the dither may lift it by one step at most.
            assert!(to_i16(-1.0, &mut d) <= i16::MIN + 1);

            assert_eq!(to_i24(1.0, &mut d), (1 << 23) - 1);
            assert_eq!(to_i24(7.0, &mut d), (1 << 23) - 1);
            assert_eq!(to_i24(-7.0, &mut d), -(1 << 23));
            assert!(to_i24(-1.0, &mut d) <= -(1 << 23) + 1);
        }
        assert_eq!(to_i32(1.0), i32::MAX);
        assert_eq!(to_i32(2.0), i32::MAX);
        assert_eq!(to_i32(-1.0), i32::MIN);
        assert_eq!(to_i32(-2.0), i32::MIN);
        assert_eq!(to_i32(f32::INFINITY), i32::MAX);
    }

    #[test]
    fn nan_becomes_silence() {
        let mut d = TpdfDither::with_seed(2);
        assert_eq!(to_i16(f32::NAN, &mut d), 0);
        assert_eq!(to_i24(f32::NAN, &mut d), 0);
        assert_eq!(to_i32(f32::NAN), 0);
    }

    #[test]
    fn zero_stays_within_one_lsb_and_is_not_always_zero() {
        let mut d = TpdfDither::with_seed(3);
        let mut nonzero = 0;
        for _ in 0..N {
            let a = to_i16(0.0, &mut d);
            let b = to_i24(0.0, &mut d);
            assert!((-1..=1).contains(&a), "{a}");
            assert!((-1..=1).contains(&b), "{b}");
            nonzero += usize::from(a != 0);
        }
        // Rounding 0 + TPDF(±1) leaves 0 with probability 3/4.
        let share = nonzero as f64 / N as f64;
        assert!((0.23..0.27).contains(&share), "{share}");
        assert_eq!(to_i32(0.0), 0);
        assert_eq!(to_i32(-0.0), 0);
    }

    #[test]
    fn dither_is_triangular_within_one_lsb_with_zero_mean() {
        let mut d = TpdfDither::with_seed(4);
        let values: Vec<f64> = (0..N).map(|_| d.next_lsb()).collect();
        let peak = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let mean = values.iter().sum::<f64>() / N as f64;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / N as f64;
        assert!(peak < 1.0, "peak {peak}");
        assert!(peak > 0.95, "peak {peak}: the tails are missing");
        assert!(mean.abs() < 0.01, "mean {mean}");
        // Triangular on (-1, 1): variance 1/6 (uniform ±1 would be 1/3, uniform ±0.5 1/12).
        assert!((variance - 1.0 / 6.0).abs() < 0.005, "variance {variance}");
        // And the shape: |x| < 0.5 holds 3/4 of a triangle, 1/2 of a uniform ±1.
        let inner = values.iter().filter(|v| v.abs() < 0.5).count() as f64 / N as f64;
        assert!((inner - 0.75).abs() < 0.01, "inner share {inner}");
    }

    #[test]
    fn quantisation_error_is_unbiased_and_bounded() {
        // A slow ramp through many off-grid values: the error of dithered rounding stays below
        // 1.5 LSB (1 of dither + 0.5 of rounding) and averages to zero.
        let mut d = TpdfDither::with_seed(5);
        for (bits, quantize) in [
            (
                16,
                (|x, d| i32::from(to_i16(x, d))) as fn(f32, &mut TpdfDither) -> i32,
            ),
            (24, to_i24 as fn(f32, &mut TpdfDither) -> i32),
        ] {
            let lsb = 1.0 / f64::from(1u32 << (bits - 1));
            let mut sum = 0.0;
            let mut peak = 0.0f64;
            for i in 0..N {
                let x = (i as f32 / N as f32 - 0.5) * 0.9;
                let err = (f64::from(quantize(x, &mut d)) * lsb - f64::from(x)) / lsb;
                sum += err;
                peak = peak.max(err.abs());
            }
            let mean = sum / N as f64;
            assert!(peak < 1.5, "{bits} bits: peak error {peak} LSB");
            assert!(mean.abs() < 0.01, "{bits} bits: mean error {mean} LSB");
        }
    }

    #[test]
    fn a_constant_between_steps_averages_to_its_true_value() {
        // Without dither 0.3 LSB would always round to 0; with it the average tells it apart.
        let mut d = TpdfDither::with_seed(6);
        let x = 0.3 / 32768.0;
        let mean = (0..N).map(|_| f64::from(to_i16(x, &mut d))).sum::<f64>() / N as f64;
        assert!((mean - 0.3).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn i32_rounds_to_nearest() {
        assert_eq!(to_i32(0.5), 1 << 30);
        assert_eq!(to_i32(-0.25), -(1 << 29));
        let tiny = 1.5 / 2_147_483_648.0;
        assert_eq!(to_i32(tiny), 2);
        assert_eq!(to_i32(-tiny), -2);
    }

    #[test]
    fn streams_get_different_dither() {
        let mut a = TpdfDither::new();
        let mut b = TpdfDither::new();
        let same = (0..64).filter(|_| a.next_lsb() == b.next_lsb()).count();
        assert_eq!(same, 0);
    }

    #[test]
    fn convert_fills_device_buffers() {
        let src = [0.0, 0.5, -0.5, 1.0];
        let mut d = TpdfDither::with_seed(7);
        let mut f = [9.0f32; 4];
        convert(&src, &mut f, &mut d);
        assert_eq!(f, src);
        let mut i = [9i32; 4];
        convert(&src, &mut i, &mut d);
        assert_eq!(i, [0, 1 << 30, -(1 << 30), i32::MAX]);
        let mut s = [9i16; 4];
        convert(&src, &mut s, &mut d);
        for (got, want) in s.iter().zip([0i32, 16384, -16384, 32767]) {
            assert!((i32::from(*got) - want).abs() <= 1, "{got} vs {want}");
        }
    }

    #[test]
    fn names_and_preference() {
        for f in SampleFormat::ALL {
            assert_eq!(SampleFormat::from_name(f.name()), Some(f));
        }
        assert_eq!(SampleFormat::from_name("i8"), None);
        use SampleFormat::*;
        assert_eq!(SampleFormat::preferred([I16, F32, I32]), Some(F32));
        assert_eq!(SampleFormat::preferred([I16, I32]), Some(I32));
        assert_eq!(SampleFormat::preferred([I16, I24]), Some(I24));
        assert_eq!(SampleFormat::preferred([I16]), Some(I16));
        assert_eq!(SampleFormat::preferred([]), None);
        assert_eq!(
            [I16, I24, I32, F32].map(SampleFormat::bits),
            [16, 24, 32, 32]
        );
    }
}
