use std::path::PathBuf;

use serde::Deserialize;
use stellatune_audio::{BuiltinRoute, SinkFactory};

use crate::error::HostError;

/// An output route as a front end states it in JSON, e.g. `{"kind":"null"}` or
/// `{"kind":"wav","path":"/tmp/out.wav","paced":false}`.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputRoute {
    Builtin(BuiltinRoute),
    /// `{"kind":"plugin","plugin_id":"...","sink":"...","target":"...","config":{...}}`;
    /// `sink` may be left out when the plugin has one output sink type.
    Plugin(PluginRoute),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRoute {
    #[serde(rename = "kind", default)]
    _kind: Option<String>,
    pub plugin_id: String,
    #[serde(default)]
    pub sink: Option<String>,
    #[serde(default)]
    pub target: String,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl PluginRoute {
    pub fn new(plugin_id: &str, sink: Option<&str>, target: &str) -> Self {
        Self {
            _kind: None,
            plugin_id: plugin_id.to_owned(),
            sink: sink.map(str::to_owned),
            target: target.to_owned(),
            config: None,
        }
    }

    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = Some(config);
        self
    }
}

impl OutputRoute {
    pub fn from_json(json: &str) -> Result<Self, HostError> {
        let value: serde_json::Value = serde_json::from_str(json)
            .map_err(|e| HostError::InvalidArgument(format!("route: {e}")))?;
        let Some(kind) = value.get("kind").and_then(|k| k.as_str()) else {
            return Err(HostError::InvalidArgument(
                "route: missing string field `kind`".into(),
            ));
        };
        // Each kind has its own struct, so errors name the field at fault (a tagged enum
        // would lose the path).
        let route = match kind {
            "device" => {
                crate::json::parse::<KindOnly>(json, "route")?;
                BuiltinRoute::Device
            }
            "null" => {
                crate::json::parse::<KindOnly>(json, "route")?;
                BuiltinRoute::Null
            }
            "wav" => {
                let wav: WavFields = crate::json::parse(json, "route")?;
                BuiltinRoute::Wav {
                    path: wav.path,
                    paced: wav.paced,
                }
            }
            "plugin" => {
                return Ok(OutputRoute::Plugin(crate::json::parse(json, "route")?));
            }
            other => {
                return Err(HostError::InvalidArgument(format!(
                    "route: unknown kind `{other}` (expected device, null, wav or plugin)"
                )));
            }
        };
        Ok(OutputRoute::Builtin(route))
    }

    pub fn plugin_id(&self) -> Option<&str> {
        match self {
            OutputRoute::Plugin(p) => Some(&p.plugin_id),
            OutputRoute::Builtin(_) => None,
        }
    }

    /// The engine-side recipe. A plugin sink instance is created here, on the caller's
    /// thread, so that no plugin code runs on the engine's control thread to set it up.
    pub(crate) fn factory(
        &self,
        plugins: Option<&stellatune_plugin_host::PluginRuntime>,
    ) -> Result<Box<dyn SinkFactory>, HostError> {
        match self {
            OutputRoute::Builtin(route) => Ok(Box::new(route.clone())),
            OutputRoute::Plugin(p) => {
                let plugins = plugins.ok_or(HostError::PluginsUnavailable)?;
                let config = p.config.as_ref().map(|c| c.to_string());
                let factory = plugins.create_sink(
                    &p.plugin_id,
                    p.sink.as_deref(),
                    &p.target,
                    config.as_deref(),
                )?;
                Ok(Box::new(factory))
            }
        }
    }
}

impl From<BuiltinRoute> for OutputRoute {
    fn from(route: BuiltinRoute) -> Self {
        OutputRoute::Builtin(route)
    }
}

/// One stage of a DSP chain: `{"plugin_id":"...","type_id":"...","config":{...}}`;
/// `type_id` may be left out when the plugin has one DSP type.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DspSpec {
    pub plugin_id: String,
    #[serde(default)]
    pub type_id: Option<String>,
    #[serde(default)]
    pub config: Option<serde_json::Value>,
}

impl DspSpec {
    /// Parses a JSON array of stages.
    pub fn chain_from_json(json: &str) -> Result<Vec<DspSpec>, HostError> {
        crate::json::parse(json, "dsp chain")
    }

    pub(crate) fn stage(
        &self,
        plugins: Option<&stellatune_plugin_host::PluginRuntime>,
    ) -> Result<Box<dyn stellatune_audio::DspStage>, HostError> {
        let plugins = plugins.ok_or(HostError::PluginsUnavailable)?;
        let config = self.config.as_ref().map(|c| c.to_string());
        Ok(Box::new(plugins.create_dsp(
            &self.plugin_id,
            self.type_id.as_deref(),
            config.as_deref(),
        )?))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KindOnly {
    #[serde(rename = "kind")]
    _kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WavFields {
    #[serde(rename = "kind")]
    _kind: String,
    path: PathBuf,
    #[serde(default = "paced_by_default")]
    paced: bool,
}

fn paced_by_default() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_builtin_kinds() {
        assert_eq!(
            OutputRoute::from_json(r#"{"kind":"null"}"#).unwrap(),
            OutputRoute::Builtin(BuiltinRoute::Null)
        );
        match OutputRoute::from_json(r#"{"kind":"wav","path":"/tmp/x.wav"}"#).unwrap() {
            OutputRoute::Builtin(BuiltinRoute::Wav { paced, .. }) => assert!(paced),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_routes_name_what_is_wrong() {
        let e = OutputRoute::from_json(r#"{"kind":"speaker"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("speaker"), "{e}");
        let e = OutputRoute::from_json(r#"{"path":"x"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("kind"), "{e}");
        let e = OutputRoute::from_json(r#"{"kind":"wav"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("path"), "{e}");
        assert!(OutputRoute::from_json("[").is_err());
    }
}
