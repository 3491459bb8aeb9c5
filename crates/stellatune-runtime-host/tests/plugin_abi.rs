//! A plugin library reporting another ABI major is refused. A test binary of its own with a
//! single test: it sets `STELLATUNE_TEST_PLUGIN_ABI_MAJOR`, which the test plugins read when
//! their entry is called, so no other test may share its process (under `cargo test` all
//! tests of a binary do).

mod support;

use std::time::Duration;

use stellatune_runtime_host::{BuiltinRoute, HostError, PluginError, RuntimeHost};
use support::*;

#[test]
fn a_library_of_another_abi_major_is_refused_and_nothing_breaks() {
    // SAFETY: set before the host (or any thread of this test) starts; this binary runs no
    // other test that could read the environment concurrently.
    unsafe { std::env::set_var("STELLATUNE_TEST_PLUGIN_ABI_MAJOR", "2") };
    let f = Fixture::new();
    let host = RuntimeHost::new("abi-major");
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();

    let err = host.plugins_install(&artifact(f.path())).unwrap_err();
    match &err {
        HostError::Plugin(PluginError::AbiMismatch {
            plugin,
            plugin_major: 2,
            host_major: 1,
            ..
        }) => assert_eq!(plugin, PLUGIN_ID),
        other => panic!("expected an ABI mismatch, got {other:?}"),
    }
    let message = err.to_string();
    let minor = stellatune_plugin_api::ABI_MINOR;
    assert!(
        message.contains(&format!("2.{minor}")) && message.contains(&format!("1.{minor}")),
        "the message names both versions: {message}"
    );

    // Nothing broken is listed or left loaded, installed or mapped.
    let list = host.plugins_list().unwrap();
    assert!(list.iter().all(|p| p.load_error.is_none()), "{list:?}");
    assert!(list.is_empty(), "{list:?}");
    let m = host.metrics();
    assert_eq!(
        (m.plugin_generations_active, m.plugin_generations_draining),
        (0, 0)
    );
    assert_eq!(f.shadow_files(), 0);
    assert_eq!(f.mapped_shadow_copies().0, 0);
    assert!(!f.installed_dir().exists());
    assert!(matches!(
        host.apply_route(c.id, capture_route(&f.path().join("never.raw"))),
        Err(HostError::Plugin(PluginError::UnknownPlugin(_)))
    ));

    // A builtin route still plays.
    host.apply_route(c.id, BuiltinRoute::Null.into()).unwrap();
    host.play(c.id, &f.tone).unwrap();
    assert!(wait_event(&host, c.id, Duration::from_secs(10), is_track_started).is_some());
    host.shutdown().unwrap();

    // Installed while the library agreed, refused when the next runtime loads it: a route to
    // the plugin fails with the load's own error, whose kind decides the C code
    // (`PLUGIN_ABI`), and whose text says it once.
    // SAFETY: the runtime is shut down, so none of its threads runs; this binary runs no
    // other test.
    unsafe { std::env::remove_var("STELLATUNE_TEST_PLUGIN_ABI_MAJOR") };
    host.init(f.config()).unwrap();
    host.plugins_install(&artifact(f.path())).unwrap();
    host.shutdown().unwrap();
    // SAFETY: as above.
    unsafe { std::env::set_var("STELLATUNE_TEST_PLUGIN_ABI_MAJOR", "2") };
    host.init(f.config()).unwrap();
    let c = host.attach_client().unwrap();
    let err = host
        .apply_route(c.id, capture_route(&f.path().join("never.raw")))
        .unwrap_err();
    let HostError::Plugin(e @ PluginError::AbiMismatch { .. }) = &err else {
        panic!("expected the load's ABI mismatch, got {err:?}");
    };
    let text = e.to_string();
    assert_eq!(text.matches(PLUGIN_ID).count(), 1, "said once: {text}");
    let list = host.plugins_list().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].load_error.as_deref(), Some(text.as_str()));
    host.shutdown().unwrap();
}
