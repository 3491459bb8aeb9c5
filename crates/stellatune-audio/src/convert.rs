//! Turning a track's native stream into the sink's spec: channel mapping, then rubato.

use rubato::{FftFixedIn, Resampler};

use stellatune_core::StreamSpec;

const RESAMPLER_CHUNK_FRAMES: usize = 1024;

/// Streaming converter from one spec to another. With equal rates it never touches the
/// samples beyond the channel map, which keeps same-rate gapless joins sample-exact.
pub struct Converter {
    from: StreamSpec,
    to: StreamSpec,
    resampler: Option<RateConverter>,
}

struct RateConverter {
    inner: FftFixedIn<f32>,
    /// Planar input waiting for a full chunk.
    pending: Vec<Vec<f32>>,
    /// Output frames still to drop: the resampler's own delay.
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
    ratio: f64,
}

impl Converter {
    pub fn new(from: StreamSpec, to: StreamSpec) -> Result<Self, String> {
        let resampler = if from.sample_rate != to.sample_rate {
            let inner = FftFixedIn::<f32>::new(
                from.sample_rate as usize,
                to.sample_rate as usize,
                RESAMPLER_CHUNK_FRAMES,
                2,
                usize::from(to.channels),
            )
            .map_err(|e| e.to_string())?;
            let delay_left = inner.output_delay();
            Some(RateConverter {
                inner,
                pending: vec![Vec::new(); usize::from(to.channels)],
                delay_left,
                frames_in: 0,
                frames_out: 0,
                ratio: f64::from(to.sample_rate) / f64::from(from.sample_rate),
            })
        } else {
            None
        };
        Ok(Self {
            from,
            to,
            resampler,
        })
    }

    /// True when the output is the input unchanged (same channels, no resampling).
    pub fn is_passthrough(&self) -> bool {
        self.resampler.is_none() && self.from.channels == self.to.channels
    }

    pub fn output_spec(&self) -> StreamSpec {
        self.to
    }

    /// Converts one block; the result may be empty while the resampler fills a chunk.
    pub fn process(&mut self, interleaved: &[f32]) -> Vec<f32> {
        let mapped = map_channels(interleaved, self.from.channels, self.to.channels);
        match &mut self.resampler {
            None => mapped,
            Some(rc) => rc.push(&mapped, usize::from(self.to.channels), false),
        }
    }

    /// Converts one block, appending the result to `out`: with nothing to convert it is a
    /// single copy.
    pub fn process_into(&mut self, interleaved: &[f32], out: &mut Vec<f32>) {
        if self.is_passthrough() {
            out.extend_from_slice(interleaved);
        } else {
            out.extend(self.process(interleaved));
        }
    }

    /// Drains what the resampler still holds at the end of a track.
    pub fn finish(&mut self) -> Vec<f32> {
        match &mut self.resampler {
            None => Vec::new(),
            Some(rc) => rc.push(&[], usize::from(self.to.channels), true),
        }
    }
}

impl RateConverter {
    fn push(&mut self, interleaved: &[f32], channels: usize, flush: bool) -> Vec<f32> {
        for frame in interleaved.chunks_exact(channels) {
            for (ch, s) in frame.iter().enumerate() {
                self.pending[ch].push(*s);
            }
        }
        self.frames_in += (interleaved.len() / channels) as u64;
        let mut out = Vec::new();
        loop {
            let need = self.inner.input_frames_next();
            let have = self.pending[0].len();
            let planar = if have >= need {
                let chunk: Vec<Vec<f32>> = self
                    .pending
                    .iter_mut()
                    .map(|ch| ch.drain(..need).collect())
                    .collect();
                self.inner.process(&chunk, None)
            } else if flush {
                let expected = (self.frames_in as f64 * self.ratio).round() as u64;
                if self.frames_out >= expected {
                    break;
                }
                let chunk: Vec<Vec<f32>> = self.pending.iter_mut().map(std::mem::take).collect();
                self.inner
                    .process_partial((!chunk[0].is_empty()).then_some(chunk.as_slice()), None)
            } else {
                break;
            };
            let Ok(planar) = planar else { break };
            self.emit(&planar, channels, flush, &mut out);
        }
        out
    }

    fn emit(&mut self, planar: &[Vec<f32>], channels: usize, flush: bool, out: &mut Vec<f32>) {
        let frames = planar.first().map_or(0, Vec::len);
        let expected = (self.frames_in as f64 * self.ratio).round() as u64;
        for i in 0..frames {
            if self.delay_left > 0 {
                self.delay_left -= 1;
                continue;
            }
            if flush && self.frames_out >= expected {
                break;
            }
            for ch in planar.iter().take(channels) {
                out.push(ch[i]);
            }
            self.frames_out += 1;
        }
    }
}

/// −3 dB, the ITU-R BS.775 weight of the centre and surround channels in a stereo downmix.
const MINUS_3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;

