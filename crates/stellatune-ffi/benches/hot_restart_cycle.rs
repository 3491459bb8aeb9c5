//! Hot-restart cycle time through the C ABI, with the ASIO sidecar route.
//!
//! The runtime is initialised once and the ASIO plugin installed once. Then each cycle is
//! what a Flutter isolate does at every hot restart, timed from its first call to its last:
//!
//! 1. `stellatune_runtime_prepare_hot_restart` (evicts the previous cycle's client: playback
//!    stops and the route is cleared),
//! 2. `stellatune_player_create_client`,
//! 3. `stellatune_output_route_apply` with `{"kind":"plugin","plugin_id":"asio","target":"null"}`,
//! 4. `stellatune_player_play` of a 2-second tone,
//! 5. `stellatune_player_poll_event` until `track_started`.
//!
//! Prints p50/p90/p99/max of the whole cycle and of each step, and how many sidecars were
//! spawned (1 would mean the sidecar is reused across cycles).
//!
//! `cargo bench -p stellatune-ffi --bench hot_restart_cycle [-- --cycles N]`
//! Needs the packaged plugin (`cargo build --release --workspace && bash
//! scripts/package-plugins.sh release`); without it, it prints a note and exits 0.

use std::ffi::{CStr, CString, c_char};

use std::time::{Duration, Instant};

use stellatune_ffi::*;
use stellatune_test_support::artifacts::bench_asio_plugin;
use stellatune_test_support::tone::write_tone;

const ROUTE: &str = r#"{"kind":"plugin","plugin_id":"asio","target":"null"}"#;
const STEPS: [&str; 5] = [
    "prepare_hot_restart",
    "create_client",
    "route_apply",
    "play",
    "until_track_started",
];

fn c(text: &str) -> CString {
    CString::new(text).expect("no NUL")
}

fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: `buf` is valid for its length.
    unsafe { stellatune_last_error(buf.as_mut_ptr(), buf.len()) };
    // SAFETY: `stellatune_last_error` NUL-terminates the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

#[track_caller]
fn ok(rc: i32) {
    assert_eq!(rc, STELLATUNE_OK, "call failed ({rc}): {}", last_error());
}

/// Polls until an event of type `kind` arrives.
fn poll_until(client: u64, kind: &str, within: Duration) {
    let deadline = Instant::now() + within;
    let needle = format!(r#""type":"{kind}""#);
    let mut buf = vec![0 as c_char; 8192];
    while Instant::now() < deadline {
        let mut len = 0usize;
        // SAFETY: `buf` is valid for its length and `len` for one write.
        ok(unsafe {
            stellatune_player_poll_event(client, 100, buf.as_mut_ptr(), buf.len(), &mut len)
        });
        if len == 0 {
            continue;
        }
        // SAFETY: on success the buffer is NUL-terminated.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
        if text.contains(&needle) {
            return;
        }
    }
    panic!("no {kind} event within {within:?}");
}

fn metrics() -> serde_json::Value {
    let mut buf = vec![0 as c_char; 8192];
    let mut len = 0usize;
    // SAFETY: `buf` is valid for its length and `len` for one write.
    ok(unsafe { stellatune_runtime_metrics_json(buf.as_mut_ptr(), buf.len(), &mut len) });
    // SAFETY: on success the buffer is NUL-terminated.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy();
    serde_json::from_str(&text).expect("metrics are JSON")
}

/// Nearest-rank percentile of sorted durations.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cycles_wanted() -> usize {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--cycles" {
            return args
                .next()
                .and_then(|n| n.parse().ok())
                .expect("--cycles N");
        }
    }
    std::env::var("STELLATUNE_BENCH_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// One cycle; returns the time of each step.
fn cycle(tone: &CString) -> [Duration; 5] {
    let mut times = [Duration::ZERO; 5];
    let mut t = Instant::now();
    let mut lap = |i: usize| {
        let now = Instant::now();
        times[i] = now - t;
        t = now;
    };
    ok(stellatune_runtime_prepare_hot_restart());
    lap(0);
    let mut client = 0u64;
    // SAFETY: `client` is a valid out-pointer.
    ok(unsafe { stellatune_player_create_client(&mut client) });
    lap(1);
    let route = c(ROUTE);
    // SAFETY: `route` is a live NUL-terminated string.
    ok(unsafe { stellatune_output_route_apply(client, route.as_ptr()) });
    lap(2);
    // SAFETY: `tone` is a live NUL-terminated string.
    ok(unsafe { stellatune_player_play(client, tone.as_ptr()) });
    lap(3);
    poll_until(client, "track_started", Duration::from_secs(10));
    lap(4);
    times
}

fn main() {
    let Some(plugin) = bench_asio_plugin("hot_restart_cycle") else {
        return;
    };
    let cycles = cycles_wanted();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = serde_json::json!({
        "data_dir": dir.path().join("data"),
        "log_filter": "error",
    })
    .to_string();
    let config = c(&config);
    // SAFETY: `config` is a live NUL-terminated string.
    ok(unsafe { stellatune_runtime_init(config.as_ptr()) });
    let plugin = c(plugin.to_str().expect("utf-8 plugin path"));
    let mut id = vec![0 as c_char; 64];
    // SAFETY: `plugin` is NUL-terminated and `id` valid for its length.
    ok(unsafe { stellatune_plugins_install(plugin.as_ptr(), id.as_mut_ptr(), id.len()) });
    let tone_path = dir.path().join("tone.wav");
    write_tone(&tone_path, 2.0);
    let tone = c(tone_path.to_str().expect("utf-8 temp path"));

    // Warm-up: the first cycle loads caches and the page cache; not counted.
    cycle(&tone);
    let spawns_before = metrics()["asio_sidecar_spawns_total"].as_u64().unwrap_or(0);
    let mut totals = Vec::with_capacity(cycles);
    let mut steps: [Vec<Duration>; 5] = Default::default();
    for _ in 0..cycles {
        let times = cycle(&tone);
        totals.push(times.iter().sum::<Duration>());
        for (i, t) in times.into_iter().enumerate() {
            steps[i].push(t);
        }
    }
    let spawns = metrics()["asio_sidecar_spawns_total"].as_u64().unwrap_or(0) - spawns_before;
    ok(stellatune_runtime_shutdown());

    totals.sort();
    for s in &mut steps {
        s.sort();
    }
    println!("hot_restart_cycle through the C ABI, route {ROUTE}, {cycles} cycles");
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "step (ms)", "p50", "p90", "p99", "max", "mean"
    );
    let row = |name: &str, v: &[Duration]| {
        let mean = v.iter().sum::<Duration>() / v.len() as u32;
        println!(
            "{name:<22} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
            ms(percentile(v, 50.0)),
            ms(percentile(v, 90.0)),
            ms(percentile(v, 99.0)),
            ms(*v.last().expect("cycles > 0")),
            ms(mean)
        );
    };
    for (name, v) in STEPS.iter().zip(&steps) {
        row(name, v);
    }
    row("cycle", &totals);
    println!(
        "sidecar spawns: {spawns} in {cycles} cycles ({})",
        if spawns <= 1 {
            "reused"
        } else {
            "a fresh sidecar per cycle: the eviction clears the route and drops the last lease"
        }
    );
    println!(
        "bench-result hot_restart_cycle p50_ms={:.3} p99_ms={:.3} cycles={cycles} spawns={spawns}",
        ms(percentile(&totals, 50.0)),
        ms(percentile(&totals, 99.0)),
    );
}
