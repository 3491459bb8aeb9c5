use std::collections::BTreeMap;

use serde::Serialize;
use stellatune_plugin_host::PluginMetricsSnapshot;

use crate::host::LifecycleState;

/// Counters a front end or a stress gate reads. Plugin and sidecar counters are filled by
/// the plugin runtime where one runs; without one they are zero.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsSnapshot {
    pub state: LifecycleState,
    /// Real engine starts in this process: many inits give 1, init after shutdown gives 2.
    pub runtime_host_inits_total: u64,
    pub player_clients_active: u64,
    pub client_generation: u64,
    pub clients_evicted_total: u64,
    /// Events waiting in all client queues together.
    pub client_events_queued: u64,
    /// Threads the runtime owns that are alive now.
    pub runtime_threads: u64,
    /// Engines started to replace one that died (a control-thread panic).
    pub engine_restarts_total: u64,
    pub plugin_generations_active: u64,
    pub plugin_generations_draining: u64,
    pub asio_sidecar_spawns_total: u64,
    pub asio_sidecar_running: u64,
    pub ring_files: u64,
    pub plugin_shadow_copies: u64,
    /// Every other metric plugins reported through the generic channel, by name.
    #[serde(flatten)]
    pub plugin_reported: BTreeMap<String, i64>,
}

impl Default for MetricsSnapshot {
    fn default() -> Self {
        Self {
            state: LifecycleState::Uninit,
            runtime_host_inits_total: 0,
            player_clients_active: 0,
            client_generation: 0,
            clients_evicted_total: 0,
            client_events_queued: 0,
            runtime_threads: 0,
            engine_restarts_total: 0,
            plugin_generations_active: 0,
            plugin_generations_draining: 0,
            asio_sidecar_spawns_total: 0,
            asio_sidecar_running: 0,
            ring_files: 0,
            plugin_shadow_copies: 0,
            plugin_reported: BTreeMap::new(),
        }
    }
}

impl MetricsSnapshot {
    /// Merges the plugin runtime's counters. Plugin-reported values whose names are fields
    /// here fill those fields (plugins own them: the host only sums what they report); the
    /// rest are passed through by name.
    pub(crate) fn add_plugin_metrics(&mut self, plugins: PluginMetricsSnapshot) {
        self.plugin_generations_active = plugins.plugin_generations_active;
        self.plugin_generations_draining = plugins.plugin_generations_draining;
        self.plugin_shadow_copies = plugins.shadow_copies;
        let mut reported = plugins.reported;
        let mut take = |name: &str| reported.remove(name).map_or(0, |v| v.max(0) as u64);
        self.asio_sidecar_spawns_total = take("asio_sidecar_spawns_total");
        self.asio_sidecar_running = take("asio_sidecar_running");
        self.ring_files = take("ring_files");
        self.plugin_reported = reported;
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("metrics are plain numbers and strings")
    }
}
