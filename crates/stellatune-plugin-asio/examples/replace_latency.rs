//! How long a command waits while a killed sidecar is replaced: plays a 44.1 kHz stereo tone
//! in real time through `plugin:asio@null`, kills the sidecar again and again, and times
//! every `set_volume` a front-end thread sends meanwhile (one every 2 ms). A command's reply
//! must never wait on a sidecar: the plugin restarts it off the engine's control thread.
//!
//! ```sh
//! cargo build --release --workspace && bash scripts/package-plugins.sh release
//! target/release/examples/replace_latency --replacements 20
//! ```
//!
//! Options: `--replacements N` (default 20), `--plugin DIR` (default:
//! `$STELLATUNE_BENCH_ASIO_PLUGIN`, else `target/release/plugins/asio`). The last line is
//! `bench-result replace_latency replacements=<n> spawns=<n> calls=<n> p50_us=<f> p99_us=<f>
//! max_us=<f> calls_outside=<n> max_outside_us=<f>`: the calls made between a kill and the
//! moment audio flowed again from the new sidecar, and for comparison the calls made while
//! the sidecar was up.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use stellatune_runtime_host::{
    HostConfig, HostEvent, HostNotice, OutputRoute, PluginRoute, RuntimeHost,
};

const TIMEOUT: Duration = Duration::from_secs(10);

struct Options {
    replacements: usize,
    plugin: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut replacements = 20;
    let mut plugin = std::env::var_os("STELLATUNE_BENCH_ASIO_PLUGIN").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--replacements" => {
                replacements = value()?
                    .parse()
                    .map_err(|e| format!("--replacements: {e}"))?
            }
            "--plugin" => plugin = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Options {
        replacements,
        plugin: plugin.unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/plugins/asio")
        }),
    })
}

/// One timed `set_volume`: when it was sent and how long its reply took.
struct Call {
    sent: Instant,
    took: Duration,
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// The sidecar this process runs now (it starts no other child).
fn sidecar() -> Option<u32> {
    match stellatune_probe::live_children(std::process::id()).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Waits for the plugin's `sidecar_recovered` event, as a front end's event loop would.
fn wait_recovered(host: &RuntimeHost, client: u64) -> Result<(), String> {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        let event = host
            .poll_event(client, Duration::from_millis(50))
            .map_err(|e| format!("poll_event: {e}"))?;
        if let Some(HostEvent::Host(HostNotice::PluginEvent { kind, .. })) = event
            && kind == "sidecar_recovered"
        {
            return Ok(());
        }
    }
    Err("no sidecar_recovered event".into())
}

fn frames_written(host: &RuntimeHost, client: u64) -> u64 {
    host.status(client).map_or(0, |s| s.frames_written)
}

/// Kills and replaces the sidecar `replacements` times; (windows of replacement, spawns).
fn replace_repeatedly(
    host: &RuntimeHost,
    client: u64,
    replacements: usize,
) -> Result<(Vec<(Instant, Instant)>, i64), String> {
    let mut windows = Vec::with_capacity(replacements);
    for _ in 0..replacements {
        // Playing from a settled sidecar before each kill.
        let mut victim = None;
        wait_until("a playing sidecar", || {
            victim = sidecar();
            victim.is_some()
        })?;
        let victim = victim.expect("found above");
        let before = frames_written(host, client);
        wait_until("audio flowing", || frames_written(host, client) > before)?;
        std::thread::sleep(Duration::from_millis(100));
        let killed = Instant::now();
        stellatune_probe::kill(victim).map_err(|e| format!("kill {victim}: {e}"))?;
        wait_recovered(host, client)?;
        wait_until("a new sidecar", || {
            sidecar().is_some_and(|pid| pid != victim)
        })?;
        let resumed = frames_written(host, client);
        wait_until("audio from the new sidecar", || {
            frames_written(host, client) > resumed
        })?;
        windows.push((killed, Instant::now()));
    }
    let spawns = host
        .metrics()
        .plugin_reported
        .get("asio_sidecar_spawns_total")
        .copied()
        .unwrap_or(0);
    Ok((windows, spawns))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at].as_secs_f64() * 1e6
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("replace_latency: {e}");
            std::process::exit(2);
        }
    };
    if !o.plugin.join("plugin.json").is_file() {
        println!(
            "note: no packaged ASIO plugin at {}: replace_latency skipped (run `cargo build \
             --release --workspace && bash scripts/package-plugins.sh release`)",
            o.plugin.display()
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = dir.path().join("tone.wav");
    // Long enough for every replacement (each takes well under a second here).
    stellatune_test_support::tone::write_two_tone(&tone, 30.0 + o.replacements as f32 * 2.0);
    let host = Arc::new(RuntimeHost::new("replace-latency"));
    host.init(HostConfig {
        data_dir: Some(dir.path().join("data")),
        log_filter: Some("warn".into()),
        ..HostConfig::default()
    })
    .expect("init");
    host.plugins_install(&o.plugin)
        .expect("install the asio plugin");
    let client = host.attach_client().expect("attach").id;
    host.apply_route(
        client,
        OutputRoute::Plugin(PluginRoute::new("asio", None, "null")),
    )
    .expect("route");
    host.play(client, &tone).expect("play");

    // The front end's other thread: a volume slider being dragged.
    let stop = Arc::new(AtomicBool::new(false));
    let caller = {
        let host = host.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut calls = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let volume = if n % 2 == 0 { 0.9 } else { 1.0 };
                n += 1;
                let sent = Instant::now();
                host.set_volume(client, volume).expect("set_volume");
                calls.push(Call {
                    sent,
                    took: sent.elapsed(),
                });
                std::thread::sleep(Duration::from_millis(2));
            }
            calls
        })
    };
    let outcome = replace_repeatedly(&host, client, o.replacements);
    stop.store(true, Ordering::Relaxed);
    let calls = caller.join().expect("the caller thread");
    host.shutdown().expect("shutdown");
    let (windows, spawns) = match outcome {
        Ok(found) => found,
        Err(e) => {
            eprintln!("replace_latency: {e}");
            std::process::exit(1);
        }
    };
    let during = |c: &Call| {
        windows
            .iter()
            .any(|&(from, to)| c.sent >= from && c.sent <= to)
    };
    let mut inside: Vec<Duration> = calls.iter().filter(|c| during(c)).map(|c| c.took).collect();
    let mut outside: Vec<Duration> = calls
        .iter()
        .filter(|c| !during(c))
        .map(|c| c.took)
        .collect();
    inside.sort();
    outside.sort();
    let replaced_ms: Vec<String> = windows
        .iter()
        .map(|(from, to)| format!("{:.1}", (*to - *from).as_secs_f64() * 1e3))
        .collect();
    println!(
        "replacement windows (kill → audio from the new sidecar), ms: {}",
        replaced_ms.join(" ")
    );
    println!(
        "bench-result replace_latency replacements={} spawns={spawns} calls={} p50_us={:.1} p99_us={:.1} max_us={:.1} calls_outside={} max_outside_us={:.1}",
        windows.len(),
        inside.len(),
        percentile(&inside, 0.5),
        percentile(&inside, 0.99),
        percentile(&inside, 1.0),
        outside.len(),
        percentile(&outside, 1.0),
    );
}
