//! The `misbehave` sink: panics, fails or hangs where its config says.

use std::time::Duration;

use serde::Deserialize;
use stellatune_plugin_sdk::{
    OutputSink, OutputSinkType, PluginError, Result, SinkStatus, Spec, Target,
};

pub struct MisbehaveSinkType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Call {
    Create,
    ListTargets,
    Negotiate,
    Open,
    Write,
    Status,
    Flush,
    Reset,
    Close,
    Destroy,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Config {
    panic_in: Vec<Call>,
    error_in: Vec<Call>,
    hang_in_close_ms: u64,
}

impl Config {
    fn parse(json: &str) -> Result<Config> {
        serde_json::from_str(json)
            .map_err(|e| PluginError::invalid_argument(format!("misbehave config: {e}")))
    }

    /// Panics or fails if `call` is named in the config.
    fn hit(&self, call: Call) -> Result<()> {
        if self.panic_in.contains(&call) {
            panic!("misbehave: panic in {call:?}");
        }
        if self.error_in.contains(&call) {
            return Err(PluginError::error(format!("misbehave: error in {call:?}")));
        }
        Ok(())
    }
}

pub struct MisbehaveSink {
    config: Config,
    channels: usize,
}

impl OutputSinkType for MisbehaveSinkType {
    const TYPE_ID: &'static str = "misbehave";
    const DISPLAY_NAME: &'static str = "Misbehaving sink (test)";
    const CONFIG_SCHEMA: &'static str = r#"{"type":"object","properties":{"panic_in":{"type":"array","items":{"type":"string"}},"error_in":{"type":"array","items":{"type":"string"}},"hang_in_close_ms":{"type":"integer","minimum":0}},"additionalProperties":false}"#;
    type Instance = MisbehaveSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>> {
        Config::parse(config_json)?.hit(Call::ListTargets)?;
        Ok(vec![Target::new("default", "Misbehaving sink")])
    }

    fn create(config_json: &str, _target: &str) -> Result<MisbehaveSink> {
        let config = Config::parse(config_json)?;
        config.hit(Call::Create)?;
        Ok(MisbehaveSink {
            config,
            channels: 0,
        })
    }
}

impl OutputSink for MisbehaveSink {
    fn negotiate(&mut self, preferred: Spec) -> Result<Spec> {
        self.config.hit(Call::Negotiate)?;
        Ok(preferred)
    }

    fn open(&mut self, spec: Spec) -> Result<()> {
        self.config.hit(Call::Open)?;
        self.channels = usize::from(spec.channels);
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> Result<usize> {
        self.config.hit(Call::Write)?;
        Ok(interleaved.len() / self.channels.max(1))
    }

    fn status(&self) -> SinkStatus {
        // No Result to fail with: `error_in: ["status"]` is ignored.
        let _ = self.config.hit(Call::Status);
        SinkStatus::default()
    }

    fn flush(&mut self) -> Result<()> {
        self.config.hit(Call::Flush)
    }

    fn reset(&mut self) -> Result<()> {
        self.config.hit(Call::Reset)
    }

    fn close(&mut self) -> Result<()> {
        if self.config.hang_in_close_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.config.hang_in_close_ms));
        }
        self.config.hit(Call::Close)
    }
}

impl Drop for MisbehaveSink {
    fn drop(&mut self) {
        if self.config.panic_in.contains(&Call::Destroy) {
            panic!("misbehave: panic in Destroy");
        }
    }
}
