//! Every output the runtime can play to now: the system's devices (cpal, in builds with
//! device output) and every target every plugin output sink offers, each with the route
//! that plays there. Read fresh on each call; plugin sinks are asked through the generic
//! `list_targets_json` call, on the caller's thread, with no lock held.

use stellatune_audio::BuiltinRoute;
use stellatune_plugin_host::PluginRuntime;

use std::time::Duration;

use crate::error::{HostError, Result};
use crate::route::{OutputRoute, PluginRoute};

/// The id of the entry that follows the system default.
pub const DEFAULT_DEVICE_ID: &str = "default";

/// One output: `route` is what [`crate::RuntimeHost::apply_route`] takes to play there.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputDevice {
    pub id: String,
    pub name: String,
    /// `alsa`, `wasapi`, ... for system devices, `plugin:<plugin id>` for a plugin's targets.
    pub backend: String,
    /// The system default now (and the entry that follows it).
    pub is_default: bool,
    pub route: OutputRoute,
}

/// How long the audio backends may take to list their devices. A wedged audio service (or
/// one that never answers, as under Wine) must not hang a settings page: past this the list
/// goes on without the system's devices.
const SYSTEM_LIST_TIMEOUT: Duration = Duration::from_secs(3);

/// The audio backends' devices, asked on a thread of their own and waited for at most
/// [`SYSTEM_LIST_TIMEOUT`].
fn list_system() -> Result<Vec<stellatune_audio::DeviceInfo>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("stellatune-device-list".into())
        .spawn(move || {
            let _ = tx.send(stellatune_audio::output_devices());
        })
        .map_err(|e| HostError::Internal(format!("cannot start the device list thread: {e}")))?;
    match rx.recv_timeout(SYSTEM_LIST_TIMEOUT) {
        Ok(listed) => Ok(listed.map_err(stellatune_audio::AudioError::Sink)?),
        Err(_) => {
            tracing::warn!(
                timeout_ms = SYSTEM_LIST_TIMEOUT.as_millis() as u64,
                "the audio backends did not list their devices in time; listing without them"
            );
            Ok(Vec::new())
        }
    }
}

/// The system's devices, led by the entry that follows the default. None in a build
/// without device output.
pub fn system_devices() -> Result<Vec<OutputDevice>> {
    let devices = list_system()?;
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    let default_backend = devices
        .iter()
        .find(|d| d.is_default)
        .unwrap_or(&devices[0])
        .backend
        .clone();
    let mut out = vec![OutputDevice {
        id: DEFAULT_DEVICE_ID.into(),
        name: "System default".into(),
        backend: default_backend,
        is_default: true,
        route: BuiltinRoute::Device { device_id: None }.into(),
    }];
    out.extend(devices.into_iter().map(|d| {
        OutputDevice {
            route: BuiltinRoute::Device {
                device_id: Some(d.id.clone()),
            }
            .into(),
            id: d.id,
            name: d.name,
            backend: d.backend,
            is_default: d.is_default,
        }
    }));
    Ok(out)
}

/// A plugin's target list, `[{"id": "...", "name": "..."}]`, as (id, name) pairs.
fn parse_targets(json: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let bad = |why: &str| format!("bad target list from the plugin ({why}): {json}");
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| bad(&e.to_string()))?;
    let list = value.as_array().ok_or_else(|| bad("not an array"))?;
    list.iter()
        .map(|t| {
            let id = t
                .get("id")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad("a target without a string `id`"))?;
            let name = t.get("name").and_then(|v| v.as_str()).unwrap_or(id);
            Ok((id.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every target of every output sink type of every loaded plugin. A plugin whose listing
/// fails is left out (and logged): the other outputs are still listed.
pub fn plugin_devices(plugins: &PluginRuntime) -> Vec<OutputDevice> {
    let mut out = Vec::new();
    for plugin in plugins.list() {
        for capability in plugin
            .capabilities
            .iter()
            .filter(|c| c.kind == "output_sink")
        {
            let listed = plugins
                .list_targets(&plugin.id, Some(&capability.type_id), None)
                .map_err(|e| e.to_string())
                .and_then(|json| parse_targets(&json));
            let targets = match listed {
                Ok(targets) => targets,
                Err(error) => {
                    tracing::warn!(
                        plugin = plugin.id,
                        sink = capability.type_id,
                        error,
                        "cannot list a plugin sink's targets"
                    );
                    continue;
                }
            };
            for (target, name) in targets {
                out.push(OutputDevice {
                    id: format!("plugin:{}:{}:{target}", plugin.id, capability.type_id),
                    name,
                    backend: format!("plugin:{}", plugin.id),
                    is_default: false,
                    route: OutputRoute::Plugin(PluginRoute::new(
                        &plugin.id,
                        Some(&capability.type_id),
                        &target,
                    )),
                });
            }
        }
    }
    out
}
