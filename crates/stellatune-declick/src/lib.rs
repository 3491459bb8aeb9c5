//! The fades around a reset, for whoever plays a queue of interleaved `f32` audio: the device
//! callback of the in-process device output and the sidecar's ring reader.
//!
//! A reset drops what is queued. Cutting it where the device is playing would be a step in the
//! waveform (a click), so the consumer first plays a short fade-out of the queue's head (linear
//! towards silence, [`ResetFades::begin_reset`] with what is queued), then drops the rest and
//! fades in the first frames that come after ([`ResetFades::finish_reset`]). A reset during a
//! fade-in fades out from the level reached; a reset before anything after the last one was
//! heard has nothing to fade.
//!
//! Real-time safe: no lock, no allocation, no system call.

/// Where a consumer is in the fades around resets.
#[derive(Debug, Clone)]
pub struct ResetFades {
    /// The fades' length in frames (at least 1).
    fade_frames: usize,
    /// The fade-out of a reset being played.
    fade_out: Option<FadeOut>,
    /// Frames of the fade-in after a reset already played, while it goes on.
    fade_in: Option<usize>,
}

/// The fade-out of the queue's head on a reset.
#[derive(Debug, Clone, Copy)]
struct FadeOut {
    /// The level it starts from (below 1 when a fade-in was still going on).
    from: f32,
    /// Frames of it played.
    done: usize,
    /// Its length: the fade's length, or what was queued when that was less.
    len: usize,
}

impl FadeOut {
    /// Linear towards silence: the last frame is still above 0, the one after it would be 0.
    fn gain(&self, frame: usize) -> f32 {
        self.from * (self.len - frame) as f32 / (self.len + 1) as f32
    }
}

impl ResetFades {
    /// Fades of `fade_frames` frames (at least 1).
    pub fn new(fade_frames: usize) -> Self {
        ResetFades {
            fade_frames: fade_frames.max(1),
            fade_out: None,
            fade_in: None,
        }
    }

    /// Frames in `ms` milliseconds at `sample_rate`, at least 1.
    pub fn frames_for(sample_rate: u32, ms: u32) -> usize {
        (u64::from(sample_rate) * u64::from(ms) / 1000).max(1) as usize
    }

    /// Sets the fades' length (at least 1 frame); takes effect from the next reset.
    pub fn set_fade_frames(&mut self, frames: usize) {
        self.fade_frames = frames.max(1);
    }

    /// The fades' length in frames.
    pub fn fade_frames(&self) -> usize {
        self.fade_frames
    }

    /// Whether a reset's fade-out is being played.
    pub fn resetting(&self) -> bool {
        self.fade_out.is_some()
    }

    /// A reset was requested with `queued` frames of old audio in the queue: the fade-out
    /// starts (none when the output is silent already).
    pub fn begin_reset(&mut self, queued: usize) {
        self.fade_out = Some(FadeOut {
            from: self.level(),
            done: 0,
            len: self.fade_out_for(queued),
        });
        self.fade_in = None;
    }

    /// How many frames a reset begun now with `queued` frames of old audio would fade out.
    pub fn fade_out_for(&self, queued: usize) -> usize {
        if self.level() > 0.0 {
            queued.min(self.fade_frames)
        } else {
            0
        }
    }

    /// Frames of the fade-out still to play; `None` when no reset is being played.
    pub fn fade_out_left(&self) -> Option<usize> {
        self.fade_out.map(|f| f.len - f.done)
    }

    /// Fades the frames just read from the queue's head (`out`, interleaved) as the next part
    /// of the fade-out. Returns true when the fade-out is complete: the caller then drops the
    /// rest of the old audio and calls [`ResetFades::finish_reset`].
    pub fn apply_fade_out(&mut self, out: &mut [f32], channels: usize) -> bool {
        let Some(mut fade) = self.fade_out else {
            return true;
        };
        let channels = channels.max(1);
        let frames = (out.len() / channels).min(fade.len - fade.done);
        for (i, frame) in out[..frames * channels]
            .chunks_exact_mut(channels)
            .enumerate()
        {
            let gain = fade.gain(fade.done + i);
            frame.iter_mut().for_each(|s| *s *= gain);
        }
        fade.done += frames;
        self.fade_out = Some(fade);
        fade.done >= fade.len
    }

