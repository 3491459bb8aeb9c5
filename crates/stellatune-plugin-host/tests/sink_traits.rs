//! The sink traits of ABI 1.2: a plugin sink type that declares `FADES_ON_RESET` is answered
//! as fading on reset, and the same module reporting ABI minor 1 is not (the field does not
//! exist in such a module's vtable). A test binary of its own with a single test: it sets
//! `STELLATUNE_TEST_PLUGIN_ABI_MINOR`, which the test plugins read when their entry is
//! called, so no other test may share its process (under `cargo test` all tests of a binary
//! do).

mod support;

use stellatune_core::{Sink, SinkFactory};
use stellatune_plugin_host::PluginRuntime;
use support::*;

const MINOR_ENV: &str = "STELLATUNE_TEST_PLUGIN_ABI_MINOR";

fn sink(runtime: &PluginRuntime, sink_type: &str, target: &std::path::Path) -> Box<dyn Sink> {
    let factory = runtime
        .create_sink(
            TEST_PLUGINS,
            Some(sink_type),
            target.to_str().unwrap(),
            None,
        )
        .unwrap();
    Box::new(factory).create().unwrap()
}

#[test]
fn fades_on_reset_is_read_only_from_a_module_of_abi_minor_2_or_newer() {
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
    runtime.shutdown();
}
