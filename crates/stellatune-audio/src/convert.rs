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
        if self.resampler.is_none() && self.from.channels == self.to.channels {
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

/// Maps interleaved frames between channel counts: mono is spread, stereo to mono averages,
/// other layouts keep the channels they share and pad the rest with silence.
pub fn map_channels(interleaved: &[f32], from: u16, to: u16) -> Vec<f32> {
    let (from, to) = (usize::from(from), usize::from(to));
    if from == to {
        return interleaved.to_vec();
    }
    let frames = interleaved.len() / from;
    let mut out = Vec::with_capacity(frames * to);
    for frame in interleaved.chunks_exact(from) {
        match (from, to) {
            (1, _) => out.extend(std::iter::repeat_n(frame[0], to)),
            (_, 1) => out.push(frame.iter().sum::<f32>() / from as f32),
            _ => {
                for ch in 0..to {
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
        assert_eq!(map_channels(&[1.0, 2.0, 3.0], 3, 2), vec![1.0, 2.0]);
    }
}
