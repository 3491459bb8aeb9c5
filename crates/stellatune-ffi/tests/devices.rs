//! `stellatune_output_devices_json` with the real test plugins: the list holds every target
//! of every plugin output sink (through the generic call), the system's devices in a build
//! with device output, and each entry's `route` is accepted as it is by
//! `stellatune_output_route_apply`.
//!
//! Needs the packaged test plugins at `target/<profile>/plugins/test-plugins/`
//! (`scripts/test.sh` builds the workspace and runs `scripts/package-plugins.sh` first).
//!
//! One test in this file, so it owns the process-wide runtime.

mod common;

use std::ffi::{CStr, c_char};
use std::path::{Path, PathBuf};

use common::*;
use stellatune_ffi::*;

fn packaged_test_plugins() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .join("plugins")
        .join("test-plugins");
    assert!(
        dir.join("plugin.json").is_file(),
        "no packaged test plugins at {}: run scripts/package-plugins.sh after the build \
         (scripts/test.sh does)",
        dir.display()
    );
    dir
}

fn devices_with(cap: usize) -> (i32, String, usize) {
    let mut buf = vec![0x55 as c_char; cap.max(1)];
    let mut len = usize::MAX;
    // SAFETY: `buf` is valid for `cap` bytes and `len` for one write.
    let rc = unsafe { stellatune_output_devices_json(buf.as_mut_ptr(), cap, &mut len) };
    let text = if rc == STELLATUNE_OK {
        // SAFETY: on success the buffer is NUL-terminated.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned()
    } else {
        String::new()
    };
    (rc, text, len)
}

fn devices() -> Vec<serde_json::Value> {
    let (rc, _, needed) = devices_with(0);
    expect_err(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL, &[]);
    let (rc, text, len) = devices_with(needed);
    ok(rc);
    assert_eq!(len + 1, needed, "out_len is the length without the NUL");
    serde_json::from_str(&text).expect("a JSON array")
}

#[test]
fn every_output_is_listed_with_the_route_that_plays_there() {
    // SAFETY: a NULL `buf` is refused before anything is written.
    let rc = unsafe { stellatune_output_devices_json(std::ptr::null_mut(), 0, &mut 0) };
    expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &["buf"]);
    expect_err(devices_with(4096).0, STELLATUNE_ERR_NOT_INITIALIZED, &[]);

    let tmp = tempfile::tempdir().unwrap();
    let config = serde_json::json!({
        "data_dir": tmp.path().join("data"),
        "log_filter": "error",
    })
    .to_string();
    ok(init(Some(&config)));
    let client = create_client();

    // No plugin yet: only the system's devices, if the build has them.
    let before = devices();
    assert!(
        before.iter().all(|d| d["route"]["kind"] == "device"),
        "{before:#?}"
    );

    let artifact = path_c(&packaged_test_plugins());
    let mut id = vec![0 as c_char; 64];
    // SAFETY: `artifact` is a live CString and `id` is valid for its length.
    ok(unsafe { stellatune_plugins_install(artifact.as_ptr(), id.as_mut_ptr(), id.len()) });

    let list = devices();
    for device in &list {
        for key in ["id", "name", "backend"] {
            assert!(device[key].is_string(), "{key} in {device}");
        }
        assert!(device["is_default"].is_boolean(), "{device}");
    }
    let find = |id: &str| {
        list.iter()
            .find(|d| d["id"] == id)
            .unwrap_or_else(|| panic!("no {id} in {list:#?}"))
    };
    // The output sink types of the plugin, through the generic call.
    let capture = find("plugin:test-plugins:capture:capture.raw");
    assert_eq!(capture["backend"], "plugin:test-plugins");
    assert_eq!(
        capture["route"],
        serde_json::json!({"kind": "plugin", "plugin_id": "test-plugins", "sink": "capture", "target": "capture.raw"})
    );
    let misbehave = find("plugin:test-plugins:misbehave:default");
    assert_eq!(misbehave["name"], "Misbehaving sink");

    let system: Vec<&serde_json::Value> = list
        .iter()
        .filter(|d| d["route"]["kind"] == "device")
        .collect();
    if let Some(default) = system.first() {
        // The entry that follows the default comes first, then the devices by id.
        assert_eq!(default["id"], "default");
        assert_eq!(default["route"], serde_json::json!({"kind": "device"}));
        assert!(
            system[1..]
                .iter()
                .all(|d| d["route"]["device_id"] == d["id"])
        );
    }
    if cfg!(all(feature = "device", target_os = "linux")) {
        // ALSA always has its `default` PCM.
        assert!(system.len() >= 2, "{system:#?}");
    } else if !cfg!(windows) {
        // Windows builds always have device output, but under Wine WASAPI lists nothing in
        // time; elsewhere a build without the feature lists no system device.
        assert!(system.is_empty(), "{system:#?}");
    }

    // Every route is taken as listed. The capture sink's target is a file name relative to
    // the working directory: it goes to the temporary directory, not the crate's.
    std::env::set_current_dir(tmp.path()).unwrap();
    for device in &list {
        let rc = apply_route(client, &device["route"].to_string());
        assert_eq!(rc, STELLATUNE_OK, "{device}: {}", last_error());
    }
    ok(stellatune_output_route_clear(client));
    ok(stellatune_runtime_shutdown());
}
