//! Plugin operations over the plugin runtime of one running runtime: install, uninstall,
//! reload, list, and moving the output to a new plugin generation after one of them.
//!
//! Every operation copies files, loads libraries or calls into plugins, so none holds a lock
//! or the command gate while it does: only the final engine request that moves the route or
//! the DSP chain takes the gate shared, and re-checks first that what it moves is still what
//! [`Output`] was asked for. Sessions and the output are borrowed per call, never kept, so the
//! dependency goes one way: plugin operations use them, they know nothing of plugins.

use std::path::Path;
use std::sync::Arc;

use stellatune_plugin_host::{
    NoticeSink, PluginInfo, PluginMetricsSnapshot, PluginRuntime, ReloadReport,
};

use crate::config::HostConfig;
use crate::engine_slot::EngineSlot;
use crate::error::{HostError, Result};
use crate::events::{HostEvent, HostNotice};
use crate::output::Output;
use crate::sessions::Sessions;

/// What a plugin operation acts on besides the plugins. The engine is read from its slot
/// under the gate: the runtime may have replaced a dead one meanwhile.
pub(crate) struct Target<'a> {
    pub sessions: &'a Sessions,
    pub output: &'a Output,
    pub engine: &'a EngineSlot,
}

pub(crate) struct PluginOps {
    /// `None` when the plugin directory is unusable: the runtime then plays without plugins.
    runtime: Option<Arc<PluginRuntime>>,
}

impl PluginOps {
    /// Loads the plugins of `config`'s plugin directory; their notices go to every client.
    /// Does file I/O and calls into plugins: the caller holds no lock.
    pub fn start(config: &HostConfig, sessions: &Arc<Sessions>) -> Self {
        let plugin_dir = config.resolved_plugin_dir();
        let sessions = sessions.clone();
        let notices: NoticeSink = Arc::new(move |notice| {
            let payload = serde_json::from_str(&notice.json)
                .unwrap_or(serde_json::Value::String(notice.json));
            sessions.broadcast(HostEvent::Host(HostNotice::PluginEvent {
                plugin_id: notice.plugin_id,
                kind: notice.kind,
                payload,
            }));
        });
        let runtime = match PluginRuntime::start(&plugin_dir, &config.resolved_data_dir(), notices)
        {
            Ok(runtime) => Some(Arc::new(runtime)),
            Err(e) => {
                tracing::warn!(plugin_dir = %plugin_dir.display(), error = %e, "plugin runtime unavailable; playing without plugins");
                None
            }
        };
        Self { runtime }
    }

    /// The plugin runtime, for the sink and DSP instances a route or a chain needs.
    pub fn runtime(&self) -> Option<&PluginRuntime> {
        self.runtime.as_deref()
    }

    fn available(&self) -> Result<&PluginRuntime> {
        self.runtime().ok_or(HostError::PluginsUnavailable)
    }

    pub fn metrics(&self) -> Option<PluginMetricsSnapshot> {
        self.runtime().map(PluginRuntime::metrics)
    }

    /// Unloads every generation that nothing holds any more (the engine is gone).
    pub fn shutdown(&self) {
        if let Some(plugins) = self.runtime() {
            plugins.shutdown();
        }
    }

    /// Installs a plugin directory or .zip and activates it. If the current route plays
    /// through an older generation of it, the route moves to the new one at once.
    pub fn install(&self, artifact: &Path, target: &Target<'_>) -> Result<String> {
        let plugins = self.available()?;
        let id = plugins.install(artifact)?;
        let generation = plugins
            .list()
            .into_iter()
            .find(|p| p.id == id)
            .and_then(|p| p.generation);
        tracing::info!(plugin = %id, generation, "plugin installed");
        target
            .sessions
            .broadcast(HostEvent::Host(HostNotice::PluginInstalled {
                plugin_id: id.clone(),
                generation,
            }));
        move_to_new_generation(plugins, target, &[id.as_str()]);
        Ok(id)
    }

