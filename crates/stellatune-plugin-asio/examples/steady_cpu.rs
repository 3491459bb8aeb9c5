//! Steady-state cost of playback: CPU of this (host) process and of its sidecar while a
//! 44.1 kHz stereo tone plays in real time through `plugin:asio@null` (or, with
//! `--route null`, through the built-in paced null sink, for comparison), read from
//! `/proc/<pid>/stat` (utime + stime) at the start and the end of the window, plus a per-thread
//! breakdown from `/proc/<pid>/task/*/stat`, and wake-ups: the voluntary context switches
//! (`voluntary_ctxt_switches` in `/proc/<pid>/task/*/status`) of every thread of the host
//! process and of the sidecar, per second of the window.
//!
//! The main thread behaves like a front end: it waits for the client's events (up to a
//! second per poll, like a UI thread that wakes for each event and once a second otherwise)
//! for the whole window. The engine sends four `position` events a second while playing, so
//! the front end wakes about four times a second.
//!
//! ```sh
//! cargo build --release --workspace && bash scripts/package-plugins.sh release
//! cargo run --release -p stellatune-plugin-asio --example steady_cpu -- --seconds 30
//! cargo run --release -p stellatune-plugin-asio --example steady_cpu -- --route null
//! ```
//!
//! Options: `--seconds N` (default 30), `--route asio|null` (default asio), `--plugin DIR`
//! (default: `$STELLATUNE_BENCH_ASIO_PLUGIN`, else `target/release/plugins/asio`).

// CPU time per process and per thread is read from /proc: a Linux measurement.
#[cfg(target_os = "linux")]
fn main() {
    linux::main();
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("steady_cpu reads CPU times from /proc: Linux only");
    std::process::exit(2);
}

#[cfg(target_os = "linux")]
mod linux {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use stellatune_runtime_host::{
        BuiltinRoute, EngineEvent, HostConfig, HostEvent, OutputRoute, PluginRoute, RuntimeHost,
    };

    struct Options {
        seconds: f64,
        asio: bool,
        plugin: Option<PathBuf>,
    }

    fn options() -> Result<Options, String> {
        let mut o = Options {
            seconds: 30.0,
            asio: true,
            plugin: std::env::var_os("STELLATUNE_BENCH_ASIO_PLUGIN").map(PathBuf::from),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--seconds" => {
                    o.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?;
                }
                "--route" => {
                    o.asio = match value()?.as_str() {
                        "asio" => true,
                        "null" => false,
                        other => return Err(format!("--route: asio or null, not {other}")),
                    };
                }
                "--plugin" => o.plugin = Some(PathBuf::from(value()?)),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if o.plugin.is_none() {
            o.plugin = Some(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/plugins/asio"),
            );
        }
        Ok(o)
    }

    /// (comm, utime + stime in clock ticks) from a `stat` file.
    fn stat_ticks(path: &Path) -> Option<(String, u64)> {
        let text = std::fs::read_to_string(path).ok()?;
        let open = text.find('(')?;
        let close = text.rfind(')')?;
        let comm = text[open + 1..close].to_owned();
        // Fields after the comm start at field 3 (state); utime and stime are fields 14 and 15.
        let fields: Vec<&str> = text[close + 2..].split_whitespace().collect();
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some((comm, utime + stime))
    }

