use serde::{Deserialize, Serialize};

/// Sample rate and channel count of an interleaved f32 stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamSpec {
    pub sample_rate: u32,
    pub channels: u16,
}

impl StreamSpec {
    pub const fn new(sample_rate: u32, channels: u16) -> Self {
        Self {
            sample_rate,
            channels,
        }
    }

    pub fn frames_to_ms(&self, frames: u64) -> u64 {
        frames * 1000 / u64::from(self.sample_rate.max(1))
    }

    pub fn ms_to_frames(&self, ms: u64) -> u64 {
        ms * u64::from(self.sample_rate) / 1000
    }
}

impl Default for StreamSpec {
    fn default() -> Self {
        Self::new(44_100, 2)
    }
}
