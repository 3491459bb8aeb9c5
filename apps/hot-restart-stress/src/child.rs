//! The child process: loads the library once and runs the cycles, one simulated isolate each,
//! streaming a sample per cycle to the parent as one JSON line on stdout.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Args, Events, Fault, mode_name};
use crate::ffi::{ABI_VERSION, Api, Watchdog};
use crate::ports::{IsolatePort, fake_post_cobject};
use crate::sample::{
    ChildMessage, RuntimeMetrics, Sample, ShutdownReport, proc_stats, ring_files, shadow_copies,
    shadow_mapped,
};

/// Stop early after this many lost connections in a row: the runtime is wedged.
const MAX_CONSECUTIVE_LOST: u64 = 3;
/// Stop early after this many failed cycles in a row: the route or track is broken.
const MAX_CONSECUTIVE_FAILED: u64 = 5;
/// Poll timeout of one `poll_event` call while confirming playback.
const POLL_MS: u32 = 100;
/// Where `--seek` seeks to; the generated track is longer.
pub const SEEK_TO_MS: u64 = 1000;
/// How long a cycle keeps polling while its route plays through an uninstalled plugin.
const UNINSTALLED_PLAY: Duration = Duration::from_millis(300);
/// How long sidecar processes may take to exit after the final shutdown returned.
const SIDECAR_EXIT_WAIT: Duration = Duration::from_secs(2);
/// Bound for the final shutdown call (it joins the runtime's threads).
pub fn shutdown_bound(call_timeout: Duration) -> Duration {
    call_timeout.max(Duration::from_secs(15))
}