    fn parent_of(pid: u32) -> Option<u32> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let close = text.rfind(')')?;
        text[close + 2..].split_whitespace().nth(1)?.parse().ok()
    }

    /// Live children of this process that are sidecars.
    fn sidecars() -> Vec<u32> {
        let me = std::process::id();
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if parent_of(pid) != Some(me) {
                continue;
            }
            if let Some((comm, _)) = stat_ticks(&entry.path().join("stat")) {
                if comm.starts_with("stellatune-side") {
                    found.push(pid);
                }
            }
        }
        found
    }

    /// On-CPU nanoseconds of one task, from `schedstat` (scheduler-precise, unlike the tick-rounded
    /// `stat` fields).
    fn schedstat_ns(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// A thread's voluntary context switches (each one a sleep, so each one a wake-up).
    fn voluntary_switches(path: &Path) -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
            .trim()
            .parse()
            .ok()
    }

    /// A process's total ticks, and its live threads' ticks, on-CPU nanoseconds and voluntary
    /// context switches keyed by (tid, name).
    struct Sample {
        ticks: u64,
        threads: BTreeMap<(u32, String), (u64, u64, u64)>,
    }

    fn sample(pid: u32) -> Sample {
        let base = PathBuf::from(format!("/proc/{pid}"));
        let ticks = stat_ticks(&base.join("stat")).map_or(0, |(_, t)| t);
        let mut threads = BTreeMap::new();
        if let Ok(tasks) = std::fs::read_dir(base.join("task")) {
            for task in tasks.flatten() {
                let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if let Some((comm, ticks)) = stat_ticks(&task.path().join("stat")) {
                    let ns = schedstat_ns(&task.path().join("schedstat")).unwrap_or(0);
                    let switches = voluntary_switches(&task.path().join("status")).unwrap_or(0);
                    threads.insert((tid, comm), (ticks, ns, switches));
                }
            }
        }
        Sample { ticks, threads }
    }

    fn pct(ticks: u64, hz: f64, wall: Duration) -> f64 {
        ticks as f64 / hz / wall.as_secs_f64() * 100.0
    }

    fn pct_ns(ns: u64, wall: Duration) -> f64 {
        ns as f64 / 1e9 / wall.as_secs_f64() * 100.0
    }

    /// Prints the process's figure and its threads'; returns (stat %, schedstat %, wake-ups
    /// per second).
    fn report(
        label: &str,
        pid: u32,
        before: &Sample,
        after: &Sample,
        hz: f64,
        wall: Duration,
    ) -> (f64, f64, f64) {
        let ticks = after.ticks.saturating_sub(before.ticks);
        let switches: u64 = after
            .threads
            .iter()
            .map(|(key, t)| {
                t.2.saturating_sub(before.threads.get(key).map_or(0, |b| b.2))
            })
            .sum();
        let wakeups = switches as f64 / wall.as_secs_f64();
        // Threads that started inside the window count from zero; threads that ended are missing.
        let ns: u64 = after
            .threads
            .iter()
            .map(|(key, t)| {
                t.1.saturating_sub(before.threads.get(key).map_or(0, |b| b.1))
            })
            .sum();
        let (stat_pct, sched_pct) = (pct(ticks, hz, wall), pct_ns(ns, wall));
        println!(
            "{label} (pid {pid}): {stat_pct:.3}% of one core from stat ({ticks} ticks in {:.1} s); \
         {sched_pct:.3}% from schedstat of its live threads; {wakeups:.1} wake-ups/s",
            wall.as_secs_f64()
        );
        for (key, (ticks, ns, switches)) in &after.threads {
            let (t0, n0, s0) = before.threads.get(key).copied().unwrap_or((0, 0, 0));
            let (ticks, ns, switches) = (
                ticks.saturating_sub(t0),
                ns.saturating_sub(n0),
                switches.saturating_sub(s0),
            );
            if ns > 0 || ticks > 0 || switches > 0 {
                println!(
                    "    thread {:<7} {:<18} {:>7.3}% ({ticks} ticks) {:>8.1} wake-ups/s",
                    key.0,
                    key.1,
                    pct_ns(ns, wall),
                    switches as f64 / wall.as_secs_f64()
                );
            }
        }
        (stat_pct, sched_pct, wakeups)
    }

    pub fn main() {
        let o = match options() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("steady_cpu: {e}");
                std::process::exit(2);
            }
        };
        let plugin = o.plugin.clone().expect("set above");
        if o.asio && !plugin.join("plugin.json").is_file() {
            println!(
                "note: no packaged ASIO plugin at {}: steady_cpu skipped (run `cargo build --release \
             --workspace && bash scripts/package-plugins.sh release`)",
                plugin.display()
            );
            return;
        }
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let dir = tempfile::tempdir().expect("temp dir");
        let tone = dir.path().join("tone.wav");
        // Long enough for the settle second, the window and some slack.
        // The tests' 44.1 kHz stereo two-tone (440 and 660 Hz).
        stellatune_test_support::tone::write_two_tone(&tone, (o.seconds + 5.0) as f32);

        let host = RuntimeHost::new("steady-cpu");
        host.init(HostConfig {
            data_dir: Some(dir.path().join("data")),
            log_filter: Some("warn".into()),
            ..HostConfig::default()
        })
        .expect("init");
        let route = if o.asio {
            host.plugins_install(&plugin).expect("install asio plugin");
            OutputRoute::Plugin(PluginRoute::new("asio", None, "null"))
        } else {
            OutputRoute::Builtin(BuiltinRoute::Null)
        };
        let client = host.attach_client().expect("attach").id;
        host.apply_route(client, route).expect("route");
        host.play(client, &tone).expect("play");

        // Wait until audio flows, then let start-up effects settle for a second.
        let settle_until = Instant::now() + Duration::from_secs(1);
        let mut flowing = false;
        while !flowing || Instant::now() < settle_until {
            if let Some(HostEvent::Engine(EngineEvent::Position { .. })) = host
                .poll_event(client, Duration::from_millis(250))
                .expect("poll")
            {
                flowing = true;
            }
        }
        let sidecar = if o.asio {
            let found = sidecars();
            assert_eq!(
                found.len(),
                1,
                "expected one sidecar child, found {found:?}"
            );
            Some(found[0])
        } else {
            None
        };

        let me = std::process::id();
        let started = Instant::now();
        let host_before = sample(me);
        let sidecar_before = sidecar.map(sample);
        let mut positions = 0u64;
        let mut last_position_ms = 0u64;
        let mut errors = Vec::new();
        let window = Duration::from_secs_f64(o.seconds);
        while started.elapsed() < window {
            let wait = (window - started.elapsed()).min(Duration::from_secs(1));
            match host.poll_event(client, wait).expect("poll") {
                Some(HostEvent::Engine(EngineEvent::Position { position_ms, .. })) => {
                    positions += 1;
                    last_position_ms = position_ms;
                }
                Some(HostEvent::Engine(EngineEvent::Error { message, .. })) => errors.push(message),
                Some(HostEvent::Engine(EngineEvent::TrackEnded { .. })) => {
                    errors.push("the track ended inside the window".into());
                }
                _ => {}
            }
        }
        let host_after = sample(me);
        let sidecar_after = sidecar.map(sample);
        let wall = started.elapsed();

        let route_name = if o.asio { "plugin:asio@null" } else { "null" };
        println!(
            "steady_cpu: 44.1 kHz stereo in real time through {route_name} for {:.1} s \
         ({positions} position events, last at {last_position_ms} ms; CLK_TCK {hz})",
            wall.as_secs_f64()
        );
        let (host_pct, host_sched, host_wakeups) =
            report("host", me, &host_before, &host_after, hz, wall);
        let (mut sidecar_pct, mut sidecar_sched, mut sidecar_wakeups) = (0.0, 0.0, 0.0);
        if let (Some(pid), Some(before), Some(after)) = (sidecar, &sidecar_before, &sidecar_after) {
            (sidecar_pct, sidecar_sched, sidecar_wakeups) =
                report("sidecar", pid, before, after, hz, wall);
        }
        println!(
            "wake-ups per second: host {host_wakeups:.1}, sidecar {sidecar_wakeups:.1}, together {:.1}",
            host_wakeups + sidecar_wakeups
        );
        if !errors.is_empty() {
            println!("errors during the window: {errors:?}");
        }
        println!(
            "bench-result steady_cpu route={} host_pct={host_pct:.3} sidecar_pct={sidecar_pct:.3} \
         total_pct={:.3} host_sched_pct={host_sched:.3} sidecar_sched_pct={sidecar_sched:.3} \
         total_sched_pct={:.3} host_wakeups_per_s={host_wakeups:.1} \
         sidecar_wakeups_per_s={sidecar_wakeups:.1} total_wakeups_per_s={:.1} seconds={:.1}",
            if o.asio { "asio" } else { "null" },
            host_pct + sidecar_pct,
            host_sched + sidecar_sched,
            host_wakeups + sidecar_wakeups,
            wall.as_secs_f64()
        );
        host.shutdown().expect("shutdown");
    }
}
