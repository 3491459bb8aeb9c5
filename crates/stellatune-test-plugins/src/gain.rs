//! The `gain` DSP.

use serde::Deserialize;
use stellatune_plugin_sdk::{Dsp, DspType, Error, Result, Spec};

pub struct GainType;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GainConfig {
    #[serde(default = "unity")]
    gain: f32,
}

fn unity() -> f32 {
    1.0
}

pub struct Gain {
    gain: f32,
}

impl DspType for GainType {
    const TYPE_ID: &'static str = "gain";
    const DISPLAY_NAME: &'static str = "Gain (test)";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","properties":{"gain":{"type":"number","default":1.0}},"additionalProperties":false}"#;
    const DEFAULT_CONFIG: &'static str = r#"{"gain":1.0}"#;
    type Instance = Gain;

    fn create(config_json: &str, _spec: Spec) -> Result<Gain> {
        let config: GainConfig = serde_json::from_str(config_json)
            .map_err(|e| Error::invalid_argument(format!("gain config: {e}")))?;
        if !config.gain.is_finite() {
            return Err(Error::invalid_argument("gain must be finite"));
        }
        Ok(Gain { gain: config.gain })
    }
}

impl Dsp for Gain {
    fn process(&mut self, interleaved: &mut [f32]) -> Result<()> {
        interleaved.iter_mut().for_each(|s| *s *= self.gain);
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        Ok(())
    }
}