    /// Uninstalls a plugin. A route playing through it keeps playing until it is cleared;
    /// then its generation unloads and its shadow copy goes.
    pub fn uninstall(&self, id: &str, sessions: &Sessions) -> Result<()> {
        self.available()?.uninstall(id)?;
        sessions.broadcast(HostEvent::Host(HostNotice::PluginUninstalled {
            plugin_id: id.to_owned(),
        }));
        Ok(())
    }

    /// Re-reads the plugin directory; changed plugins get a new generation, and a route
    /// playing through one of them moves to it at once (the old generation drains).
    pub fn reload(&self, target: &Target<'_>) -> Result<ReloadReport> {
        let plugins = self.available()?;
        let report = plugins.reload();
        tracing::info!(?report, "plugins reloaded");
        let changed: Vec<&str> = report
            .reloaded
            .iter()
            .chain(&report.loaded)
            .map(String::as_str)
            .collect();
        move_to_new_generation(plugins, target, &changed);
        target
            .sessions
            .broadcast(HostEvent::Host(HostNotice::PluginsReloaded {
                loaded: report.loaded.clone(),
                reloaded: report.reloaded.clone(),
                removed: report.removed.clone(),
                failed: report
                    .failed
                    .iter()
                    .map(|(id, e)| format!("{id}: {e}"))
                    .collect(),
            }));
        Ok(report)
    }

    /// Loads a fresh generation of one plugin even if its files did not change.
    pub fn force_reload(&self, id: &str, target: &Target<'_>) -> Result<u64> {
        let plugins = self.available()?;
        let generation = plugins.force_reload(id)?;
        move_to_new_generation(plugins, target, &[id]);
        Ok(generation)
    }

    pub fn list(&self) -> Result<Vec<PluginInfo>> {
        Ok(self.available()?.list())
    }
}

/// Moves the route and the DSP chain to the new generations of `changed` plugins.
fn move_to_new_generation(plugins: &PluginRuntime, target: &Target<'_>, changed: &[&str]) {
    move_dsp_to_new_generation(plugins, target, changed);
    let output = target.output;
    let Some(route) = output
        .route()
        .filter(|r| r.plugin_id().is_some_and(|id| changed.contains(&id)))
    else {
        return;
    };
    // The new instance is made with no gate held (a plugin call).
    let factory = match route.factory(Some(plugins)) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "the new plugin generation could not take over the route");
            return;
        }
    };
    let engine = target.engine.get();
    let gate = target.sessions.gate_shared();
    // A rollover or another route may have come meanwhile: then this one is stale.
    if !output.is_current(&route) {
        return;
    }
    let plugin = route.plugin_id().map(str::to_owned);
    let moved = output.apply_route(&engine, route, factory);
    drop(gate);
    match moved {
        Ok(()) => {
            // A reload returns once the route runs on the new generation and the old sink is
            // closed (plugin management blocks its caller anyway: copies, loads), so the old
            // generation can drain at once. Waited for with no gate held.
            crate::output::settle(&engine);
            tracing::info!(
                plugin = plugin.as_deref(),
                "route moved to the new plugin generation"
            )
        }
        Err(e) => {
            tracing::warn!(error = %e, "moving the route to the new plugin generation failed")
        }
    }
}

fn move_dsp_to_new_generation(plugins: &PluginRuntime, target: &Target<'_>, changed: &[&str]) {
    let output = target.output;
    let chain = output.dsp_chain();
    if !chain
        .iter()
        .any(|s| changed.contains(&s.plugin_id.as_str()))
    {
        return;
    }
    // Made with no gate held (plugin calls).
    let stages = chain
        .iter()
        .map(|spec| spec.stage(Some(plugins)))
        .collect::<Result<Vec<_>>>();
    let _gate = target.sessions.gate_shared();
    if output.dsp_chain() != chain {
        return;
    }
    let moved = stages.and_then(|s| Ok(output.set_dsp_chain(&target.engine.get(), chain, s)?));
    match moved {
        Ok(()) => tracing::info!("dsp chain moved to the new plugin generation"),
        Err(e) => {
            tracing::warn!(error = %e, "the dsp chain could not move to the new plugin generation")
        }
    }
}
