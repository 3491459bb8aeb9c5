//! ReplayGain: which of a track's values to apply, with a preamp, a gain for tracks without
//! values, and clipping prevention from the stated peak. The engine applies the result per
//! track, together with the volume, on the output thread.

use crate::error::{AudioError, Result};
use crate::media::ReplayGain;

/// Which ReplayGain value the engine applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplayGainMode {
    /// No ReplayGain: every track at unity.
    #[default]
    Off,
    /// The track's gain (the album's when the track has none).
    Track,
    /// The album's gain (the track's when the album has none).
    Album,
}

impl ReplayGainMode {
    /// `"off"`, `"track"` or `"album"`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "off" => Some(Self::Off),
            "track" => Some(Self::Track),
            "album" => Some(Self::Album),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Track => "track",
            Self::Album => "album",
        }
    }
}

/// The largest preamp or fallback gain, either way, in dB.
pub const MAX_REPLAYGAIN_DB: f32 = 24.0;

/// How the engine applies ReplayGain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayGainSettings {
    pub mode: ReplayGainMode,
    /// Added to the file's gain, in dB (-24 to 24).
    pub preamp_db: f32,
    /// Limits the gain so that the stated peak times the gain stays at or below full scale.
    pub prevent_clipping: bool,
    /// The gain for a track without the value the mode asks for, in dB (-24 to 24); the
    /// preamp does not apply to it. 0 plays such tracks at unity.
    pub fallback_db: f32,
}

impl Default for ReplayGainSettings {
    fn default() -> Self {
        Self {
            mode: ReplayGainMode::Off,
            preamp_db: 0.0,
            prevent_clipping: true,
            fallback_db: 0.0,
        }
    }
}

fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

impl ReplayGainSettings {
    /// Refuses values no player means: a gain that is not a number or beyond ±24 dB.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("preamp_db", self.preamp_db),
            ("fallback_db", self.fallback_db),
        ] {
            if !value.is_finite() || value.abs() > MAX_REPLAYGAIN_DB {
                return Err(AudioError::InvalidArgument(format!(
                    "replaygain: {name} must be between -{MAX_REPLAYGAIN_DB} and \
                     {MAX_REPLAYGAIN_DB} dB, got {value}"
                )));
            }
        }
        Ok(())
    }

    /// The linear gain for a track with `values`.
    pub fn gain(&self, values: &ReplayGain) -> f32 {
        let (gain_db, peak) = match self.mode {
            ReplayGainMode::Off => return 1.0,
            ReplayGainMode::Track => match values.track_gain_db {
                Some(db) => (db, values.track_peak),
                None => (
                    match values.album_gain_db {
                        Some(db) => db,
                        None => return db_to_linear(f64::from(self.fallback_db)) as f32,
                    },
                    values.album_peak,
                ),
            },
            ReplayGainMode::Album => match values.album_gain_db {
                Some(db) => (db, values.album_peak),
                None => (
                    match values.track_gain_db {
                        Some(db) => db,
                        None => return db_to_linear(f64::from(self.fallback_db)) as f32,
                    },
                    values.track_peak,
                ),
            },
        };
        let mut gain = db_to_linear(gain_db + f64::from(self.preamp_db));
        if self.prevent_clipping {
            if let Some(peak) = peak.filter(|p| p.is_finite() && *p > 0.0) {
                gain = gain.min(1.0 / peak);
            }
        }
        gain as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(track: Option<(f64, f64)>, album: Option<(f64, f64)>) -> ReplayGain {
        ReplayGain {
            track_gain_db: track.map(|t| t.0),
            track_peak: track.map(|t| t.1),
            album_gain_db: album.map(|a| a.0),
            album_peak: album.map(|a| a.1),
        }
    }

    fn settings(mode: ReplayGainMode) -> ReplayGainSettings {
        ReplayGainSettings {
            mode,
            prevent_clipping: false,
            ..Default::default()
        }
    }

    fn close(a: f32, b: f64) -> bool {
        (f64::from(a) - b).abs() < 1e-6
    }

    #[test]
    fn modes_pick_their_value_and_fall_back_to_the_other() {
        let both = values(Some((-6.0, 0.5)), Some((-12.0, 0.5)));
        assert_eq!(settings(ReplayGainMode::Off).gain(&both), 1.0);
        assert!(close(
            settings(ReplayGainMode::Track).gain(&both),
            0.501_187
        ));
        assert!(close(
            settings(ReplayGainMode::Album).gain(&both),
            0.251_189
        ));
        let track_only = values(Some((-6.0, 0.5)), None);
        assert!(close(
            settings(ReplayGainMode::Album).gain(&track_only),
            0.501_187
        ));
        let album_only = values(None, Some((-12.0, 0.5)));
        assert!(close(
            settings(ReplayGainMode::Track).gain(&album_only),
            0.251_189
        ));
    }

    #[test]
    fn preamp_adds_and_untagged_tracks_get_the_fallback() {
        let mut s = settings(ReplayGainMode::Track);
        s.preamp_db = 6.0;
        assert!(close(s.gain(&values(Some((-6.0, 0.1)), None)), 1.0));
        assert_eq!(s.gain(&ReplayGain::default()), 1.0, "unity, preamp unused");
        s.fallback_db = -6.0;
        assert!(close(s.gain(&ReplayGain::default()), 0.501_187));
    }

    #[test]
    fn clipping_prevention_keeps_peak_times_gain_at_full_scale() {
        let loud = values(Some((6.0, 0.8)), None);
        let mut s = settings(ReplayGainMode::Track);
        assert!(close(s.gain(&loud), 1.995_262));
        s.prevent_clipping = true;
        let g = s.gain(&loud);
        assert!(close(g, 1.25), "{g}");
        assert!(0.8 * g <= 1.0 + 1e-6);
        // A quiet track's gain is not touched.
        assert!(close(s.gain(&values(Some((-6.0, 0.8)), None)), 0.501_187));
    }

    #[test]
    fn out_of_range_settings_are_refused() {
        for bad in [f32::NAN, 24.5, -30.0] {
            let s = ReplayGainSettings {
                preamp_db: bad,
                ..Default::default()
            };
            assert!(s.validate().is_err(), "{bad}");
        }
        assert!(ReplayGainSettings::default().validate().is_ok());
    }
}
