use stellatune_audio::{BuiltinRoute, SinkFactory};

use crate::error::HostError;

/// Where the engine's output goes: a built-in sink or a plugin's. The C ABI reads routes
/// from JSON (`{"kind":"null"}`, `{"kind":"plugin",...}`; `stellatune-ffi`'s `wire`) and
/// hands the host this value.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputRoute {
    Builtin(BuiltinRoute),
    Plugin(PluginRoute),
}

/// A plugin's output sink: which plugin, which of its sink types, which target, and the
/// config passed to the plugin as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRoute {
    pub plugin_id: String,
    /// `None` when the plugin has one output sink type.
    pub sink: Option<String>,
    pub target: String,
    pub config: Option<serde_json::Value>,
}

impl PluginRoute {
    pub fn new(plugin_id: &str, sink: Option<&str>, target: &str) -> Self {
        Self {
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

/// One stage of a DSP chain: a plugin's DSP type and the config passed to it as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct DspSpec {
    pub plugin_id: String,
    /// `None` when the plugin has one DSP type.
    pub type_id: Option<String>,
    pub config: Option<serde_json::Value>,
}

impl DspSpec {
    pub fn new(plugin_id: &str, type_id: Option<&str>) -> Self {
        Self {
            plugin_id: plugin_id.to_owned(),
            type_id: type_id.map(str::to_owned),
            config: None,
        }
    }

    pub fn with_config(mut self, config: serde_json::Value) -> Self {
        self.config = Some(config);
        self
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

#[cfg(test)]
mod tests {
    //! The JSON forms of routes and chains are parsed, and tested, in `stellatune-ffi`.

    use super::*;

    #[test]
    fn constructors_fill_every_field() {
        let route = OutputRoute::Plugin(
            PluginRoute::new("p", Some("capture"), "/tmp/x")
                .with_config(serde_json::json!({"n": 1})),
        );
        assert_eq!(route.plugin_id(), Some("p"));
        let OutputRoute::Plugin(p) = &route else {
            unreachable!()
        };
        assert_eq!(p.sink.as_deref(), Some("capture"));
        assert_eq!(p.target, "/tmp/x");
        assert_eq!(p.config, Some(serde_json::json!({"n": 1})));
        assert_eq!(OutputRoute::from(BuiltinRoute::Null).plugin_id(), None);

        let stage = DspSpec::new("p", None).with_config(serde_json::json!({"gain": 0.5}));
        assert_eq!(
            stage,
            DspSpec {
                plugin_id: "p".into(),
                type_id: None,
                config: Some(serde_json::json!({"gain": 0.5})),
            }
        );
        assert_eq!(
            DspSpec::new("p", Some("gain")).type_id.as_deref(),
            Some("gain")
        );
    }
}
