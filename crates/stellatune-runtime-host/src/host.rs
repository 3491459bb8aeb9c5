//! The RuntimeHost: one per process, owning the one engine and every process-wide service.
//!
//! Concurrency model (docs/runtime.md has the long form). Every public method may be called
//! from any thread at any moment:
//! - Every call except `init`, `shutdown`, `state` and `metrics` is a *call in flight* from
//!   the moment it found the runtime running until it returns. `shutdown` first turns the
//!   state to `ShuttingDown` (new calls get [`HostError::ShuttingDown`]), then evicts every
//!   client and waits for the calls in flight before it tears anything down.
//! - `init` during a shutdown waits for it and then starts a fresh runtime; an `init` after a
//!   shutdown that timed out waits for the old runtime's threads and refuses to start a
//!   second engine next to one that is still alive.
//! - Client commands hold the command gate shared; eviction (rollover, lease, last client)
//!   and shutdown hold it exclusively, so a command of a client evicted a moment ago never
//!   reaches the engine. No thread holds the gate while it waits for another thread that
//!   may want it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use stellatune_audio::{
    AudioError, Engine, EngineConfig, EngineStatus, ThreadCounter, TrackId, TrackSource,
};

use crate::clients::{ClientRegistry, ClientSession};
use crate::config::HostConfig;
use crate::error::{HostError, Result};
use crate::events::{EventQueue, HostEvent, HostNotice, Polled};
use crate::metrics::MetricsSnapshot;
use crate::output::Output;
use crate::route::{DspSpec, OutputRoute};
use stellatune_plugin_host::PluginRuntime;

static GLOBAL: LazyLock<RuntimeHost> = LazyLock::new(|| RuntimeHost::new("stellatune"));

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    Uninit,
    Running,
    ShuttingDown,
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitOutcome {
    /// A new engine was started.
    Started,
    /// The host was already running; nothing was started.
    Reused,
}

struct Services {
    /// Replaced when the engine's control thread died (a panic): see `recover_engine`.
    engine: Mutex<Arc<Engine>>,
    /// `None` when the plugin directory is unusable: the runtime then plays without plugins.
    plugins: Option<Arc<PluginRuntime>>,
    output: Output,
    config: HostConfig,
    supervisor_stop: Sender<()>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl Services {
    fn engine(&self) -> Arc<Engine> {
        lock(&self.engine).clone()
    }
}

enum Phase {
    Uninit,
    Running(Arc<Services>),
    ShuttingDown,
    Stopped,
}

struct Lifecycle {
    phase: Phase,
    /// Calls that found the runtime running and have not returned; shutdown waits for them.
    in_flight: usize,
    /// A runtime whose shutdown timed out: kept (not dropped, which would block) until its
    /// threads are gone, so that no second engine starts next to it.
    lingering: Option<Arc<Services>>,
}

impl Phase {
    fn state(&self) -> LifecycleState {
        match self {
            Phase::Uninit => LifecycleState::Uninit,
            Phase::Running(_) => LifecycleState::Running,
            Phase::ShuttingDown => LifecycleState::ShuttingDown,
            Phase::Stopped => LifecycleState::Stopped,
        }
    }
}

/// Owns the engine and the client sessions over it. The process has one, reached through
/// [`RuntimeHost::global`]; tests build isolated ones with [`RuntimeHost::new`].
pub struct RuntimeHost {
    name: String,
    lifecycle: Mutex<Lifecycle>,
    lifecycle_changed: Condvar,
    clients: Arc<ClientRegistry>,
    threads: ThreadCounter,
    inits_total: AtomicU64,
    engine_restarts_total: Arc<AtomicU64>,
    /// Commands hold it shared; eviction and shutdown hold it exclusively, so a command from
    /// a client evicted a moment ago can never reach the engine after the eviction.
    command_gate: Arc<RwLock<()>>,
}

/// A call in flight: holds the running services and keeps shutdown waiting until dropped.
struct Call<'h> {
    host: &'h RuntimeHost,
    services: Arc<Services>,
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let mut lifecycle = self.host.lock();
        lifecycle.in_flight -= 1;
        if lifecycle.in_flight == 0 {
            self.host.lifecycle_changed.notify_all();
        }
    }
}

