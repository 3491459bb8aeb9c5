//! The RuntimeHost: one per process, the lifecycle machine over the parts that own the state.
//!
//! The state is split by owner, and each owner is the only one to touch its part:
//! - [`Sessions`] (`sessions.rs`): the client registry, the command gate, the lease
//!   supervisor, event polling. It lives as long as the host, across runtimes.
//! - [`Runtime`] (`runtime.rs`): what one `init` starts: the engine (and its restart after a
//!   control-thread panic), the [`crate::output::Output`] (the desired route and DSP chain,
//!   the only stop-and-clear) and the [`crate::plugin_ops::PluginOps`].
//! - This file: the lifecycle (`Uninit`, `Running`, `ShuttingDown`, `Stopped`), the calls in
//!   flight, a runtime kept aside after a shutdown that timed out, and the public API, which
//!   enters a call and hands it to the owner.
//!
//! Dependencies go one way: the host holds the sessions and the running runtime; the runtime
//! holds the sessions it reports to; the supervisor sees the runtime only weakly, through
//! [`Watched`]. Nothing holds the host.
//!
//! Concurrency model (docs/runtime.md has the long form). Every public method may be called
//! from any thread at any moment:
//! - Every call except `init`, `shutdown`, `state` and `metrics` is a *call in flight* from
//!   the moment it found the runtime running until it returns. `shutdown` first turns the
//!   state to `ShuttingDown` (new calls get [`HostError::ShuttingDown`]), then closes the
//!   sessions (which stops the supervisor before taking the gate, then evicts every client)
//!   and waits for the calls in flight before it tears anything down.
//! - `init` during a shutdown waits for it and then starts a fresh runtime; an `init` after a
//!   shutdown that timed out waits for the old runtime's threads and refuses to start a
//!   second engine next to one that is still alive.
//! - Client commands hold the command gate shared; eviction (rollover, lease, last client)
//!   and shutdown hold it exclusively, so a command of a client evicted a moment ago never
//!   reaches the engine. No thread holds the gate while it waits for another thread that
//!   may want it.
//! - No lock is held across blocking I/O, a plugin call or a process spawn: plugins load and
//!   plugin instances are made before any lock or the gate is taken.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use stellatune_audio::{AudioError, Engine, EngineStatus, ThreadCounter, TrackId, TrackSource};

use crate::clients::ClientSession;
use crate::config::HostConfig;
use crate::error::{HostError, Result};
use crate::events::{HostEvent, Polled};
use crate::logging::LogFileClaim;
use crate::metrics::MetricsSnapshot;
use crate::plugin_ops::PluginOps;
use crate::route::{DspSpec, OutputRoute};
use crate::runtime::Runtime;
use crate::sessions::{Sessions, Turn, Watched};

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

enum Phase {
    Uninit,
    Running(Arc<Runtime>),
    ShuttingDown,
    Stopped,
}

struct Lifecycle {
    phase: Phase,
    /// Calls that found the runtime running and have not returned; shutdown waits for them.
    in_flight: usize,
    /// A runtime whose shutdown timed out: kept (not dropped, which would block) until its
    /// threads are gone, so that no second engine starts next to it.
    lingering: Option<Arc<Runtime>>,
    /// The running runtime's log file (`<data_dir>/logs`), closed by shutdown.
    log_file: Option<LogFileClaim>,
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
    /// Shared with the running runtime (it broadcasts events and takes the gate to restart
    /// the engine) and with the supervisor thread.
    sessions: Arc<Sessions>,
    threads: ThreadCounter,
    inits_total: AtomicU64,
    engine_restarts_total: Arc<AtomicU64>,
}

/// A call in flight: holds the running runtime and keeps shutdown waiting until dropped.
struct Call<'h> {
    host: &'h RuntimeHost,
    runtime: Arc<Runtime>,
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

