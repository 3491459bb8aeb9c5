//! The host's side of thread lending at unload: a thread the plugin did not join is waited
//! for with a time bound, and a library whose thread still runs, or whose shutdown hangs,
//! is left loaded instead of being unmapped under running code.

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use stellatune_plugin_host::{PluginRuntime, is_mapped};
use support::*;

/// Creates (and drops) a `misbehave` instance with `config`, then replaces the generation;
/// returns the old generation's shadow path and how long its unload took.
fn replace_after(runtime: &PluginRuntime, config: &str) -> (PathBuf, Duration) {
    let factory = runtime
        .create_sink(TEST_PLUGINS, Some("misbehave"), "", Some(config))
        .unwrap();
    let shadow = factory.generation().shadow_path().to_path_buf();
    drop(factory);
    let started = Instant::now();
    // The old generation's last holder is the runtime's slot: it unloads right here.
    runtime.force_reload(TEST_PLUGINS).unwrap();
    (shadow, started.elapsed())
}

#[test]
fn unjoined_threads_are_waited_for_and_a_running_one_keeps_the_library_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install_test_plugins(&plugins);
    let runtime = start(&plugins, &dir.path().join("data"));

    // A thread that ends soon after shutdown: waited for, then the library unloads.
    let (shadow, took) = replace_after(&runtime, r#"{"unjoined_thread_ms":300}"#);
    eprintln!("unjoined 300 ms thread: unload took {took:?}");
    assert!(!shadow.exists(), "unloaded: the shadow copy is gone");
    assert!(!is_mapped(&shadow));

    // A thread that outlives the bound: the library stays loaded (and its shadow copy).
    let (shadow, took) = replace_after(&runtime, r#"{"unjoined_thread_ms":6000}"#);
    eprintln!("unjoined 6 s thread: gave up after {took:?}");
    assert!(
        took >= stellatune_plugin_host::LENT_THREAD_JOIN_TIMEOUT,
        "{took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(shadow.exists(), "left loaded: the shadow copy stays");
    assert!(is_mapped(&shadow));

    // A shutdown that hangs: given up on after its bound, the library stays loaded.
    let (shadow, took) = replace_after(&runtime, r#"{"hang_in_shutdown_ms":8000}"#);
    eprintln!("shutdown hanging 8 s: gave up after {took:?}");
    assert!(took >= stellatune_plugin_host::SHUTDOWN_TIMEOUT, "{took:?}");
    assert!(took < Duration::from_secs(7), "{took:?}");
    assert!(shadow.exists());
    assert!(is_mapped(&shadow));

    let m = runtime.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (1, 0),
        "{m:?}"
    );
}
