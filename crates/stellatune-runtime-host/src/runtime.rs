//! One running runtime: what an `init` starts and a `shutdown` stops. It owns the engine
//! (replaced when its control thread dies), the [`Output`], the [`PluginOps`] and the config
//! it was started with. The lifecycle machine in `host.rs` holds it while it runs; it holds
//! the [`Sessions`] it reports to, which outlive it, and nothing of the host.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use stellatune_audio::{AudioError, Engine, EngineConfig, ReplayGainSettings, ThreadCounter};

use crate::config::HostConfig;
use crate::engine_slot::EngineSlot;
use crate::error::Result;
use crate::events::{HostEvent, HostNotice};
use crate::output::Output;
use crate::plugin_ops::{PluginOps, Target};
use crate::sessions::{Sessions, Turn, Watched};

pub(crate) struct Runtime {
    name: String,
    sessions: Arc<Sessions>,
    /// The host's counter of runtime threads: a restarted engine's threads count there too.
    threads: ThreadCounter,
    /// The host's count of engine restarts, kept across runtimes.
    restarts: Arc<AtomicU64>,
    /// Replaced when the engine's control thread died (a panic): see [`Runtime::recover`].
    engine: EngineSlot,
    pub output: Output,
    pub plugins: PluginOps,
    pub config: HostConfig,
    /// ReplayGain as the config or a client set it last: a restarted engine keeps it.
    replaygain: std::sync::Mutex<ReplayGainSettings>,
}

impl Runtime {
    /// Starts the engine next to the already loaded `plugins`.
    pub fn start(
        name: &str,
        sessions: &Arc<Sessions>,
        threads: &ThreadCounter,
        restarts: &Arc<AtomicU64>,
        config: HostConfig,
        plugins: PluginOps,
    ) -> Result<Self> {
        let replaygain = config.replaygain.unwrap_or_default();
        let engine = start_engine(name, sessions, threads, replaygain)?;
        Ok(Self {
            name: name.to_owned(),
            sessions: sessions.clone(),
            threads: threads.clone(),
            restarts: restarts.clone(),
            engine: EngineSlot::new(engine),
            output: Output::default(),
            plugins,
            config,
            replaygain: std::sync::Mutex::new(replaygain),
        })
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.engine.get()
    }

    fn replaygain(&self) -> std::sync::MutexGuard<'_, ReplayGainSettings> {
        self.replaygain
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies `settings` to `engine` and keeps them for a restarted engine.
    pub fn set_replaygain(
        &self,
        engine: &Engine,
        settings: ReplayGainSettings,
    ) -> std::result::Result<(), AudioError> {
        engine.set_replaygain(settings)?;
        *self.replaygain() = settings;
        Ok(())
    }