/// A call of one client: on top of [`Call`], the client cannot expire while it runs, and
/// its lease counts from the moment it returns.
struct ClientCall<'h> {
    call: Call<'h>,
    id: u64,
    queue: Arc<EventQueue>,
}

impl Drop for ClientCall<'_> {
    fn drop(&mut self) {
        self.call.host.clients.end_call(self.id);
    }
}

impl RuntimeHost {
    pub fn global() -> &'static RuntimeHost {
        &GLOBAL
    }

    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            lifecycle: Mutex::new(Lifecycle {
                phase: Phase::Uninit,
                in_flight: 0,
                lingering: None,
            }),
            lifecycle_changed: Condvar::new(),
            clients: Arc::new(ClientRegistry::new(name)),
            threads: ThreadCounter::new(),
            inits_total: AtomicU64::new(0),
            engine_restarts_total: Arc::new(AtomicU64::new(0)),
            command_gate: Arc::new(RwLock::new(())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, Lifecycle>) -> MutexGuard<'a, Lifecycle> {
        self.lifecycle_changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> LifecycleState {
        self.lock().phase.state()
    }

    /// Starts the engine, or does nothing if it runs already. Safe to call from every
    /// bootstrap of every isolate.
    pub fn init(&self, config: HostConfig) -> Result<InitOutcome> {
        config.validate()?;
        crate::logging::init_logging(
            config.log_filter.as_deref(),
            config.log_format.unwrap_or_default(),
        );
        if matches!(self.lock().phase, Phase::Running(_)) {
            return Ok(self.reused(&config));
        }
        self.wait_for_lingering(config.shutdown_timeout())?;
        // Directory set-up and plugin loading do file I/O and call into plugins: never under
        // the lifecycle lock.
        let data_dir = config.resolved_data_dir();
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            tracing::warn!(data_dir = %data_dir.display(), error = %e, "data directory is not usable; features that store files will fail");
        }
        let plugins = self.start_plugins(&config);
        let mut lifecycle = self.lock();
        while matches!(lifecycle.phase, Phase::ShuttingDown) {
            lifecycle = self.wait(lifecycle);
        }
        if matches!(lifecycle.phase, Phase::Running(_)) || lifecycle.lingering.is_some() {
            let running = matches!(lifecycle.phase, Phase::Running(_));
            drop(lifecycle);
            // Another thread won the race to start (ours goes unused), or a shutdown that
            // timed out slipped in between: never a second engine next to a live one.
            drop(plugins);
            return if running {
                Ok(self.reused(&config))
            } else {
                Err(self.still_stopping(config.shutdown_timeout()))
            };
        }
        self.clients
            .configure(config.client_lease(), config.event_queue_capacity());
        let engine = self.start_engine()?;
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let services = Arc::new(Services {
            engine: Mutex::new(Arc::new(engine)),
            plugins,
            output: Output::default(),
            config: config.clone(),
            supervisor_stop: stop_tx,
            supervisor: Mutex::new(None),
        });
        let supervisor = {
            let clients = self.clients.clone();
            let services = Arc::downgrade(&services);
            let gate = self.command_gate.clone();
            let name = self.name.clone();
            let threads = self.threads.clone();
            let restarts = self.engine_restarts_total.clone();
            self.threads
                .spawn(&format!("{}-supervisor", self.name), move || {
                    let recovery = Recovery {
                        name: &name,
                        clients: &clients,
                        threads: &threads,
                        restarts: &restarts,
                    };
                    supervise(&recovery, &services, &gate, &stop_rx)
                })
        };
        let supervisor = match supervisor {
            Ok(handle) => handle,
            Err(e) => {
                let _ = services.engine().shutdown(config.shutdown_timeout());
                return Err(HostError::Internal(format!(
                    "cannot start supervisor thread: {e}"
                )));
            }
        };
        *lock(&services.supervisor) = Some(supervisor);
        let inits = self.inits_total.fetch_add(1, Ordering::SeqCst) + 1;
        lifecycle.phase = Phase::Running(services);
        self.clients.open();
        self.lifecycle_changed.notify_all();
        tracing::info!(
            host = %self.name,
            inits_total = inits,
            data_dir = %data_dir.display(),
            lease_ms = config.client_lease().as_millis() as u64,
            "runtime host initialised"
        );
        Ok(InitOutcome::Started)
    }

    fn start_engine(&self) -> Result<Engine> {
        start_engine(&self.name, &self.clients, &self.threads)
    }

    /// After a shutdown that timed out: waits (at most `timeout`) for the old runtime's
    /// threads to end, then lets it go. Refuses when they are still alive.
    fn wait_for_lingering(&self, timeout: Duration) -> Result<()> {
        if self.lock().lingering.is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        while self.threads.alive() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if self.threads.alive() > 0 {
            return Err(self.still_stopping(timeout));
        }
        let old = self.lock().lingering.take();
        // Its threads are gone: dropping it joins nothing that could block.
        drop(old);
        tracing::info!(host = %self.name, "the runtime that timed out at shutdown has stopped");
        Ok(())
    }

    fn still_stopping(&self, timeout: Duration) -> HostError {
        let threads_left = self.threads.alive();
        tracing::error!(host = %self.name, threads_left, "init refused: the previous runtime is still stopping");
        HostError::ShutdownTimeout {
            timeout_ms: timeout.as_millis() as u64,
            threads_left,
        }
    }

    fn reused(&self, config: &HostConfig) -> InitOutcome {
        if let Phase::Running(services) = &self.lock().phase {
            if services.config != *config {
                tracing::warn!(host = %self.name, "runtime already running; the new config is ignored until shutdown");
            }
        }
        tracing::info!(
            host = %self.name,
            inits_total = self.inits_total.load(Ordering::SeqCst),
            clients_active = self.clients.active(),
            "runtime host reused"
        );
        InitOutcome::Reused
    }

    fn start_plugins(&self, config: &HostConfig) -> Option<Arc<PluginRuntime>> {
        let plugin_dir = config.resolved_plugin_dir();
        let clients = self.clients.clone();
        let notices: stellatune_plugin_host::NoticeSink = Arc::new(move |notice| {
            let payload = serde_json::from_str(&notice.json)
                .unwrap_or(serde_json::Value::String(notice.json));
            clients.broadcast(HostEvent::Host(HostNotice::PluginEvent {
                plugin_id: notice.plugin_id,
                kind: notice.kind,
                payload,
            }));
        });
        match PluginRuntime::start(&plugin_dir, &config.resolved_data_dir(), notices) {
            Ok(runtime) => Some(Arc::new(runtime)),
            Err(e) => {
                tracing::warn!(plugin_dir = %plugin_dir.display(), error = %e, "plugin runtime unavailable; playing without plugins");
                None
            }
        }
    }

    /// Enters a call: the runtime must be running, and shutdown waits until it returns.
    fn enter(&self) -> Result<Call<'_>> {
        let mut lifecycle = self.lock();
        let services = match &lifecycle.phase {
            Phase::Running(services) => services.clone(),
            Phase::ShuttingDown => return Err(HostError::ShuttingDown),
            Phase::Uninit | Phase::Stopped => return Err(HostError::NotInitialized),
        };
        lifecycle.in_flight += 1;
        Ok(Call {
            host: self,
            services,
        })
    }

    /// Enters a call of client `id`, which must be live.
    fn enter_client(&self, id: u64) -> Result<ClientCall<'_>> {
        let call = self.enter()?;
        match self.clients.begin_call(id) {
            Ok(queue) => Ok(ClientCall { call, id, queue }),
            Err(e) => {
                // The check may have evicted a client whose lease ran out: maybe the last.
                self.stop_if_no_clients(&call.services);
                Err(e)
            }
        }
    }

    fn gate_shared(&self) -> std::sync::RwLockReadGuard<'_, ()> {
        self.command_gate
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn gate_exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.command_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops playback, evicts every client, waits for the calls in flight, joins every
    /// runtime thread and returns when they are gone. Without a running host it does
    /// nothing (it never starts one to stop it).
    pub fn shutdown(&self) -> Result<()> {
        let services = {
            let mut lifecycle = self.lock();
            loop {
                match &lifecycle.phase {
                    Phase::Running(_) => break,
                    Phase::ShuttingDown => lifecycle = self.wait(lifecycle),
                    Phase::Uninit | Phase::Stopped => {
                        tracing::debug!(host = %self.name, "shutdown without a running host: nothing to do");
                        return Ok(());
                    }
                }
            }
            match std::mem::replace(&mut lifecycle.phase, Phase::ShuttingDown) {
                Phase::Running(services) => services,
                _ => unreachable!("checked above"),
            }
        };
        let started = Instant::now();
        let timeout = services.config.shutdown_timeout();
        let deadline = started + timeout;
        tracing::info!(host = %self.name, clients_active = self.clients.active(), "runtime host shutting down");
        // The supervisor may itself be waiting for the gate: stop it before taking the gate.
        let _ = services.supervisor_stop.send(());
        if let Some(handle) = lock(&services.supervisor).take() {
            let _ = handle.join();
        }
        {
            // Exclusive: waits for client commands in flight. Closing the registry evicts
            // every client, refuses new ones and wakes every waiting poll.
            let _gate = self.gate_exclusive();
            self.clients.close("runtime shut down");
            let _ = self.clients.take_emptied();
        }
        // Plugin operations and anything else still inside a call finish first.
        let drained = {
            let mut lifecycle = self.lock();
            while lifecycle.in_flight > 0 && Instant::now() < deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                lifecycle = self
                    .lifecycle_changed
                    .wait_timeout(lifecycle, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            lifecycle.in_flight == 0
        };
        if !drained {
            tracing::error!(host = %self.name, "calls still in flight at the shutdown deadline");
        }
        let engine = services.engine();
        // The engine's own shutdown stops playback and closes the sink, within the deadline
        // (a separate stop-and-clear would wait on the engine's fixed command timeout).
        services.output.reset();
        let stopped = engine.shutdown(deadline.saturating_duration_since(Instant::now()));
        drop(engine);
        // With the engine gone no instance is left: every generation unloads as soon as the
        // last holder of the runtime lets go, which is us, below.
        if let Some(plugins) = &services.plugins {
            plugins.shutdown();
        }
        let timed_out = stopped.is_err() || !drained;
        let lingering = if timed_out {
            Some(services)
        } else {
            drop(services);
            None
        };
        while self.threads.alive() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let threads_left = self.threads.alive();
        {
            let mut lifecycle = self.lock();
            lifecycle.phase = Phase::Stopped;
            lifecycle.lingering = lingering.filter(|_| threads_left > 0);
            self.lifecycle_changed.notify_all();
        }
        if timed_out || threads_left > 0 {
            tracing::error!(host = %self.name, threads_left, "runtime host shutdown timed out");
            return Err(HostError::ShutdownTimeout {
                timeout_ms: timeout.as_millis() as u64,
                threads_left,
            });
        }
        tracing::info!(
            host = %self.name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "runtime host shut down; all runtime threads joined"
        );
        Ok(())
    }

    /// Starts a new client generation: every older client is evicted at once, playback
    /// stops and the output route is cleared. Returns the new generation.
    pub fn prepare_hot_restart(&self) -> Result<u64> {
        let call = self.enter()?;
        let services = &call.services;
        let _gate = self.gate_exclusive();
        let (generation, evicted, _) = self
            .clients
            .roll_generation(!services.config.faults().skip_eviction);
        let _ = self.clients.take_emptied();
        services.output.stop_and_clear(&services.engine())?;
        tracing::info!(host = %self.name, generation, evicted = evicted.len(), "prepared for hot restart");
        Ok(generation)
    }

    pub fn attach_client(&self) -> Result<ClientSession> {
        let call = self.enter()?;
        if call.services.config.faults().leak_thread_per_attach {
            tracing::error!("fault injection: leaking a thread for this attach");
            let _ = std::thread::Builder::new()
                .name("stellatune-leaked".into())
                .spawn(std::thread::park);
        }
        // Refused if a shutdown closed the registry since `enter`: a client never outlives
        // the runtime it attached to.
        let (session, active) = self.clients.attach().map_err(|_| HostError::ShuttingDown)?;
        tracing::info!(host = %self.name, client_id = session.id, generation = session.generation, clients_active = active, "client attached");
        Ok(session)
    }

    pub fn detach_client(&self, id: u64) -> Result<()> {
        let call = self.enter()?;
        let left = self.clients.detach(id);
        if let Ok(left) = left {
            tracing::info!(host = %self.name, client_id = id, clients_active = left, "client detached");
        }
        self.stop_if_no_clients(&call.services);
        left.map(|_| ())
    }

    /// When the last client is gone nobody can hear or steer playback: stop it.
    fn stop_if_no_clients(&self, services: &Services) {
        if self.clients.take_emptied() {
            let _gate = self.gate_exclusive();
            if self.clients.active() == 0 {
                tracing::info!(host = %self.name, "no clients left: stopping playback and clearing the route");
                let _ = services.output.stop_and_clear(&services.engine());
            }
        }
    }

    /// Runs `command` for live client `id` under the shared gate, so evictions wait until the
    /// engine has answered. A dead engine is restarted.
    fn client_command<T>(
        &self,
        id: u64,
        command: impl FnOnce(&Services, &Engine) -> std::result::Result<T, AudioError>,
    ) -> Result<T> {
        let call = self.enter_client(id)?;
        self.command_as(&call, command)
    }

    fn command_as<T>(
        &self,
        call: &ClientCall<'_>,
        command: impl FnOnce(&Services, &Engine) -> std::result::Result<T, AudioError>,
    ) -> Result<T> {
        let services = &call.call.services;
        let engine = services.engine();
        let outcome = {
            let _gate = self.gate_shared();
            // Checked again under the gate: an eviction may have come between.
            self.clients.is_live(call.id)?;
            command(services, &engine)
        };
        if matches!(outcome, Err(AudioError::EngineStopped)) && !engine.is_running() {
            self.recovery()
                .recover(services, &engine, &self.command_gate);
        }
        Ok(outcome?)
    }

    fn recovery(&self) -> Recovery<'_> {
        Recovery {
            name: &self.name,
            clients: &self.clients,
            threads: &self.threads,
            restarts: &self.engine_restarts_total,
        }
    }

    pub fn play(&self, id: u64, path: &Path) -> Result<TrackId> {
        let call = self.enter_client(id)?;
        let source = TrackSource::open(path)?;
        self.command_as(&call, |_, e| e.play_source(source))
    }

    pub fn queue_next(&self, id: u64, path: &Path) -> Result<TrackId> {
        let call = self.enter_client(id)?;
        let source = TrackSource::open(path)?;
        self.command_as(&call, |_, e| e.queue_next_source(source))
    }

    pub fn pause(&self, id: u64) -> Result<()> {
        self.client_command(id, |_, e| e.pause())
    }

    pub fn resume(&self, id: u64) -> Result<()> {
        self.client_command(id, |_, e| e.resume())
    }

    pub fn stop(&self, id: u64) -> Result<()> {
        self.client_command(id, |_, e| e.stop())
    }

    pub fn seek_ms(&self, id: u64, position_ms: u64) -> Result<()> {
        self.client_command(id, |_, e| e.seek_ms(position_ms))
    }

    pub fn set_volume(&self, id: u64, volume: f32) -> Result<()> {
        self.client_command(id, |_, e| e.set_volume(volume))
    }

    pub fn apply_route(&self, id: u64, route: OutputRoute) -> Result<()> {
        let call = self.enter_client(id)?;
        // A plugin sink instance is created here, on the caller's thread.
        let factory = route.factory(call.call.services.plugins.as_deref())?;
        self.command_as(&call, |s, e| s.output.apply_route(e, route, factory))
    }

    pub fn clear_route(&self, id: u64) -> Result<()> {
        self.client_command(id, |s, e| s.output.clear_route(e))
    }

    /// Sets the DSP chain (plugin transforms, in order) between the decoder and the output;
    /// an empty chain removes it. Stages are created here, on the caller's thread.
    pub fn set_dsp_chain(&self, id: u64, chain: Vec<DspSpec>) -> Result<()> {
        let call = self.enter_client(id)?;
        let stages = chain
            .iter()
            .map(|spec| spec.stage(call.call.services.plugins.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        self.command_as(&call, |s, e| s.output.set_dsp_chain(e, chain, stages))
    }

    fn plugins(&self) -> Result<(Call<'_>, Arc<PluginRuntime>)> {
        let call = self.enter()?;
        let plugins = call
            .services
            .plugins
            .clone()
            .ok_or(HostError::PluginsUnavailable)?;
        Ok((call, plugins))
    }

    /// Installs a plugin directory or .zip and activates it. If the current route plays
    /// through an older generation of it, the route moves to the new one at once.
    pub fn plugins_install(&self, artifact: &Path) -> Result<String> {
        let (call, plugins) = self.plugins()?;
        let id = plugins.install(artifact)?;
        let generation = plugins
            .list()
            .into_iter()
            .find(|p| p.id == id)
            .and_then(|p| p.generation);
        tracing::info!(plugin = %id, generation, "plugin installed");
        self.clients
            .broadcast(HostEvent::Host(HostNotice::PluginInstalled {
                plugin_id: id.clone(),
                generation,
            }));
        self.move_to_new_generation(&call.services, &plugins, &[id.as_str()]);
        Ok(id)
    }

    /// Uninstalls a plugin. A route playing through it keeps playing until it is cleared;
    /// then its generation unloads and its shadow copy goes.
    pub fn plugins_uninstall(&self, id: &str) -> Result<()> {
        let (_call, plugins) = self.plugins()?;
        plugins.uninstall(id)?;
        self.clients
            .broadcast(HostEvent::Host(HostNotice::PluginUninstalled {
                plugin_id: id.to_owned(),
            }));
        Ok(())
    }

    /// Re-reads the plugin directory; changed plugins get a new generation, and a route
    /// playing through one of them moves to it at once (the old generation drains).
    pub fn plugins_reload(&self) -> Result<stellatune_plugin_host::ReloadReport> {
        let (call, plugins) = self.plugins()?;
        let report = plugins.reload();
        tracing::info!(?report, "plugins reloaded");
        let changed: Vec<&str> = report
            .reloaded
            .iter()
            .chain(&report.loaded)
            .map(String::as_str)
            .collect();
        self.move_to_new_generation(&call.services, &plugins, &changed);
        self.clients
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
    pub fn plugins_force_reload(&self, id: &str) -> Result<u64> {
        let (call, plugins) = self.plugins()?;
        let generation = plugins.force_reload(id)?;
        self.move_to_new_generation(&call.services, &plugins, &[id]);
        Ok(generation)
    }

    pub fn plugins_list(&self) -> Result<Vec<stellatune_plugin_host::PluginInfo>> {
        Ok(self.plugins()?.1.list())
    }

    /// Moves the route and the DSP chain to the new generations of `changed` plugins.
    fn move_to_new_generation(
        &self,
        services: &Services,
        plugins: &PluginRuntime,
        changed: &[&str],
    ) {
        self.move_dsp_to_new_generation(services, plugins, changed);
        let route = services.output.route();
        let Some(route) = route.filter(|r| r.plugin_id().is_some_and(|id| changed.contains(&id)))
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
        let _gate = self.gate_shared();
        // A rollover or another route may have come meanwhile: then this one is stale.
        if !services.output.is_current(&route) {
            return;
        }
        let plugin = route.plugin_id().map(str::to_owned);
        match services
            .output
            .apply_route(&services.engine(), route, factory)
        {
            Ok(()) => tracing::info!(
                plugin = plugin.as_deref(),
                "route moved to the new plugin generation"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "moving the route to the new plugin generation failed")
            }
        }
    }

    fn move_dsp_to_new_generation(
        &self,
        services: &Services,
        plugins: &PluginRuntime,
        changed: &[&str],
    ) {
        let chain = services.output.dsp_chain();
        if !chain
            .iter()
            .any(|s| changed.contains(&s.plugin_id.as_str()))
        {
            return;
        }
        let stages = chain
            .iter()
            .map(|spec| spec.stage(Some(plugins)))
            .collect::<Result<Vec<_>>>();
        let _gate = self.gate_shared();
        if services.output.dsp_chain() != chain {
            return;
        }
        let moved = stages.and_then(|s| {
            Ok(services
                .output
                .set_dsp_chain(&services.engine(), chain, s)?)
        });
        match moved {
            Ok(()) => tracing::info!("dsp chain moved to the new plugin generation"),
            Err(e) => {
                tracing::warn!(error = %e, "the dsp chain could not move to the new plugin generation")
            }
        }
    }

    pub fn status(&self, id: u64) -> Result<EngineStatus> {
        self.client_command(id, |_, e| e.status())
    }

    /// Waits up to `timeout` for the client's next event and offers it to `read`; see
    /// [`crate::EventQueue::poll_with`]. A poll is a call of the client: it stays alive while
    /// it waits, and its lease counts from the moment the poll returns.
    pub fn poll_event_with<R>(
        &self,
        id: u64,
        timeout: Duration,
        read: impl FnMut(&HostEvent) -> (R, bool),
    ) -> Result<Polled<R>> {
        let call = self.enter_client(id)?;
        // The queue, not the host, is waited on: no host lock is held while blocked. An
        // eviction or shutdown closes the queue, which ends the wait at once.
        match call.queue.poll_with(timeout, read) {
            Polled::Closed(_) => {
                Err(self
                    .clients
                    .is_live(id)
                    .err()
                    .unwrap_or(HostError::ClientEvicted {
                        id,
                        reason: "queue closed".into(),
                    }))
            }
            polled => Ok(polled),
        }
    }

    /// The next event, or `None` when none came within `timeout`.
    pub fn poll_event(&self, id: u64, timeout: Duration) -> Result<Option<HostEvent>> {
        match self.poll_event_with(id, timeout, |e| (e.clone(), true))? {
            Polled::Taken(event) | Polled::Declined(event) => Ok(Some(event)),
            Polled::TimedOut | Polled::Closed(_) => Ok(None),
        }
    }

    /// Makes the engine's control thread panic (tests of crash recovery).
    #[cfg(feature = "fault-injection")]
    pub fn inject_engine_panic(&self) -> Result<()> {
        let call = self.enter()?;
        call.services.engine().inject_panic();
        Ok(())
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let plugins = match &self.lock().phase {
            Phase::Running(services) => services.plugins.clone(),
            _ => None,
        };
        let mut snapshot = MetricsSnapshot {
            state: self.state(),
            runtime_host_inits_total: self.inits_total.load(Ordering::SeqCst),
            player_clients_active: self.clients.active() as u64,
            client_generation: self.clients.generation(),
            clients_evicted_total: self.clients.evictions_total(),
            client_events_queued: self.clients.queued_events() as u64,
            runtime_threads: self.threads.alive() as u64,
            engine_restarts_total: self.engine_restarts_total.load(Ordering::SeqCst),
            ..MetricsSnapshot::default()
        };
        if let Some(plugins) = plugins {
            snapshot.add_plugin_metrics(plugins.metrics());
        }
        snapshot
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn start_engine(
    name: &str,
    clients: &Arc<ClientRegistry>,
    threads: &ThreadCounter,
) -> Result<Engine> {
    let clients = clients.clone();
    Ok(Engine::start(
        EngineConfig {
            name: name.to_owned(),
            threads: threads.clone(),
        },
        Arc::new(move |event| clients.broadcast(HostEvent::Engine(event))),
    )?)
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        if self.state() == LifecycleState::Running {
            let _ = self.shutdown();
        }
    }
}

/// What it takes to replace a dead engine, from a command's thread or the supervisor's.
struct Recovery<'a> {
    name: &'a str,
    clients: &'a Arc<ClientRegistry>,
    threads: &'a ThreadCounter,
    restarts: &'a AtomicU64,
}

impl Recovery<'_> {
    /// Replaces `dead` (an engine whose control thread ended while the host runs) with a
    /// fresh one, unless someone already did. Playback stops; the route and the DSP chain
    /// are re-applied, so the clients can simply play again; they are told with an
    /// `engine_restarted` notice.
    fn recover(&self, services: &Services, dead: &Arc<Engine>, gate: &RwLock<()>) {
        let (route, chain) = {
            let _gate = gate.write().unwrap_or_else(PoisonError::into_inner);
            let mut current = lock(&services.engine);
            if !Arc::ptr_eq(&current, dead) || dead.is_running() {
                return;
            }
            // The control thread is gone: joining it is immediate.
            let _ = dead.shutdown(Duration::from_millis(100));
            let fresh = match start_engine(self.name, self.clients, self.threads) {
                Ok(engine) => engine,
                Err(e) => {
                    tracing::error!(host = %self.name, error = %e, "the engine died and could not be restarted");
                    return;
                }
            };
            *current = Arc::new(fresh);
            let kept = (services.output.route(), services.output.dsp_chain());
            services.output.reset();
            kept
        };
        let restarts = self.restarts.fetch_add(1, Ordering::SeqCst) + 1;
        tracing::error!(host = %self.name, engine_restarts_total = restarts, "the engine's control thread died; a fresh engine was started");
        // Plugin instances are made with no gate held; the engine calls under the shared gate.
        let plugins = services.plugins.as_deref();
        let engine = services.engine();
        if !chain.is_empty() {
            let stages = chain
                .iter()
                .map(|spec| spec.stage(plugins))
                .collect::<Result<Vec<_>>>();
            let _gate = gate.read().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) =
                stages.and_then(|s| Ok(services.output.set_dsp_chain(&engine, chain, s)?))
            {
                tracing::warn!(error = %e, "the dsp chain could not be re-applied after the engine restart");
            }
        }
        if let Some(route) = route {
            let factory = route.factory(plugins);
            let _gate = gate.read().unwrap_or_else(PoisonError::into_inner);
            if let Err(e) =
                factory.and_then(|f| Ok(services.output.apply_route(&engine, route, f)?))
            {
                tracing::warn!(error = %e, "the route could not be re-applied after the engine restart");
            }
        }
        self.clients
            .broadcast(HostEvent::Host(HostNotice::EngineRestarted {
                reason: "the engine's control thread died".into(),
            }));
    }
}

