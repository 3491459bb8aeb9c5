//! The RuntimeHost: one per process, owning the one engine and every process-wide service.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};
use serde::Serialize;
use stellatune_audio::{
    AudioError, Engine, EngineConfig, EngineStatus, ThreadCounter, TrackId, TrackSource,
};

use crate::clients::{ClientRegistry, ClientSession, Evicted};
use crate::config::HostConfig;
use crate::error::{HostError, Result};
use crate::events::{HostEvent, HostNotice, Polled};
use crate::metrics::MetricsSnapshot;
use crate::route::{DspSpec, OutputRoute};
use stellatune_plugins::PluginRuntime;

static GLOBAL: LazyLock<RuntimeHost> = LazyLock::new(|| RuntimeHost::new("stellatune"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
    engine: Engine,
    /// `None` when the plugin directory is unusable: the runtime then plays without plugins.
    plugins: Option<Arc<PluginRuntime>>,
    /// The route as last applied, kept to re-create plugin sinks after a reload.
    route: Mutex<Option<OutputRoute>>,
    /// The DSP chain as last set, for the same reason.
    dsp_chain: Mutex<Vec<DspSpec>>,
    config: HostConfig,
    supervisor_stop: Sender<()>,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

enum Lifecycle {
    Uninit,
    Running(Arc<Services>),
    ShuttingDown,
    Stopped,
}

impl Services {
    fn faults(&self) -> crate::config::FaultInjection {
        self.config.fault_injection.clone().unwrap_or_default()
    }
}

impl Lifecycle {
    fn state(&self) -> LifecycleState {
        match self {
            Lifecycle::Uninit => LifecycleState::Uninit,
            Lifecycle::Running(_) => LifecycleState::Running,
            Lifecycle::ShuttingDown => LifecycleState::ShuttingDown,
            Lifecycle::Stopped => LifecycleState::Stopped,
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
    evictions_total: Arc<AtomicU64>,
    /// Commands hold it shared; eviction and shutdown hold it exclusively, so a command from
    /// a client evicted a moment ago can never reach the engine after the eviction.
    command_gate: Arc<RwLock<()>>,
}

impl RuntimeHost {
    pub fn global() -> &'static RuntimeHost {
        &GLOBAL
    }

    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            lifecycle: Mutex::new(Lifecycle::Uninit),
            lifecycle_changed: Condvar::new(),
            clients: Arc::new(ClientRegistry::new()),
            threads: ThreadCounter::new(),
            inits_total: AtomicU64::new(0),
            evictions_total: Arc::new(AtomicU64::new(0)),
            command_gate: Arc::new(RwLock::new(())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn state(&self) -> LifecycleState {
        self.lock().state()
    }

    /// Starts the engine, or does nothing if it runs already. Safe to call from every
    /// bootstrap of every isolate.
    pub fn init(&self, config: HostConfig) -> Result<InitOutcome> {
        config.validate()?;
        crate::logging::init_logging(
            config.log_filter.as_deref(),
            config.log_format.unwrap_or_default(),
        );
        let running = matches!(*self.lock(), Lifecycle::Running(_));
        if running {
            return Ok(self.reused(&config));
        }
        // Directory set-up and plugin loading do file I/O and call into plugins: never under
        // the lifecycle lock.
        let data_dir = config.resolved_data_dir();
        if let Err(e) = std::fs::create_dir_all(&data_dir) {
            tracing::warn!(data_dir = %data_dir.display(), error = %e, "data directory is not usable; features that store files will fail");
        }
        let plugins = self.start_plugins(&config);
        let mut lifecycle = self.lock();
        while matches!(*lifecycle, Lifecycle::ShuttingDown) {
            lifecycle = self
                .lifecycle_changed
                .wait(lifecycle)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if let Lifecycle::Running(_) = &*lifecycle {
            drop(lifecycle);
            // Another thread won the race to start; ours goes unused.
            drop(plugins);
            return Ok(self.reused(&config));
        }
        self.clients
            .configure(config.client_lease(), config.event_queue_capacity());
        let clients = self.clients.clone();
        let engine = Engine::start(
            EngineConfig {
                name: self.name.clone(),
                threads: self.threads.clone(),
            },
            Arc::new(move |event| clients.broadcast(HostEvent::Engine(event))),
        )?;
        let (stop_tx, stop_rx) = bounded::<()>(1);
        let services = Arc::new(Services {
            engine,
            plugins,
            route: Mutex::new(None),
            dsp_chain: Mutex::new(Vec::new()),
            config: config.clone(),
            supervisor_stop: stop_tx,
            supervisor: Mutex::new(None),
        });
        let supervisor = {
            let clients = self.clients.clone();
            let services = Arc::downgrade(&services);
            let evictions = self.evictions_total.clone();
            let name = self.name.clone();
            let gate = self.command_gate.clone();
            self.threads
                .spawn(&format!("{}-supervisor", self.name), move || {
                    supervise(&name, &clients, &services, &gate, &evictions, &stop_rx)
                })
        };
        let supervisor = match supervisor {
            Ok(handle) => handle,
            Err(e) => {
                let _ = services.engine.shutdown(config.shutdown_timeout());
                return Err(HostError::Internal(format!(
                    "cannot start supervisor thread: {e}"
                )));
            }
        };
        *services
            .supervisor
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(supervisor);
        let inits = self.inits_total.fetch_add(1, Ordering::SeqCst) + 1;
        *lifecycle = Lifecycle::Running(services);
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

    fn reused(&self, config: &HostConfig) -> InitOutcome {
        if let Ok(services) = self.services() {
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
        let notices: stellatune_plugins::NoticeSink = Arc::new(move |notice| {
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

    fn services(&self) -> Result<Arc<Services>> {
        match &*self.lock() {
            Lifecycle::Running(services) => Ok(services.clone()),
            Lifecycle::ShuttingDown => Err(HostError::ShuttingDown),
            Lifecycle::Uninit | Lifecycle::Stopped => Err(HostError::NotInitialized),
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

    /// Stops playback, evicts every client, joins every runtime thread and returns when they
    /// are gone. Without a running host it does nothing (it never starts one to stop it).
    pub fn shutdown(&self) -> Result<()> {
        let services = {
            let mut lifecycle = self.lock();
            loop {
                match &*lifecycle {
                    Lifecycle::Running(_) => break,
                    Lifecycle::ShuttingDown => {
                        lifecycle = self
                            .lifecycle_changed
                            .wait(lifecycle)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    Lifecycle::Uninit | Lifecycle::Stopped => {
                        tracing::debug!(host = %self.name, "shutdown without a running host: nothing to do");
                        return Ok(());
                    }
                }
            }
            match std::mem::replace(&mut *lifecycle, Lifecycle::ShuttingDown) {
                Lifecycle::Running(services) => services,
                _ => unreachable!("checked above"),
            }
        };
        let started = Instant::now();
        let timeout = services.config.shutdown_timeout();
        tracing::info!(host = %self.name, clients_active = self.clients.active(), "runtime host shutting down");
        let result = {
            let _gate = self.gate_exclusive();
            let evicted = self.clients.evict_all("runtime shut down");
            self.count_evictions(&evicted);
            let _ = self.clients.take_emptied();
            let _ = services.supervisor_stop.send(());
            let supervisor = services
                .supervisor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(handle) = supervisor {
                let _ = handle.join();
            }
            let _ = self.stop_and_clear(&services);
            let stopped = services.engine.shutdown(timeout);
            // With the engine gone no instance is left: every generation unloads now.
            if let Some(plugins) = &services.plugins {
                plugins.shutdown();
            }
            stopped
        };
        drop(services);
        let deadline = started + timeout;
        while self.threads.alive() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let threads_left = self.threads.alive();
        {
            let mut lifecycle = self.lock();
            *lifecycle = Lifecycle::Stopped;
            self.lifecycle_changed.notify_all();
        }
        if result.is_err() || threads_left > 0 {
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
        let services = self.services()?;
        let _gate = self.gate_exclusive();
        let (generation, evicted, left) = self
            .clients
            .roll_generation(!services.faults().skip_eviction);
        self.count_evictions(&evicted);
        for e in &evicted {
            tracing::warn!(host = %self.name, client_id = e.id, generation = e.generation, reason = %e.reason, clients_active = left, "client evicted");
        }
        let _ = self.clients.take_emptied();
        self.stop_and_clear(&services)?;
        tracing::info!(host = %self.name, generation, evicted = evicted.len(), "prepared for hot restart");
        Ok(generation)
    }

    fn count_evictions(&self, evicted: &[Evicted]) {
        self.evictions_total
            .fetch_add(evicted.len() as u64, Ordering::SeqCst);
    }

    pub fn attach_client(&self) -> Result<ClientSession> {
        let services = self.services()?;
        if services.faults().leak_thread_per_attach {
            tracing::error!("fault injection: leaking a thread for this attach");
            let _ = std::thread::Builder::new()
                .name("stellatune-leaked".into())
                .spawn(std::thread::park);
        }
        let (session, active) = self.clients.attach();
        tracing::info!(host = %self.name, client_id = session.id, generation = session.generation, clients_active = active, "client attached");
        Ok(session)
    }

    pub fn detach_client(&self, id: u64) -> Result<()> {
        let services = self.services()?;
        let left = self.clients.detach(id)?;
        tracing::info!(host = %self.name, client_id = id, clients_active = left, "client detached");
        self.stop_if_no_clients(&services);
        Ok(())
    }

    /// When the last client is gone nobody can hear or steer playback: stop it.
    fn stop_if_no_clients(&self, services: &Services) {
        if self.clients.take_emptied() {
            let _gate = self.gate_exclusive();
            if self.clients.active() == 0 {
                tracing::info!(host = %self.name, "no clients left: stopping playback and clearing the route");
                let _ = self.stop_and_clear(services);
            }
        }
    }

    /// Runs `command` for live client `id`: renews its lease, and keeps evictions out until
    /// the engine has answered.
    fn client_command<T>(
        &self,
        id: u64,
        command: impl FnOnce(&Engine) -> std::result::Result<T, AudioError>,
    ) -> Result<T> {
        let services = self.services()?;
        let outcome = {
            let _gate = self.gate_shared();
            match self.clients.touch(id) {
                Ok(_) => Ok(command(&services.engine)?),
                Err(e) => Err(e),
            }
        };
        if outcome.is_err() {
            self.stop_if_no_clients(&services);
        }
        outcome
    }

    /// Checks the client before any file I/O, so a dead client costs nothing.
    fn check_client(&self, id: u64) -> Result<()> {
        self.touch(id).map(|_| ())
    }

    fn touch(&self, id: u64) -> Result<Arc<crate::events::EventQueue>> {
        let services = self.services()?;
        let touched = self.clients.touch(id);
        if touched.is_err() {
            // The touch may have evicted a client whose lease ran out: it may have been the last.
            self.stop_if_no_clients(&services);
        }
        touched
    }

    pub fn play(&self, id: u64, path: &Path) -> Result<TrackId> {
        self.check_client(id)?;
        let source = TrackSource::open(path)?;
        self.client_command(id, |e| e.play_source(source))
    }

    pub fn queue_next(&self, id: u64, path: &Path) -> Result<TrackId> {
        self.check_client(id)?;
        let source = TrackSource::open(path)?;
        self.client_command(id, |e| e.queue_next_source(source))
    }

    pub fn pause(&self, id: u64) -> Result<()> {
        self.client_command(id, Engine::pause)
    }

    pub fn resume(&self, id: u64) -> Result<()> {
        self.client_command(id, Engine::resume)
    }

    pub fn stop(&self, id: u64) -> Result<()> {
        self.client_command(id, Engine::stop)
    }

    pub fn seek_ms(&self, id: u64, position_ms: u64) -> Result<()> {
        self.client_command(id, |e| e.seek_ms(position_ms))
    }

    pub fn set_volume(&self, id: u64, volume: f32) -> Result<()> {
        self.client_command(id, |e| e.set_volume(volume))
    }

    pub fn apply_route(&self, id: u64, route: OutputRoute) -> Result<()> {
        let services = self.services()?;
        self.check_client(id)?;
        let factory = route.factory(services.plugins.as_deref())?;
        // The route is recorded under the same gate as the engine call, so a rollover never
        // sees an engine route the host does not know about.
        self.client_command(id, |e| {
            e.apply_route(factory)?;
            *lock(&services.route) = Some(route);
            Ok(())
        })
    }

    pub fn clear_route(&self, id: u64) -> Result<()> {
        let services = self.services()?;
        self.client_command(id, |e| {
            e.clear_route()?;
            *lock(&services.route) = None;
            Ok(())
        })
    }

    /// Sets the DSP chain (plugin transforms, in order) between the decoder and the output;
    /// an empty chain removes it. Stages are created here, on the caller's thread.
    pub fn set_dsp_chain(&self, id: u64, chain: Vec<DspSpec>) -> Result<()> {
        let services = self.services()?;
        self.check_client(id)?;
        let stages = chain
            .iter()
            .map(|spec| spec.stage(services.plugins.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        self.client_command(id, |e| {
            e.set_dsp_chain(stages)?;
            *lock(&services.dsp_chain) = chain;
            Ok(())
        })
    }

    fn plugins(&self) -> Result<(Arc<Services>, Arc<PluginRuntime>)> {
        let services = self.services()?;
        let plugins = services
            .plugins
            .clone()
            .ok_or(HostError::PluginsUnavailable)?;
        Ok((services, plugins))
    }

    /// Installs a plugin directory or .zip and activates it. If the current route plays
    /// through an older generation of it, the route moves to the new one at once.
    pub fn plugins_install(&self, artifact: &Path) -> Result<String> {
        let (services, plugins) = self.plugins()?;
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
        self.move_route_to_new_generation(&services, &plugins, &[id.as_str()]);
        Ok(id)
    }

    /// Uninstalls a plugin. A route playing through it keeps playing until it is cleared;
    /// then its generation unloads and its shadow copy goes.
    pub fn plugins_uninstall(&self, id: &str) -> Result<()> {
        let (_, plugins) = self.plugins()?;
        plugins.uninstall(id)?;
        self.clients
            .broadcast(HostEvent::Host(HostNotice::PluginUninstalled {
                plugin_id: id.to_owned(),
            }));
        Ok(())
    }

    /// Re-reads the plugin directory; changed plugins get a new generation, and a route
    /// playing through one of them moves to it at once (the old generation drains).
    pub fn plugins_reload(&self) -> Result<stellatune_plugins::ReloadReport> {
        let (services, plugins) = self.plugins()?;
        let report = plugins.reload();
        tracing::info!(?report, "plugins reloaded");
        let changed: Vec<&str> = report
            .reloaded
            .iter()
            .chain(&report.loaded)
            .map(String::as_str)
            .collect();
        self.move_route_to_new_generation(&services, &plugins, &changed);
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
        let (services, plugins) = self.plugins()?;
        let generation = plugins.force_reload(id)?;
        self.move_route_to_new_generation(&services, &plugins, &[id]);
        Ok(generation)
    }

    pub fn plugins_list(&self) -> Result<Vec<stellatune_plugins::PluginInfo>> {
        Ok(self.plugins()?.1.list())
    }

    fn move_route_to_new_generation(
        &self,
        services: &Services,
        plugins: &PluginRuntime,
        changed: &[&str],
    ) {
        self.move_dsp_to_new_generation(services, plugins, changed);
        let route = lock(&services.route).clone();
        let Some(route) = route.filter(|r| r.plugin_id().is_some_and(|id| changed.contains(&id)))
        else {
            return;
        };
        let factory = match route.factory(Some(plugins)) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "the new plugin generation could not take over the route");
                return;
            }
        };
        let _gate = self.gate_shared();
        if lock(&services.route).as_ref() != Some(&route) {
            return;
        }
        match services.engine.apply_route(factory) {
            Ok(()) => tracing::info!(
                plugin = route.plugin_id(),
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
        let chain = lock(&services.dsp_chain).clone();
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
        match stages.and_then(|s| Ok(services.engine.set_dsp_chain(s)?)) {
            Ok(()) => tracing::info!("dsp chain moved to the new plugin generation"),
            Err(e) => {
                tracing::warn!(error = %e, "the dsp chain could not move to the new plugin generation")
            }
        }
    }

    /// Stops playback and clears the route; the caller holds the gate exclusively.
    fn stop_and_clear(&self, services: &Services) -> Result<()> {
        // The DSP chain belongs to the session that set it.
        if !std::mem::take(&mut *lock(&services.dsp_chain)).is_empty() {
            let _ = services.engine.set_dsp_chain(Vec::new());
        }
        // Nothing can play without a route, and every route goes through this host: without
        // one there is nothing to stop, and the engine round trips are saved.
        if lock(&services.route).is_none() {
            return Ok(());
        }
        if let Err(e) = services.engine.stop() {
            tracing::warn!(error = %e, "stopping playback failed");
        }
        let cleared = services.engine.clear_route();
        *lock(&services.route) = None;
        Ok(cleared?)
    }

    pub fn status(&self, id: u64) -> Result<EngineStatus> {
        self.client_command(id, Engine::status)
    }

    /// Waits up to `timeout` for the client's next event and offers it to `read`; see
    /// [`crate::EventQueue::poll_with`]. Renews the lease, so a front end that polls stays alive.
    pub fn poll_event_with<R>(
        &self,
        id: u64,
        timeout: Duration,
        mut read: impl FnMut(&HostEvent) -> (R, bool),
    ) -> Result<Polled<R>> {
        let deadline = Instant::now() + timeout;
        // A reader blocked in a long poll is alive: it renews its lease every quarter lease.
        let slice = (self.clients.lease() / 4).max(Duration::from_millis(1));
        loop {
            let queue = self.touch(id)?;
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(slice);
            // The queue, not the host, is waited on: no host lock is held while blocked.
            match queue.poll_with(wait, &mut read) {
                Polled::TimedOut if Instant::now() < deadline => continue,
                Polled::Closed(_) => {
                    return Err(self
                        .clients
                        .touch(id)
                        .err()
                        .unwrap_or(HostError::ClientEvicted {
                            id,
                            reason: "queue closed".into(),
                        }));
                }
                polled => return Ok(polled),
            }
        }
    }

    /// The next event, or `None` when none came within `timeout`.
    pub fn poll_event(&self, id: u64, timeout: Duration) -> Result<Option<HostEvent>> {
        match self.poll_event_with(id, timeout, |e| (e.clone(), true))? {
            Polled::Taken(event) | Polled::Declined(event) => Ok(Some(event)),
            Polled::TimedOut | Polled::Closed(_) => Ok(None),
        }
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let plugins = self
            .services()
            .ok()
            .and_then(|s| s.plugins.as_ref().map(|p| p.metrics()));
        let mut snapshot = MetricsSnapshot {
            state: self.state(),
            runtime_host_inits_total: self.inits_total.load(Ordering::SeqCst),
            player_clients_active: self.clients.active() as u64,
            client_generation: self.clients.generation(),
            clients_evicted_total: self.evictions_total.load(Ordering::SeqCst),
            client_events_queued: self.clients.queued_events() as u64,
            runtime_threads: self.threads.alive() as u64,
            ..MetricsSnapshot::default()
        };
        if let Some(plugins) = plugins {
            snapshot.add_plugin_metrics(plugins);
        }
        snapshot
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        if self.state() == LifecycleState::Running {
            let _ = self.shutdown();
        }
    }
}

/// Evicts clients whose lease ran out, waking at the nearest deadline.
fn supervise(
    name: &str,
    clients: &ClientRegistry,
    services: &std::sync::Weak<Services>,
    gate: &RwLock<()>,
    evictions: &AtomicU64,
    stop: &crossbeam_channel::Receiver<()>,
) {
    const MAX_NAP: Duration = Duration::from_millis(500);
    const MIN_NAP: Duration = Duration::from_millis(5);
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
        let skip = services.upgrade().is_some_and(|s| s.faults().skip_eviction);
        let (evicted, left) = if skip {
            (Vec::new(), clients.active())
        } else {
            clients.evict_expired()
        };
        if !evicted.is_empty() {
            evictions.fetch_add(evicted.len() as u64, Ordering::SeqCst);
            for e in &evicted {
                tracing::warn!(host = %name, client_id = e.id, generation = e.generation, reason = %e.reason, clients_active = left, "client evicted");
            }
            clients.announce_evictions(&evicted);
        }
        if clients.take_emptied() {
            // Re-checked under the gate: a new client may have attached (and started
            // playing) since the last one left.
            let _gate = gate.write().unwrap_or_else(PoisonError::into_inner);
            if let (0, Some(services)) = (clients.active(), services.upgrade()) {
                tracing::info!(host = %name, "no clients left: stopping playback and clearing the route");
                let _ = services.engine.stop();
                let _ = services.engine.clear_route();
                *lock(&services.route) = None;
            }
        }
    }
}