    /// What plugin operations act on: these sessions, this output, this runtime's engine.
    pub fn plugin_target(&self) -> Target<'_> {
        Target {
            sessions: &self.sessions,
            output: &self.output,
            engine: &self.engine,
        }
    }

    /// Runs `command` for the client of `turn` under the shared gate. A dead engine met on
    /// the way is restarted.
    pub fn command<T>(
        &self,
        turn: &Turn<'_>,
        command: impl FnOnce(&Self, &Engine) -> std::result::Result<T, AudioError>,
    ) -> Result<T> {
        let engine = self.engine();
        let outcome = self.sessions.command(turn, || command(self, &engine))?;
        if matches!(outcome, Err(AudioError::EngineStopped)) && !engine.is_running() {
            self.recover(&engine);
        }
        Ok(outcome?)
    }

    /// The caller holds the gate exclusively (see [`Output::stop_and_clear`]).
    pub fn stop_and_clear(&self) -> std::result::Result<(), AudioError> {
        self.output.stop_and_clear(&self.engine())
    }

    /// Shuts the engine down within `timeout`, then lets the plugins unload. The sessions
    /// are closed already, so no command can reach the engine any more.
    pub fn stop(&self, timeout: Duration) -> std::result::Result<(), AudioError> {
        let engine = self.engine();
        // The engine's own shutdown stops playback and closes the sink, within the deadline
        // (a separate stop-and-clear would wait on the engine's fixed command timeout).
        self.output.reset();
        let stopped = engine.shutdown(timeout);
        drop(engine);
        // With the engine gone no instance is left: every generation unloads as soon as the
        // last holder of the runtime lets go (the lifecycle, right after this).
        self.plugins.shutdown();
        stopped
    }

    /// Replaces `dead` (an engine whose control thread ended while the host runs) with a
    /// fresh one, unless someone already did. Playback stops; the route and the DSP chain
    /// are re-applied, so the clients can simply play again; they are told with an
    /// `engine_restarted` notice.
    fn recover(&self, dead: &Arc<Engine>) {
        let (route, chain) = {
            // Exclusive: no command reaches the engine while it is being replaced.
            let _gate = self.sessions.gate_exclusive();
            let mut current = self.engine.lock();
            if !Arc::ptr_eq(&current, dead) || dead.is_running() {
                return;
            }
            // The control thread is gone: joining it is immediate.
            let _ = dead.shutdown(Duration::from_millis(100));
            let replaygain = *self.replaygain();
            let fresh = match start_engine(&self.name, &self.sessions, &self.threads, replaygain) {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::error!(host = %self.name, error = %e, "the engine died and could not be restarted");
                    return;
                }
            };
            *current = Arc::new(fresh);
            let kept = (self.output.route(), self.output.dsp_chain());
            self.output.reset();
            kept
        };
        let restarts = self.restarts.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::error!(host = %self.name, engine_restarts_total = restarts, "the engine's control thread died; a fresh engine was started");
        // Plugin instances are made with no gate held; the engine calls under the shared gate.
        let plugins = self.plugins.runtime();
        let engine = self.engine();
        if !chain.is_empty() {
            let stages = chain
                .iter()
                .map(|spec| spec.stage(plugins))
                .collect::<Result<Vec<_>>>();
            let _gate = self.sessions.gate_shared();
            if let Err(e) = stages.and_then(|s| Ok(self.output.set_dsp_chain(&engine, chain, s)?)) {
                tracing::warn!(error = %e, "the dsp chain could not be re-applied after the engine restart");
            }
        }
        if let Some(route) = route {
            let factory = route.factory(plugins);
            let _gate = self.sessions.gate_shared();
            if let Err(e) = factory.and_then(|f| Ok(self.output.apply_route(&engine, route, f)?)) {
                tracing::warn!(error = %e, "the route could not be re-applied after the engine restart");
            }
        }
        self.sessions
            .broadcast(HostEvent::Host(HostNotice::EngineRestarted {
                reason: "the engine's control thread died".into(),
            }));
    }
}

impl Watched for Runtime {
    fn evicts(&self) -> bool {
        !self.config.faults().skip_eviction
    }

    fn last_client_left(&self) {
        let _ = self.stop_and_clear();
    }

    fn check_engine(&self) {
        let engine = self.engine();
        if !engine.is_running() {
            self.recover(&engine);
        }
    }

    fn engine_exit(&self) -> Option<crossbeam_channel::Receiver<()>> {
        let engine = self.engine();
        engine.is_running().then(|| engine.exit_signal())
    }
}

/// Starts an engine whose events go to every live client.
fn start_engine(
    name: &str,
    sessions: &Arc<Sessions>,
    threads: &ThreadCounter,
    replaygain: ReplayGainSettings,
) -> Result<Engine> {
    let sessions = sessions.clone();
    Ok(Engine::start(
        EngineConfig {
            name: name.to_owned(),
            threads: threads.clone(),
            replaygain,
            ..Default::default()
        },
        Arc::new(move |event| sessions.broadcast(HostEvent::Engine(event))),
    )?)
}