    /// The old audio is dropped: what follows fades in.
    pub fn finish_reset(&mut self) {
        self.fade_out = None;
        self.fade_in = Some(0);
    }

    /// Fades in the frames just read (`out`, interleaved) while the fade-in after a reset
    /// goes on; outside it, leaves them untouched.
    pub fn apply_fade_in(&mut self, out: &mut [f32], channels: usize) {
        let Some(done) = self.fade_in else {
            return;
        };
        let channels = channels.max(1);
        let len = self.fade_frames;
        let ramped = (out.len() / channels).min(len - done);
        for (i, frame) in out[..ramped * channels]
            .chunks_exact_mut(channels)
            .enumerate()
        {
            let gain = (done + i + 1) as f32 / (len + 1) as f32;
            frame.iter_mut().for_each(|s| *s *= gain);
        }
        self.fade_in = (done + ramped < len).then_some(done + ramped);
    }

    /// The gain the next frame would play at: below 1 while a fade-in goes on.
    fn level(&self) -> f32 {
        match self.fade_in {
            Some(done) => done as f32 / (self.fade_frames + 1) as f32,
            None => 1.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(samples: &[f32]) -> f32 {
        samples
            .windows(2)
            .map(|w| (w[1] - w[0]).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn a_reset_fades_the_head_out_to_near_silence_then_fades_in_what_follows() {
        let mut fades = ResetFades::new(10);
        let mut head = vec![1.0f32; 40]; // 20 stereo frames queued
        fades.begin_reset(20);
        assert_eq!(fades.fade_out_left(), Some(10));
        let done = fades.apply_fade_out(&mut head[..20], 2);
        assert!(done);
        assert!(head[..20].windows(2).all(|w| w[1] <= w[0]), "{head:?}");
        assert!(head[18] > 0.0 && head[18] < 0.1, "{head:?}");
        fades.finish_reset();
        let mut next = vec![1.0f32; 30];
        fades.apply_fade_in(&mut next, 2);
        assert!(
            next[0] < 0.1 && next[19] < 1.0 && next[20] == 1.0,
            "{next:?}"
        );
        // Fade-out then fade-in of full-scale audio: no step larger than one fade step.
        let joined: Vec<f32> = head[..20].iter().chain(&next).copied().collect();
        assert!(steps(&joined) <= 1.0 / 11.0 + 1e-6, "{joined:?}");
    }

    #[test]
    fn less_queued_than_the_fade_fades_what_there_is() {
        let mut fades = ResetFades::new(100);
        fades.begin_reset(3);
        assert_eq!(fades.fade_out_left(), Some(3));
        let mut head = vec![1.0f32; 3];
        assert!(fades.apply_fade_out(&mut head, 1));
        assert!(head[2] < head[1] && head[1] < head[0] && head[0] < 1.0);
    }

    #[test]
    fn a_reset_during_a_fade_in_starts_from_the_level_reached() {
        let mut fades = ResetFades::new(10);
        fades.begin_reset(0);
        assert!(fades.apply_fade_out(&mut [], 1));
        fades.finish_reset();
        let mut half = vec![1.0f32; 5];
        fades.apply_fade_in(&mut half, 1);
        let reached = half[4];
        fades.begin_reset(10);
        let mut head = vec![1.0f32; 10];
        fades.apply_fade_out(&mut head, 1);
        assert!(head[0] <= reached, "{head:?} after {reached}");
    }

    #[test]
    fn a_reset_before_anything_new_was_heard_has_nothing_to_fade() {
        let mut fades = ResetFades::new(10);
        fades.begin_reset(10);
        let mut head = vec![1.0f32; 10];
        assert!(fades.apply_fade_out(&mut head, 1));
        fades.finish_reset();
        // Nothing read since: the level is 0, so the next reset plays no fade-out.
        fades.begin_reset(10);
        assert_eq!(fades.fade_out_left(), Some(0));
    }
}
