//! The sink traits of ABI 1.2: a plugin sink type that declares `FADES_ON_RESET` is answered
//! as fading on reset, and the same module reporting ABI minor 1 is not (the field does not
//! exist in such a module's vtable). Likewise the take schedule of ABI 1.3: read from a 1.3
//! module, never asked of a 1.2 one. A test binary of its own with a single test: it sets
//! `STELLATUNE_TEST_PLUGIN_ABI_MINOR`, which the test plugins read when their entry is
//! called, so no other test may share its process (under `cargo test` all tests of a binary
//! do).

mod support;

use std::time::Duration;

use stellatune_core::{Sink, SinkFactory, StreamSpec};
use stellatune_plugin_host::PluginRuntime;
use support::*;

const MINOR_ENV: &str = "STELLATUNE_TEST_PLUGIN_ABI_MINOR";

fn sink(runtime: &PluginRuntime, sink_type: &str, target: &std::path::Path) -> Box<dyn Sink> {
    sink_with(runtime, sink_type, target, None)
}

fn sink_with(
    runtime: &PluginRuntime,
    sink_type: &str,
    target: &std::path::Path,
    config: Option<&str>,
) -> Box<dyn Sink> {
    let factory = runtime
        .create_sink(
            TEST_PLUGINS,
            Some(sink_type),
            target.to_str().unwrap(),
            config,
        )
        .unwrap();
    Box::new(factory).create().unwrap()
}

/// An opened capture sink whose consumer takes every 40 ms.
fn scheduled(runtime: &PluginRuntime, target: &std::path::Path) -> Box<dyn Sink> {
    let mut sink = sink_with(
        runtime,
        "capture",
        target,
        Some(r#"{"take_period_ms": 40}"#),
    );
    sink.open(StreamSpec::new(48_000, 2)).unwrap();
    sink
}

#[test]
fn sink_traits_and_the_take_schedule_are_read_only_from_modules_whose_abi_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    install_test_plugins(&plugins);
    let runtime = start(&plugins, &dir.path().join("data"));
    let target = dir.path().join("out.raw");

    assert!(sink(&runtime, "capture_fading", &target).fades_on_reset());
    assert!(!sink(&runtime, "capture", &target).fades_on_reset());

    // The same library, now saying it was built for ABI 1.1: its declaration is not read.
    // SAFETY: this binary runs no other test, and the runtime calls a plugin's entry only
    // from within `force_reload`, on this thread.
    unsafe { std::env::set_var(MINOR_ENV, "1") };
    runtime.force_reload(TEST_PLUGINS).unwrap();
    // SAFETY: as above.
    unsafe { std::env::remove_var(MINOR_ENV) };
    let old = sink(&runtime, "capture_fading", &target);
    assert!(
        !old.fades_on_reset(),
        "a 1.1 module keeps today's behaviour"
    );
    drop(old);

    runtime.force_reload(TEST_PLUGINS).unwrap();
    assert!(sink(&runtime, "capture_fading", &target).fades_on_reset());

    let mut current = scheduled(&runtime, &target);
    let schedule = current
        .take_schedule()
        .expect("a 1.3 module's schedule is read");
    assert_eq!(schedule.period, Duration::from_millis(40));
    assert!(schedule.next_take_in <= schedule.period, "{schedule:?}");
    current.close().unwrap();
    drop(current);

    // The same library as ABI 1.2: it has no `query_schedule`, so none is asked for.
    // SAFETY: as above.
    unsafe { std::env::set_var(MINOR_ENV, "2") };
    runtime.force_reload(TEST_PLUGINS).unwrap();
    // SAFETY: as above.
    unsafe { std::env::remove_var(MINOR_ENV) };
    let mut old = scheduled(&runtime, &target);
    assert_eq!(
        old.take_schedule(),
        None,
        "a 1.2 module has no take schedule"
    );
    old.close().unwrap();
    drop(old);
    assert!(
        sink(&runtime, "capture_fading", &target).fades_on_reset(),
        "but it has the traits of 1.2"
    );
    runtime.shutdown();
}