/// A call of one client: on top of [`Call`], the client's [`Turn`]. The turn is declared
/// first so that it ends (the lease restarts) before the call does.
struct ClientCall<'h> {
    turn: Turn<'h>,
    call: Call<'h>,
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
                log_file: None,
            }),
            lifecycle_changed: Condvar::new(),
            sessions: Arc::new(Sessions::new(name)),
            threads: ThreadCounter::new(),
            inits_total: AtomicU64::new(0),
            engine_restarts_total: Arc::new(AtomicU64::new(0)),
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
        let log_file = LogFileClaim::open(&data_dir, config.log_max_files());
        if let Some(file) = &log_file {
            // Plugin loading below goes to this runtime's file already, unless a runtime is
            // running or stopping: its file stays until it has stopped. Should another init
            // start its runtime first, that one re-installs its own file when it starts.
            let lifecycle = self.lock();
            if matches!(lifecycle.phase, Phase::Uninit | Phase::Stopped) {
                file.install();
            }
        }
        let plugins = PluginOps::start(&config, &self.sessions);
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
        self.sessions
            .configure(config.client_lease(), config.event_queue_capacity());
        let runtime = Arc::new(Runtime::start(
            &self.name,
            &self.sessions,
            &self.threads,
            &self.engine_restarts_total,
            config.clone(),
            plugins,
        )?);
        let watched: Weak<dyn Watched> = Arc::downgrade(&runtime) as Weak<Runtime>;
        if let Err(e) = self
            .sessions
            .start_supervisor(&self.threads, watched.clone())
        {
            let _ = runtime.engine().shutdown(config.shutdown_timeout());
            return Err(HostError::Internal(format!(
                "cannot start supervisor thread: {e}"
            )));
        }
        if let Err(e) = self.sessions.start_pump(&self.threads, watched) {
            // Stops the supervisor again; nobody attached yet.
            self.sessions.close("runtime failed to start");
            let _ = runtime.engine().shutdown(config.shutdown_timeout());
            return Err(HostError::Internal(format!(
                "cannot start event pump thread: {e}"
            )));
        }
        let inits = self.inits_total.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(file) = &log_file {
            file.install();
        }
        lifecycle.log_file = log_file;
        lifecycle.phase = Phase::Running(runtime);
        self.sessions.open();
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

    /// After a shutdown that timed out: waits (at most `timeout`) for the old runtime's
    /// threads to end, then lets it go. Refuses when they are still alive.
    fn wait_for_lingering(&self, timeout: Duration) -> Result<()> {
        if self.lock().lingering.is_none() {
            return Ok(());
        }
        if !self.threads.wait_until_zero(timeout) {
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
        if let Phase::Running(runtime) = &self.lock().phase {
            if runtime.config != *config {
                tracing::warn!(host = %self.name, "runtime already running; the new config is ignored until shutdown");
            }
        }
        tracing::info!(
            host = %self.name,
            inits_total = self.inits_total.load(Ordering::SeqCst),
            clients_active = self.sessions.active(),
            "runtime host reused"
        );
        InitOutcome::Reused
    }

    /// Enters a call: the runtime must be running, and shutdown waits until it returns.
    fn enter(&self) -> Result<Call<'_>> {
        let mut lifecycle = self.lock();
        let runtime = match &lifecycle.phase {
            Phase::Running(runtime) => runtime.clone(),
            Phase::ShuttingDown => return Err(HostError::ShuttingDown),
            Phase::Uninit | Phase::Stopped => return Err(HostError::NotInitialized),
        };
        lifecycle.in_flight += 1;
        Ok(Call {
            host: self,
            runtime,
        })
    }

    /// Enters a call of client `id`, which must be live.
    fn enter_client(&self, id: u64) -> Result<ClientCall<'_>> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        // A client found expired may have been the last: then the output stops.
        let turn = self.sessions.begin(id, || {
            let _ = runtime.stop_and_clear();
        })?;
        Ok(ClientCall { turn, call })
    }

    /// Stops playback, evicts every client, waits for the calls in flight, joins every
    /// runtime thread and returns when they are gone. Without a running host it does
    /// nothing (it never starts one to stop it).
    pub fn shutdown(&self) -> Result<()> {
        let runtime = {
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
                Phase::Running(runtime) => runtime,
                _ => unreachable!("checked above"),
            }
        };
        let started = Instant::now();
        let timeout = runtime.config.shutdown_timeout();
        let deadline = started + timeout;
        tracing::info!(host = %self.name, clients_active = self.sessions.active(), "runtime host shutting down");
        // Stops the supervisor first (it may be waiting for the gate), then evicts every
        // client under the exclusive gate, refuses new ones and wakes every waiting poll.
        self.sessions.close("runtime shut down");
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
        let stopped = runtime.stop(deadline.saturating_duration_since(Instant::now()));
        let timed_out = stopped.is_err() || !drained;
        let lingering = if timed_out {
            Some(runtime)
        } else {
            // The last holder of the runtime: its plugin generations unload here.
            drop(runtime);
            None
        };
        // Woken by the last counted thread's end, not by polling.
        self.threads
            .wait_until_zero(deadline.saturating_duration_since(Instant::now()));
        let threads_left = self.threads.alive();
        let log_file = {
            let mut lifecycle = self.lock();
            lifecycle.phase = Phase::Stopped;
            lifecycle.lingering = lingering.filter(|_| threads_left > 0);
            self.lifecycle_changed.notify_all();
            lifecycle.log_file.take()
        };
        let result = if timed_out || threads_left > 0 {
            tracing::error!(host = %self.name, threads_left, "runtime host shutdown timed out");
            Err(HostError::ShutdownTimeout {
                timeout_ms: timeout.as_millis() as u64,
                threads_left,
            })
        } else {
            tracing::info!(
                host = %self.name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "runtime host shut down; all runtime threads joined"
            );
            Ok(())
        };
        // The last lines above are in the file; now it is closed, also after a timeout, so
        // that the data dir can be deleted (threads still stopping log to stderr alone).
        drop(log_file);
        result
    }

    /// Starts a new client generation: every older client is evicted at once, playback
    /// stops and the output route is cleared. Returns the new generation.
    pub fn prepare_hot_restart(&self) -> Result<u64> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        self.sessions
            .roll_generation(runtime.evicts(), || runtime.stop_and_clear())
    }

    pub fn attach_client(&self) -> Result<ClientSession> {
        let call = self.enter()?;
        if call.runtime.config.faults().leak_thread_per_attach {
            tracing::error!("fault injection: leaking a thread for this attach");
            let _ = std::thread::Builder::new()
                .name("stellatune-leaked".into())
                .spawn(std::thread::park);
        }
        let runtime = &call.runtime;
        self.sessions.attach(|| {
            let _ = runtime.stop_and_clear();
        })
    }

    pub fn detach_client(&self, id: u64) -> Result<()> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        // The last client gone: nobody can hear or steer playback, so it stops.
        self.sessions.detach(id, || {
            let _ = runtime.stop_and_clear();
        })
    }

    /// Runs `command` for live client `id` under the shared gate, so evictions wait until the
    /// engine has answered. A dead engine is restarted.
    fn client_command<T>(
        &self,
        id: u64,
        command: impl FnOnce(&Runtime, &Engine) -> std::result::Result<T, AudioError>,
    ) -> Result<T> {
        let call = self.enter_client(id)?;
        command_as(&call, command)
    }

    pub fn play(&self, id: u64, path: &Path) -> Result<TrackId> {
        let call = self.enter_client(id)?;
        let source = TrackSource::open(path)?;
        command_as(&call, |_, e| e.play_source(source))
    }

    pub fn queue_next(&self, id: u64, path: &Path) -> Result<TrackId> {
        let call = self.enter_client(id)?;
        let source = TrackSource::open(path)?;
        command_as(&call, |_, e| e.queue_next_source(source))
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

    /// How ReplayGain applies, for every client (there is one engine): from now on in the
    /// track playing, and to every later track. A restarted engine keeps it.
    pub fn set_replaygain(
        &self,
        id: u64,
        settings: stellatune_audio::ReplayGainSettings,
    ) -> Result<()> {
        self.client_command(id, |r, e| r.set_replaygain(e, settings))
    }

    pub fn apply_route(&self, id: u64, route: OutputRoute) -> Result<()> {
        let call = self.enter_client(id)?;
        // A plugin sink instance is created here, on the caller's thread, with no gate held.
        let factory = route.factory(call.call.runtime.plugins.runtime())?;
        command_as(&call, |r, e| r.output.apply_route(e, route, factory))
    }

    pub fn clear_route(&self, id: u64) -> Result<()> {
        self.client_command(id, |r, e| r.output.clear_route(e))
    }

    /// Sets the DSP chain (plugin transforms, in order) between the decoder and the output;
    /// an empty chain removes it. Stages are created here, on the caller's thread.
    pub fn set_dsp_chain(&self, id: u64, chain: Vec<DspSpec>) -> Result<()> {
        let call = self.enter_client(id)?;
        let plugins = call.call.runtime.plugins.runtime();
        let stages = chain
            .iter()
            .map(|spec| spec.stage(plugins))
            .collect::<Result<Vec<_>>>()?;
        command_as(&call, |r, e| r.output.set_dsp_chain(e, chain, stages))
    }

    /// Installs a plugin directory or .zip and activates it. If the current route plays
    /// through an older generation of it, the route moves to the new one at once.
    pub fn plugins_install(&self, artifact: &Path) -> Result<String> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        runtime.plugins.install(artifact, &runtime.plugin_target())
    }

    /// Uninstalls a plugin. A route playing through it keeps playing until it is cleared;
    /// then its generation unloads and its shadow copy goes.
    pub fn plugins_uninstall(&self, id: &str) -> Result<()> {
        let call = self.enter()?;
        call.runtime.plugins.uninstall(id, &self.sessions)
    }

    /// Re-reads the plugin directory; changed plugins get a new generation, and a route
    /// playing through one of them moves to it at once (the old generation drains).
    pub fn plugins_reload(&self) -> Result<stellatune_plugin_host::ReloadReport> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        runtime.plugins.reload(&runtime.plugin_target())
    }

    /// Loads a fresh generation of one plugin even if its files did not change.
    pub fn plugins_force_reload(&self, id: &str) -> Result<u64> {
        let call = self.enter()?;
        let runtime = &call.runtime;
        runtime.plugins.force_reload(id, &runtime.plugin_target())
    }

    pub fn plugins_list(&self) -> Result<Vec<stellatune_plugin_host::PluginInfo>> {
        self.enter()?.runtime.plugins.list()
    }

    /// Every output the runtime can play to now, read fresh: the system's devices (led by
    /// the entry that follows the default) and every target of every plugin output sink.
    /// Plugins are asked on the caller's thread, with no lock held and without the engine.
    pub fn output_devices(&self) -> Result<Vec<crate::OutputDevice>> {
        let call = self.enter()?;
        let mut devices = crate::devices::system_devices()?;
        if let Some(plugins) = call.runtime.plugins.runtime() {
            devices.extend(crate::devices::plugin_devices(plugins));
        }
        Ok(devices)
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
        self.sessions.poll(&call.turn, timeout, read)
    }

    /// Sends client `id`'s events to `port` from now on, posted by the runtime's event pump
    /// thread; `None` switches back to polling. While it has a port the client's polls are
    /// refused, every successful post renews its lease, an idle port gets a heartbeat after
    /// [`crate::HEARTBEAT_AFTER`], and a failed post evicts the client at once
    /// ([`crate::PORT_CLOSED`]).
    pub fn set_event_port(&self, id: u64, port: Option<Arc<dyn crate::EventPort>>) -> Result<()> {
        let call = self.enter_client(id)?;
        self.sessions.set_port(&call.turn, port)
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
        call.runtime.engine().inject_panic();
        Ok(())
    }

    /// The one place a [`MetricsSnapshot`] is built.
    pub fn metrics(&self) -> MetricsSnapshot {
        let running = match &self.lock().phase {
            Phase::Running(runtime) => Some(runtime.clone()),
            _ => None,
        };
        // Read with no lifecycle lock held: the plugin runtime takes its own locks.
        let plugins = running
            .as_ref()
            .and_then(|runtime| runtime.plugins.metrics());
        let engine_underruns = running
            .as_ref()
            .map_or(0, |runtime| runtime.engine().underruns_total());
        let mut snapshot = MetricsSnapshot {
            state: self.state(),
            runtime_host_inits_total: self.inits_total.load(Ordering::SeqCst),
            player_clients_active: self.sessions.active() as u64,
            client_generation: self.sessions.generation(),
            clients_evicted_total: self.sessions.evictions_total(),
            client_events_queued: self.sessions.queued_events() as u64,
            runtime_threads: self.threads.alive() as u64,
            engine_restarts_total: self.engine_restarts_total.load(Ordering::SeqCst),
            audio_underruns_total: engine_underruns,
            ..MetricsSnapshot::default()
        };
        if let Some(plugins) = plugins {
            snapshot.add_plugin_metrics(plugins);
        }
        snapshot
    }
}

/// Runs `command` as a call of the client of `call`: the running runtime takes it from here.
fn command_as<T>(
    call: &ClientCall<'_>,
    command: impl FnOnce(&Runtime, &Engine) -> std::result::Result<T, AudioError>,
) -> Result<T> {
    call.call.runtime.command(&call.turn, command)
}

impl Drop for RuntimeHost {
    fn drop(&mut self) {
        if self.state() == LifecycleState::Running {
            let _ = self.shutdown();
        }
    }
}