/// The channels of a layout, in the order decoders deliver them (WAVE/SMPTE order, which is
/// symphonia's for the standard layouts), by channel count: 3 = L R C, 4 = L R Ls Rs,
/// 5 = L R C Ls Rs, 6 = 5.1 (L R C LFE Ls Rs), 7 = 6.1 (L R C LFE Cs Ls Rs), 8 = 7.1
/// (L R C LFE Lb Rb Ls Rs). Each entry is the channel's (left, right) weight in a stereo
/// downmix before normalisation: fronts go to their side, the centre and a centre surround
/// to both at −3 dB, side and back surrounds to their side at −3 dB, the LFE nowhere.
fn stereo_weights(channels: usize) -> Option<&'static [(f32, f32)]> {
    const L: (f32, f32) = (1.0, 0.0);
    const R: (f32, f32) = (0.0, 1.0);
    const C: (f32, f32) = (MINUS_3DB, MINUS_3DB);
    const LFE: (f32, f32) = (0.0, 0.0);
    const LS: (f32, f32) = (MINUS_3DB, 0.0);
    const RS: (f32, f32) = (0.0, MINUS_3DB);
    Some(match channels {
        3 => &[L, R, C],
        4 => &[L, R, LS, RS],
        5 => &[L, R, C, LS, RS],
        6 => &[L, R, C, LFE, LS, RS],
        7 => &[L, R, C, LFE, C, LS, RS],
        8 => &[L, R, C, LFE, LS, RS, LS, RS],
        _ => return None,
    })
}

/// The stereo downmix matrix for `channels`, normalised so that each output's weights sum
/// to 1: a full-scale signal in every channel at once can never clip (5.1 → each side is
/// `(L + 0.707·C + 0.707·Ls) / 2.414`, 7.1 → `(L + 0.707·C + 0.707·Lb + 0.707·Ls) / 3.121`).
/// The price is level: a plain stereo mix inside a 5.1 file plays 7.7 dB quieter (9.9 dB for
/// 7.1) than the same mix in a stereo file. The LFE is dropped, as BS.775 leaves it out:
/// the main channels carry the full range.
pub fn downmix_matrix(channels: u16) -> Option<Vec<(f32, f32)>> {
    let weights = stereo_weights(usize::from(channels))?;
    let sum_l: f32 = weights.iter().map(|w| w.0).sum();
    let sum_r: f32 = weights.iter().map(|w| w.1).sum();
    Some(
        weights
            .iter()
            .map(|&(l, r)| (l / sum_l, r / sum_r))
            .collect(),
    )
}