fn emit(message: &ChildMessage) {
    let line = serde_json::to_string(message).expect("messages serialise");
    let mut out = std::io::stdout().lock();
    // The parent gone means nobody reads: nothing useful is left to do with the error.
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn fatal(message: String) -> ExitCode {
    eprintln!("hot-restart-stress child: {message}");
    emit(&ChildMessage::Fatal { message });
    ExitCode::from(3)
}

struct Cycler {
    wd: Watchdog,
    config: String,
    route: String,
    wav: PathBuf,
    data_dir: PathBuf,
    confirm_timeout: Duration,
    seek: bool,
    pause: bool,
    churn: Option<PathBuf>,
    /// The churned plugin's id (from its plugin.json), for uninstall.
    churn_id: String,
    churn_uninstall_every: u64,
    install: Vec<PathBuf>,
    /// `player_clients_active` right after this cycle's client attached.
    peak_clients: Option<u64>,
    /// `--events port`: each isolate hands over the fake post function and listens on a port.
    events: Events,
    /// The port of the isolate alive now (`--events port`); dropped when it dies.
    port: Option<IsolatePort>,
}

impl Cycler {
    fn call<R: Send + 'static>(
        &mut self,
        name: &'static str,
        f: impl FnOnce(&Api) -> crate::ffi::FfiResult<R> + Send + 'static,
    ) -> Result<R, String> {
        self.wd.call(name, f).map_err(|e| e.to_string())
    }

    /// One isolate's life: bootstrap, route, play, confirm, actions, churn; then it dies
    /// (the client is dropped here without dispose, and nobody polls it again).
    fn cycle(&mut self, cycle: u64, prepare: bool, dies_at: Instant) -> Result<(), String> {
        let result = self.live(cycle, prepare, dies_at);
        // The isolate dies: its port closes (and with it, at the next post, its client).
        self.port = None;
        result
    }

    fn live(&mut self, cycle: u64, prepare: bool, dies_at: Instant) -> Result<(), String> {
        if self.events == Events::Port {
            // Every bootstrap hands it over again, before init, as a Dart isolate does.
            self.call("stellatune_dart_set_post_cobject", |api| {
                api.set_post_cobject(fake_post_cobject)
            })?;
        }
        let config = self.config.clone();
        self.call("stellatune_runtime_init", move |api| api.init(&config))?;
        if prepare {
            self.call("stellatune_runtime_prepare_hot_restart", |api| {
                api.prepare_hot_restart()
            })?;
        }
        if cycle == 1 {
            let dirs: Vec<PathBuf> = self
                .install
                .iter()
                .chain(self.churn.iter())
                .cloned()
                .collect();
            for dir in dirs {
                self.call("stellatune_plugins_install", move |api| {
                    api.plugins_install(&dir)
                })?;
            }
        }
        let client = self.call("stellatune_player_create_client", |api| api.create_client())?;
        if self.events == Events::Port {
            let port = IsolatePort::open();
            let native = port.port;
            self.port = Some(port);
            self.call("stellatune_player_set_event_port", move |api| {
                api.set_event_port(client, native)
            })?;
        }
        // The peak: the new client next to whatever older clients are still alive.
        self.peak_clients = Some(self.metrics()?.player_clients_active);
        let route = self.route.clone();
        self.call("stellatune_output_route_apply", move |api| {
            api.route_apply(client, &route)
        })?;
        let wav = self.wav.clone();
        self.call("stellatune_player_play", move |api| api.play(client, &wav))?;

        let deadline = Instant::now() + self.confirm_timeout;
        let mut track = None;
        self.wait_for(client, deadline, "track_started then position", |event| {
            match event["type"].as_str() {
                Some("track_started") => track = event["track_id"].as_u64(),
                Some("position") => {
                    return track.is_some() && event["track_id"].as_u64() == track;
                }
                _ => {}
            }
            false
        })?;

        if self.seek {
            self.call("stellatune_player_seek_ms", move |api| {
                api.seek_ms(client, SEEK_TO_MS)
            })?;
            let deadline = Instant::now() + self.confirm_timeout;
            self.wait_for(client, deadline, "position after seek", |event| {
                event["type"] == "position"
                    && event["track_id"].as_u64() == track
                    && event["position_ms"]
                        .as_u64()
                        .is_some_and(|p| p >= SEEK_TO_MS)
            })?;
        }
        if self.pause {
            self.call("stellatune_player_pause", move |api| api.pause(client))?;
            self.call("stellatune_player_resume", move |api| api.resume(client))?;
        }
        if let Some(dir) = self.churn.clone() {
            let again = dir.clone();
            self.call("stellatune_plugins_install", move |api| {
                api.plugins_install(&again)
            })?;
            self.call("stellatune_plugins_reload", |api| api.plugins_reload())?;
            let every = self.churn_uninstall_every;
            if every > 0 && cycle % every == 0 {
                self.uninstall_and_reinstall(client, dir, (cycle / every) % 2 == 1)?;
            }
        }
        // The rest of the isolate's life: its event loop keeps polling.
        self.poll_until(client, dies_at, |_| false).map(|_| ())
    }

    /// Uninstalls the churned plugin and installs it again: `live`, while the route plays
    /// through it (the route must keep playing: the isolate then polls on, and an `error`
    /// event fails the cycle); else after the route was cleared, so nothing uses it.
    fn uninstall_and_reinstall(
        &mut self,
        client: u64,
        dir: PathBuf,
        live: bool,
    ) -> Result<(), String> {
        if !live {
            self.call("stellatune_output_route_clear", move |api| {
                api.route_clear(client)
            })?;
        }
        let id = self.churn_id.clone();
        self.call("stellatune_plugins_uninstall", move |api| {
            api.plugins_uninstall(&id)
        })?;
        if live {
            // The music goes on from the uninstalled generation for a moment.
            let deadline = Instant::now() + UNINSTALLED_PLAY;
            self.poll_until(client, deadline, |_| false)?;
        }
        self.call("stellatune_plugins_install", move |api| {
            api.plugins_install(&dir)
        })
        .map(|_| ())
    }

    /// Polls `client` until `done` accepts an event (true) or `deadline` passes (false). A
    /// playback `error` event fails at once.
    fn poll_until(
        &mut self,
        client: u64,
        deadline: Instant,
        mut done: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<bool, String> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            let timeout = (left.as_millis() as u32).clamp(1, POLL_MS);
            let polled = match &self.port {
                // The isolate's ReceivePort: nothing is called in the runtime for events.
                Some(port) => match port
                    .events
                    .recv_timeout(Duration::from_millis(u64::from(timeout)))
                {
                    Ok(text) => Some(text),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                        return Err("the event port was disconnected".into());
                    }
                },
                None => self.call("stellatune_player_poll_event", move |api| {
                    api.poll_event(client, timeout)
                })?,
            };
            let Some(text) = polled else { continue };
            let event: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| format!("event is not JSON ({e}): {text}"))?;
            if event["type"] == "error" {
                return Err(format!("playback error event: {text}"));
            }
            if done(&event) {
                return Ok(true);
            }
        }
    }

    /// As [`Cycler::poll_until`], failing when the deadline passes first.
    fn wait_for(
        &mut self,
        client: u64,
        deadline: Instant,
        what: &str,
        done: impl FnMut(&serde_json::Value) -> bool,
    ) -> Result<(), String> {
        let started = Instant::now();
        if self.poll_until(client, deadline, done)? {
            Ok(())
        } else {
            Err(format!(
                "no {what} within {} ms",
                started.elapsed().as_millis()
            ))
        }
    }

    fn metrics(&mut self) -> Result<RuntimeMetrics, String> {
        let text = self.call("stellatune_runtime_metrics_json", |api| api.metrics_json())?;
        serde_json::from_str(&text).map_err(|e| format!("metrics JSON ({e}): {text}"))
    }

    fn sample(&mut self, cycle: u64, prepare: bool, cycle_ms: u64, elapsed: Duration) -> Sample {
        let metrics = self.metrics();
        let stats = proc_stats();
        Sample {
            cycle,
            mode: mode_name(prepare).to_owned(),
            elapsed_ms: elapsed.as_millis() as u64,
            cycle_ms,
            confirmed: false,
            lost_connections: self.wd.lost_connections,
            error: metrics.as_ref().err().map(|e| format!("metrics: {e}")),
            threads: stats.threads,
            fds: stats.fds,
            rss_kb: stats.rss_kb,
            sidecars: stats.sidecars,
            zombies: stats.zombies,
            rings: ring_files(&self.data_dir),
            shadow_copies: shadow_copies(&self.data_dir),
            shadow_mapped: shadow_mapped(&self.data_dir),
            peak_clients: self.peak_clients.take(),
            metrics: metrics.ok(),
        }
    }

    fn shutdown(&mut self) -> ShutdownReport {
        let bound = shutdown_bound(self.wd.timeout());
        let result = self
            .wd
            .call_with_timeout("stellatune_runtime_shutdown", bound, |api| api.shutdown());
        let metrics = self.metrics().ok();
        // Sidecars are told to stop at shutdown; give them a moment to exit.
        let deadline = Instant::now() + SIDECAR_EXIT_WAIT;
        let mut stats = proc_stats();
        while stats.sidecars > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            stats = proc_stats();
        }
        ShutdownReport {
            ok: result.is_ok(),
            error: result.err().map(|e| e.to_string()),
            runtime_threads_after: metrics.map(|m| m.runtime_threads),
            threads_after: stats.threads,
            sidecars_after: stats.sidecars,
            zombies_after: stats.zombies,
        }
    }
}