/// Evicts clients whose lease ran out, waking at the nearest deadline, and replaces an
/// engine that died.
fn supervise(
    recovery: &Recovery<'_>,
    services: &std::sync::Weak<Services>,
    gate: &RwLock<()>,
    stop: &crossbeam_channel::Receiver<()>,
) {
    const MAX_NAP: Duration = Duration::from_millis(500);
    const MIN_NAP: Duration = Duration::from_millis(5);
    let clients = recovery.clients;
    loop {
        let nap = clients
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(MAX_NAP)
            .clamp(MIN_NAP, MAX_NAP);
        match stop.recv_timeout(nap) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(services) = services.upgrade() else {
            return;
        };
        if !services.config.faults().skip_eviction {
            // Logged, counted and announced by the registry.
            clients.evict_expired();
        }
        if clients.take_emptied() {
            // Re-checked under the gate: a new client may have attached (and started
            // playing) since the last one left.
            let _gate = gate.write().unwrap_or_else(PoisonError::into_inner);
            if clients.active() == 0 {
                tracing::info!(host = %recovery.name, "no clients left: stopping playback and clearing the route");
                let _ = services.output.stop_and_clear(&services.engine());
            }
        }
        let engine = services.engine();
        if !engine.is_running() {
            recovery.recover(&services, &engine, gate);
        }
    }
}
