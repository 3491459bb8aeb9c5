//! Plugin churn: thousands of generations loaded and unloaded in one process, each one
//! starting threads, leave no process resource behind (thread-local keys, threads, file
//! descriptors, mappings of shadow copies, memory).
//!
//! Each plugin library carries its own copy of std; a thread started by that copy takes a
//! pthread key that is never given back, and glibc has 1024 of them: before plugins
//! borrowed their threads from the host, a process aborted ("out of TLS keys") after about
//! a thousand generations. On Windows (1088 TLS indexes per process) a std built with
//! TlsAlloc-backed thread-locals took one in every copy, at the first thread exit it saw;
//! the Windows build uses native thread-locals since (docs/windows.md). Counts:
//! `STELLATUNE_CHURN_GENERATIONS` (default 5000, test plugins; 1500 under Wine) and
//! `STELLATUNE_CHURN_ASIO_GENERATIONS` (default 300, the ASIO plugin with a sidecar and a
//! ring each).

mod support;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use stellatune_core::{SinkFactory, StreamSpec};
use stellatune_plugin_host::PluginRuntime;
use support::*;

/// Keys, threads and fds may differ by this much between two samples taken in the same
/// state (lazy one-off allocations of the host, a helper thread still exiting).
const COUNT_TOLERANCE: u64 = 4;
/// Memory may grow by this much over the whole churn (allocator fragmentation).
const RSS_TOLERANCE_KIB: u64 = 24 * 1024;

fn grew(before: Option<u64>, after: Option<u64>, tolerance: u64) -> bool {
    matches!((before, after), (Some(b), Some(a)) if a > b + tolerance)
}

/// Fails with both samples when a count grew beyond its tolerance.
fn assert_no_growth(what: &str, before: &Probe, after: &Probe, check_rss: bool) {
    let leaks = [
        (
            "thread-local keys",
            grew(Some(before.tls_keys), Some(after.tls_keys), COUNT_TOLERANCE),
        ),
        (
            "threads",
            grew(before.threads, after.threads, COUNT_TOLERANCE),
        ),
        ("fds", grew(before.fds, after.fds, COUNT_TOLERANCE)),
        (
            "shadow mappings",
            grew(before.shadow_maps, after.shadow_maps, 0),
        ),
        (
            "RSS",
            check_rss && grew(before.rss_kib, after.rss_kib, RSS_TOLERANCE_KIB),
        ),
    ];
    let leaked: Vec<&str> = leaks.iter().filter(|(_, l)| *l).map(|(n, _)| *n).collect();
    assert!(
        leaked.is_empty(),
        "{what}: {} grew\n before {before:?}\n after  {after:?}",
        leaked.join(", ")
    );
}

/// The probes count process-wide resources: tests sharing a process take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key probe sees a key that is taken (so a leak of keys would show).
#[test]
fn the_tls_key_probe_counts_keys_in_use() {
    let _g = serial();
    let before = next_tls_key();
    let held = take_tls_key();
    assert!(next_tls_key() > before, "a held key moves the probe");
    release_tls_key(held);
    assert_eq!(next_tls_key(), before);
}

const STEREO: StreamSpec = StreamSpec::new(48_000, 2);

/// One generation: a fresh load, a sink whose instance starts two lent threads, opened,
/// written, closed and destroyed; the previous generation unloads on the way.
fn test_plugin_generation(runtime: &PluginRuntime) {
    runtime.force_reload(TEST_PLUGINS).unwrap();
    let factory = runtime
        .create_sink(
            TEST_PLUGINS,
            Some("misbehave"),
            "",
            Some(r#"{"threads":2}"#),
        )
        .unwrap();
    let mut sink = Box::new(factory).create().unwrap();
    sink.open(STEREO).unwrap();
    assert_eq!(sink.write(&[0.0; 8]).unwrap(), 4);
    sink.close().unwrap();
}

#[test]
fn thousands_of_generations_leave_no_process_resources_behind() {
    let _g = serial();
    let generations = env_count("STELLATUNE_CHURN_GENERATIONS", 5000);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install_test_plugins(&plugins);
    let runtime = start(&plugins, &dir.path().join("data"));
    // Warm-up: the host's own one-off allocations (its std's keys, the allocator's arenas).
    for _ in 0..20 {
        test_plugin_generation(&runtime);
    }
    let before = Probe::now(runtime.shadow_dir());
    let started = Instant::now();
    let check_every = 250;
    for i in 1..=generations {
        test_plugin_generation(&runtime);
        if i % check_every == 0 || i == generations {
            // A leak of one key per generation would abort the process at ~1000
            // generations; checked as we go, it fails here with the figures instead.
            let now = Probe::now(runtime.shadow_dir());
            assert_no_growth(&format!("after {i} generations"), &before, &now, false);
        }
    }
    let elapsed = started.elapsed();
    let after = Probe::now(runtime.shadow_dir());
    eprintln!(
        "{generations} generations in {elapsed:?} ({:?} each)\n before {before:?}\n after  {after:?}",
        elapsed / generations.max(1) as u32
    );
    assert_no_growth(
        &format!("after {generations} generations"),
        &before,
        &after,
        true,
    );
    let m = runtime.metrics();
    assert_eq!(
        (
            m.plugin_generations_active,
            m.plugin_generations_draining,
            m.shadow_copies
        ),
        (1, 0, 1),
        "{m:?}"
    );
}

/// The ASIO plugin: a sidecar process, its reader and writer threads (lent by the host),
/// the service thread that forks it, and a ring per stream, in every generation.
#[test]
fn asio_generations_leave_no_process_resources_behind() {
    let _g = serial();
    let generations = env_count("STELLATUNE_CHURN_ASIO_GENERATIONS", 300);
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install_asio(&plugins);
    let runtime = start(&plugins, &dir.path().join("data"));
    let generation = |runtime: &PluginRuntime| {
        runtime.force_reload("asio").unwrap();
        let factory = runtime.create_sink("asio", None, "null", None).unwrap();
        let mut sink = Box::new(factory).create().unwrap();
        let spec = sink.negotiate(STEREO).unwrap();
        sink.open(spec).unwrap();
        sink.write(&vec![0.0; 64 * usize::from(spec.channels)])
            .unwrap();
        sink.close().unwrap();
    };
    for _ in 0..3 {
        generation(&runtime);
    }
    let before = Probe::now(runtime.shadow_dir());
    let started = Instant::now();
    for _ in 0..generations {
        generation(&runtime);
    }
    // The last generation's sidecar stops on a thread of the plugin's after its lease went
    // (the others were waited for by their module's shutdown): sample once it is gone.
    let stopped_by = Instant::now() + Duration::from_secs(3);
    while runtime.metrics().reported.get("asio_sidecar_running") != Some(&0)
        && Instant::now() < stopped_by
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let after = Probe::now(runtime.shadow_dir());
    eprintln!(
        "{generations} ASIO generations in {elapsed:?}\n before {before:?}\n after  {after:?}"
    );
    assert_no_growth(
        &format!("after {generations} ASIO generations"),
        &before,
        &after,
        true,
    );
    let reported = runtime.metrics().reported;
    assert_eq!(reported.get("asio_sidecar_running"), Some(&0));
    // Every generation really started (and stopped) a sidecar of its own.
    let spawns = reported
        .get("asio_sidecar_spawns_total")
        .copied()
        .unwrap_or(0);
    assert!(spawns >= generations as i64, "{reported:?}");
}