pub fn run(args: &Args) -> ExitCode {
    let Some(run_dir) = args.run_dir.clone() else {
        return fatal("--child needs --run-dir".into());
    };
    let lib = match crate::resolve_lib(args) {
        Ok(lib) => lib,
        Err(e) => return fatal(e),
    };
    // Loaded once, by explicit (absolute) path, and never unloaded.
    let api = match Api::load(&lib) {
        Ok(api) => api,
        Err(e) => return fatal(e),
    };
    let abi = api.abi();
    if abi != ABI_VERSION {
        return fatal(format!(
            "{} has ABI version {abi}, the gate speaks {ABI_VERSION}",
            lib.display()
        ));
    }
    emit(&ChildMessage::Hello {
        pid: std::process::id(),
        abi_version: abi,
        lib: lib.display().to_string(),
    });

    let data_dir = run_dir.join("data");
    let mut config = serde_json::json!({
        "data_dir": data_dir,
        "log_filter": args.log_filter,
    });
    // Left out unless asked for, so that the gate runs on the runtime's default lease.
    if let Some(lease_ms) = args.lease_ms {
        config["client_lease_ms"] = lease_ms.into();
    }
    let leak = args.has_fault(Fault::LeakThreadPerAttach);
    let skip = args.has_fault(Fault::SkipEviction);
    if leak || skip {
        config["fault_injection"] = serde_json::json!({
            "leak_thread_per_attach": leak,
            "skip_eviction": skip,
        });
    }

    let call_timeout = Duration::from_millis(args.call_timeout_ms);
    let mut cycler = Cycler {
        wd: Watchdog::new(Arc::new(api), call_timeout),
        config: config.to_string(),
        route: args.route.to_json(&run_dir),
        wav: crate::track_path(&run_dir),
        data_dir,
        confirm_timeout: Duration::from_millis(args.confirm_timeout_ms),
        seek: args.seek,
        pause: args.pause,
        churn: args.plugin_churn.clone(),
        churn_id: args
            .plugin_churn
            .as_deref()
            .map_or_else(String::new, crate::plugin_id_of),
        churn_uninstall_every: args.churn_uninstall_every,
        install: args.install_plugin.clone(),
        peak_clients: None,
        events: args.events,
        port: None,
    };

    let started = Instant::now();
    let limit = args.cycle_limit();
    let (mut consecutive_lost, mut consecutive_failed) = (0u64, 0u64);
    let mut cycle = 0u64;
    let stop_reason = loop {
        if limit.is_some_and(|n| cycle >= n) {
            break format!("completed {cycle} cycles");
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break format!("duration reached after {cycle} cycles");
        }
        cycle += 1;
        let prepare = args.mode.prepares(cycle);
        let lost_before = cycler.wd.lost_connections;
        let cycle_started = Instant::now();
        let dies_at = cycle_started + Duration::from_millis(args.isolate_ms);
        let result = cycler.cycle(cycle, prepare, dies_at);
        let cycle_ms = cycle_started.elapsed().as_millis() as u64;

        if cycle == 2 && args.has_fault(Fault::StallCall) {
            let stall = call_timeout + Duration::from_millis(300);
            let _ = cycler
                .wd
                .call("stellatune_runtime_metrics_json", move |api| {
                    std::thread::sleep(stall);
                    api.metrics_json()
                });
        }

        let mut sample = cycler.sample(cycle, prepare, cycle_ms, started.elapsed());
        sample.confirmed = result.is_ok();
        if let Err(e) = result {
            sample.error = Some(e);
        }
        consecutive_failed = if sample.confirmed {
            0
        } else {
            consecutive_failed + 1
        };
        consecutive_lost = if cycler.wd.lost_connections > lost_before {
            consecutive_lost + (cycler.wd.lost_connections - lost_before)
        } else {
            0
        };
        emit(&ChildMessage::Sample(sample));

        if cycle == 2 && args.has_fault(Fault::AbortChild) {
            eprintln!("hot-restart-stress child: fault injection: aborting after cycle 2");
            std::process::abort();
        }
        if consecutive_lost >= MAX_CONSECUTIVE_LOST {
            break format!(
                "stopped after cycle {cycle}: {consecutive_lost} lost connections in a row"
            );
        }
        if consecutive_failed >= MAX_CONSECUTIVE_FAILED {
            break format!(
                "stopped after cycle {cycle}: {consecutive_failed} failed cycles in a row"
            );
        }
        if args.interval_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.interval_ms));
        }
    };

    // App exit: shut the runtime down, as a front end does before the process ends.
    let shutdown = cycler.shutdown();
    emit(&ChildMessage::Done {
        cycles: cycle,
        lost_connections: cycler.wd.lost_connections,
        stop_reason,
        shutdown: Some(shutdown),
    });
    ExitCode::SUCCESS
}