/// Maps interleaved frames between channel counts:
/// - mono to any layout: the mono signal on the left and the right (both sides, unchanged in
///   level), every other channel silent;
/// - 3 to 8 channels (see [`downmix_matrix`]) to stereo: the ITU-R BS.775 downmix; to mono:
///   that downmix, averaged;
/// - stereo to mono: the average;
/// - anything else keeps the channels the layouts share and pads the rest with silence.
pub fn map_channels(interleaved: &[f32], from: u16, to: u16) -> Vec<f32> {
    let (from_n, to_n) = (usize::from(from), usize::from(to));
    if from_n == to_n {
        return interleaved.to_vec();
    }
    let frames = interleaved.len() / from_n;
    let mut out = Vec::with_capacity(frames * to_n);
    let matrix = if to_n <= 2 {
        downmix_matrix(from)
    } else {
        None
    };
    for frame in interleaved.chunks_exact(from_n) {
        match (from_n, to_n, &matrix) {
            (1, _, _) => {
                out.push(frame[0]);
                out.push(frame[0]);
                out.extend(std::iter::repeat_n(0.0, to_n.saturating_sub(2)));
            }
            (_, _, Some(m)) => {
                let (l, r) = frame
                    .iter()
                    .zip(m)
                    .fold((0.0f32, 0.0f32), |(l, r), (s, w)| {
                        (l + s * w.0, r + s * w.1)
                    });
                if to_n == 2 {
                    out.extend([l, r]);
                } else {
                    out.push((l + r) / 2.0);
                }
            }
            (_, 1, None) => out.push(frame.iter().sum::<f32>() / from_n as f32),
            _ => {
                for ch in 0..to_n {
                    out.push(frame.get(ch).copied().unwrap_or(0.0));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_rate_is_bit_exact() {
        let mut c = Converter::new(StreamSpec::new(44_100, 2), StreamSpec::new(44_100, 2)).unwrap();
        let input: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.001).sin()).collect();
        assert_eq!(c.process(&input), input);
        assert!(c.finish().is_empty());
    }

    #[test]
    fn resampling_keeps_duration_and_tone() {
        let from = StreamSpec::new(48_000, 1);
        let to = StreamSpec::new(44_100, 1);
        let mut c = Converter::new(from, to).unwrap();
        let tone: Vec<f32> = (0..48_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 48_000.0).sin() * 0.5)
            .collect();
        let mut out = Vec::new();
        for block in tone.chunks(777) {
            out.extend(c.process(block));
        }
        out.extend(c.finish());
        assert_eq!(out.len(), 44_100, "one second in, one second out");
        // After the resampler's delay is trimmed the output stays in phase with the input.
        let expected =
            |i: usize| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin() * 0.5;
        let max_err = (2000..40_000)
            .map(|i| (out[i] - expected(i)).abs())
            .fold(0.0f32, f32::max);
        assert!(max_err < 0.01, "max error {max_err}");
    }

    #[test]
    fn channel_maps() {
        assert_eq!(map_channels(&[0.5, -0.5], 1, 2), vec![0.5, 0.5, -0.5, -0.5]);
        assert_eq!(map_channels(&[1.0, 0.0], 2, 1), vec![0.5]);
        // Mono into 5.1: both front sides, the rest silent.
        assert_eq!(
            map_channels(&[0.25], 1, 6),
            vec![0.25, 0.25, 0.0, 0.0, 0.0, 0.0]
        );
        // Stereo into 5.1: the fronts, the rest silent.
        assert_eq!(
            map_channels(&[0.1, 0.2], 2, 6),
            vec![0.1, 0.2, 0.0, 0.0, 0.0, 0.0]
        );
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() < 1e-6
    }

    /// One channel at a time, at 1.0: what reaches each side is that channel's coefficient.
    fn response(channels: u16, ch: usize) -> (f32, f32) {
        let mut frame = vec![0.0; usize::from(channels)];
        frame[ch] = 1.0;
        let out = map_channels(&frame, channels, 2);
        (out[0], out[1])
    }

    #[test]
    fn five_one_to_stereo_uses_bs775_coefficients() {
        let norm = 1.0 + 2.0 * MINUS_3DB; // 2.414
        let expect = [
            (1.0 / norm, 0.0),                    // L
            (0.0, 1.0 / norm),                    // R
            (MINUS_3DB / norm, MINUS_3DB / norm), // C
            (0.0, 0.0),                           // LFE: dropped
            (MINUS_3DB / norm, 0.0),              // Ls
            (0.0, MINUS_3DB / norm),              // Rs
        ];
        for (ch, want) in expect.iter().enumerate() {
            let got = response(6, ch);
            assert!(
                close(got.0, want.0) && close(got.1, want.1),
                "5.1 channel {ch}: {got:?}, want {want:?}"
            );
        }
        // The centre and a surround are not lost (they were before).
        assert!(response(6, 2).0 > 0.29 && response(6, 4).0 > 0.29);
        // All channels at full scale: no clipping.
        let out = map_channels(&[1.0; 6], 6, 2);
        assert!(close(out[0], 1.0) && close(out[1], 1.0), "{out:?}");
    }

    #[test]
    fn seven_one_to_stereo_uses_bs775_coefficients() {
        let norm = 1.0 + 3.0 * MINUS_3DB; // 3.121
        let expect = [
            (1.0 / norm, 0.0),
            (0.0, 1.0 / norm),
            (MINUS_3DB / norm, MINUS_3DB / norm),
            (0.0, 0.0),
            (MINUS_3DB / norm, 0.0), // Lb
            (0.0, MINUS_3DB / norm), // Rb
            (MINUS_3DB / norm, 0.0), // Ls
            (0.0, MINUS_3DB / norm), // Rs
        ];
        for (ch, want) in expect.iter().enumerate() {
            let got = response(8, ch);
            assert!(
                close(got.0, want.0) && close(got.1, want.1),
                "7.1 channel {ch}: {got:?}, want {want:?}"
            );
        }
        let out = map_channels(&[-1.0; 8], 8, 2);
        assert!(close(out[0], -1.0) && close(out[1], -1.0), "{out:?}");
    }

    #[test]
    fn every_downmix_row_sums_to_one_and_keeps_a_mixed_frame_in_range() {
        for channels in 3..=8u16 {
            let m = downmix_matrix(channels).unwrap();
            assert_eq!(m.len(), usize::from(channels));
            let l: f32 = m.iter().map(|w| w.0).sum();
            let r: f32 = m.iter().map(|w| w.1).sum();
            assert!(close(l, 1.0) && close(r, 1.0), "{channels}: {l} {r}");
            // Left-only and right-only content stay on their side.
            assert_eq!(m[0].1, 0.0);
            assert_eq!(m[1].0, 0.0);
        }
        assert!(downmix_matrix(2).is_none() && downmix_matrix(9).is_none());
        // A 5.1 frame of mixed content, two frames: the mix is the weighted sum.
        let frames = [0.5, -0.5, 0.2, 0.9, 0.1, -0.1, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let out = map_channels(&frames, 6, 2);
        let norm = 1.0 + 2.0 * MINUS_3DB;
        let l = (0.5 + MINUS_3DB * 0.2 + MINUS_3DB * 0.1) / norm;
        let r = (-0.5 + MINUS_3DB * 0.2 - MINUS_3DB * 0.1) / norm;
        assert!(close(out[0], l) && close(out[1], r), "{out:?}");
        assert_eq!(&out[2..], &[0.0, 0.0], "the LFE alone is silent");
        // 5.1 to mono: the stereo downmix, averaged.
        let mono = map_channels(&frames[..6], 6, 1);
        assert!(close(mono[0], (l + r) / 2.0));
    }
}
