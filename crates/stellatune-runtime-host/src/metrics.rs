use std::collections::BTreeMap;

use stellatune_plugin_host::PluginMetricsSnapshot;

use crate::host::LifecycleState;

/// The counter name shared by the engine and any plugin that sees underruns of its own.
pub const AUDIO_UNDERRUNS_TOTAL: &str = "audio_underruns_total";

/// Counters a front end or a stress gate reads. Plugin counters are filled by the plugin
/// runtime where one runs; without one they are zero. The host names no plugin: what a
/// plugin counts (a sidecar, a ring file) is in `plugin_reported`, under the plugin's name.
#[derive(Debug, Clone, PartialEq)]
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
    /// Times the output ran dry while playing: the engine's count plus what plugins report
    /// under [`AUDIO_UNDERRUNS_TOTAL`] (an output plugin whose device ran dry out of the
    /// engine's sight), summed by name, whichever plugins they are.
    pub audio_underruns_total: u64,
    pub plugin_generations_active: u64,
    pub plugin_generations_draining: u64,
    pub plugin_shadow_copies: u64,
    /// The plugin host's helper threads alive now (a plugin call being waited for, or one
    /// that was abandoned and still runs in plugin code).
    pub plugin_helper_threads: u64,
    /// The metrics plugins reported through the generic channel, by the plugins' names,
    /// untouched.
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
            audio_underruns_total: 0,
            plugin_generations_active: 0,
            plugin_generations_draining: 0,
            plugin_shadow_copies: 0,
            plugin_helper_threads: 0,
            plugin_reported: BTreeMap::new(),
        }
    }
}

impl MetricsSnapshot {
    /// Merges the plugin runtime's counters.
    pub(crate) fn add_plugin_metrics(&mut self, plugins: PluginMetricsSnapshot) {
        self.plugin_generations_active = plugins.plugin_generations_active;
        self.plugin_generations_draining = plugins.plugin_generations_draining;
        self.plugin_shadow_copies = plugins.shadow_copies;
        self.plugin_helper_threads = plugins.helper_threads;
        let plugin_underruns = plugins
            .reported
            .get(AUDIO_UNDERRUNS_TOTAL)
            .copied()
            .unwrap_or(0);
        self.audio_underruns_total += u64::try_from(plugin_underruns).unwrap_or(0);
        self.plugin_reported = plugins.reported;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn underruns_are_the_engines_plus_what_plugins_report_by_that_name() {
        let mut snapshot = MetricsSnapshot {
            audio_underruns_total: 2,
            ..MetricsSnapshot::default()
        };
        let plugins = PluginMetricsSnapshot {
            plugin_generations_active: 1,
            plugin_generations_draining: 0,
            shadow_copies: 1,
            helper_threads: 0,
            reported: BTreeMap::from([
                (AUDIO_UNDERRUNS_TOTAL.to_owned(), 5),
                ("other_total".to_owned(), 9),
            ]),
        };
        snapshot.add_plugin_metrics(plugins);
        assert_eq!(snapshot.audio_underruns_total, 7);
        assert_eq!(snapshot.plugin_reported[AUDIO_UNDERRUNS_TOTAL], 5);
    }
}
