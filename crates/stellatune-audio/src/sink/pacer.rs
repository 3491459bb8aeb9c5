use std::time::{Duration, Instant};

/// A real-time clock for sinks with no hardware behind them: it lets frames in only as fast
/// as they would be heard, plus a small lead. After a gap (pause, underrun) it re-anchors,
/// as a real device does, instead of letting a burst through to catch up.
#[derive(Debug)]
pub struct Pacer {
    rate: u32,
    lead_frames: u64,
    anchor: Option<Instant>,
    accepted_since_anchor: u64,
    underruns: u64,
}

impl Pacer {
    pub fn new(rate: u32, lead: Duration) -> Self {
        Self {
            rate,
            lead_frames: (lead.as_secs_f64() * f64::from(rate)) as u64,
            anchor: None,
            accepted_since_anchor: 0,
            underruns: 0,
        }
    }

    fn played(&self, now: Instant) -> u64 {
        self.anchor.map_or(0, |a| {
            (now.duration_since(a).as_secs_f64() * f64::from(self.rate)) as u64
        })
    }

    /// How many of `offered` frames may be accepted now; records them as accepted.
    pub fn admit(&mut self, offered: usize) -> usize {
        let now = Instant::now();
        let played = self.played(now);
        if self.anchor.is_none() || played > self.accepted_since_anchor {
            if self.anchor.is_some() {
                self.underruns += 1;
            }
            self.anchor = Some(now);
            self.accepted_since_anchor = 0;
        }
        let played = self.played(now);
        let queued = self.accepted_since_anchor - played.min(self.accepted_since_anchor);
        let room = self.lead_frames.saturating_sub(queued) as usize;
        let n = room.min(offered);
        self.accepted_since_anchor += n as u64;
        n
    }

    pub fn queued(&self) -> u64 {
        let played = self.played(Instant::now());
        self.accepted_since_anchor.saturating_sub(played)
    }

    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    pub fn reset(&mut self) {
        self.anchor = None;
        self.accepted_since_anchor = 0;
    }
}
