//! Plugin failures through the C ABI, with the real test plugins: whatever a plugin fails at
//! (creating or opening an output sink, creating a DSP stage) and whichever thread notices
//! (the caller's, or the engine's), the call returns `STELLATUNE_ERR_PLUGIN`; a failure after
//! the call returned is an `error` event and playback goes on.
//!
//! Needs the packaged test plugins at `target/<profile>/plugins/test-plugins/`
//! (`scripts/test.sh` builds the workspace and runs `scripts/package-plugins.sh` first).
//!
//! One test in this file, so it owns the process-wide runtime.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use stellatune_ffi::*;

const PLUGIN: &str = "test-plugins";

/// `target/<profile>/plugins/test-plugins`, found from this test binary in
/// `target/<profile>/deps/`.
fn packaged_test_plugins() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps");
    let dir = profile_dir.join("plugins").join(PLUGIN);
    assert!(
        dir.join("plugin.json").is_file(),
        "no packaged test plugins at {}: run scripts/package-plugins.sh after the build \
         (scripts/test.sh does)",
        dir.display()
    );
    dir
}

fn set_dsp_chain(client: u64, json: &str) -> i32 {
    let json = c(json);
    // SAFETY: `json` is a live CString.
    unsafe { stellatune_player_set_dsp_chain(client, json.as_ptr()) }
}

fn misbehave(config: serde_json::Value) -> String {
    serde_json::json!({
        "kind": "plugin",
        "plugin_id": PLUGIN,
        "sink": "misbehave",
        "target": "default",
        "config": config,
    })
    .to_string()
}

#[test]
fn plugin_failures_are_plugin_errors_on_every_path() {
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 5.0);
    let config = serde_json::json!({
        "data_dir": tmp.path().join("data"),
        "log_filter": "error",
    })
    .to_string();
    ok(init(Some(&config)));
    let client = create_client();
    let artifact = path_c(&packaged_test_plugins());
    let mut id = vec![0 as std::ffi::c_char; 64];
    // SAFETY: `artifact` is a live CString and `id` is valid for its length.
    ok(unsafe { stellatune_plugins_install(artifact.as_ptr(), id.as_mut_ptr(), id.len()) });

    // An output sink that fails at create: the instance is made on the calling thread.
    expect_err(
        apply_route(
            client,
            &misbehave(serde_json::json!({"error_in": ["create"]})),
        ),
        STELLATUNE_ERR_PLUGIN,
        &["route_apply", PLUGIN],
    );
    // A sink that panics at create is a plugin failure too, not a crash.
    expect_err(
        apply_route(
            client,
            &misbehave(serde_json::json!({"panic_in": ["create"]})),
        ),
        STELLATUNE_ERR_PLUGIN,
        &["route_apply"],
    );
    // A sink that fails at open: noticed by the engine's output thread when playback opens
    // it, after `play` returned (the engine never waits on a sink), so it comes as an
    // `error` event and playback stops.
    ok(apply_route(
        client,
        &misbehave(serde_json::json!({"error_in": ["open"]})),
    ));
    ok(play(client, &wav));
    let error = poll_until(client, "error", Duration::from_secs(5));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(PLUGIN), "{error}");
    let stopped = poll_until(client, "state_changed", Duration::from_secs(5));
    assert_eq!(stopped["state"], "stopped", "{stopped}");
    expect_err(
        apply_route(
            client,
            r#"{"kind":"plugin","plugin_id":"no-such-plugin","sink":"misbehave"}"#,
        ),
        STELLATUNE_ERR_UNKNOWN_PLUGIN,
        &["no-such-plugin"],
    );

    let gain = |config: &str| {
        format!(r#"[{{"plugin_id":"{PLUGIN}","type_id":"gain","config":{config}}}]"#)
    };
    // No output is open yet, so the stage is created when playback opens one: the failure
    // comes after the calls returned, as an `error` event, and the music goes on without
    // the stage.
    ok(apply_route(client, r#"{"kind":"null"}"#));
    ok(set_dsp_chain(client, &gain(r#"{"gain":"loud"}"#)));
    ok(play(client, &wav));
    let error = poll_until(client, "error", Duration::from_secs(5));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("gain") && message.contains("removed"),
        "{error}"
    );
    poll_until(client, "position", Duration::from_secs(5));
    ok(stellatune_player_stop(client));

    // Playing, so the output is open and a new DSP stage is created at once.
    ok(play(client, &wav));
    poll_until(client, "track_started", Duration::from_secs(5));
    // The plugin refuses the config in its create: the engine's output thread prepares the
    // chain after the call returned, so the stage is removed with an `error` event and the
    // music goes on.
    ok(set_dsp_chain(client, &gain(r#"{"gain":"loud"}"#)));
    let error = poll_until(client, "error", Duration::from_secs(5));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("gain") && message.contains("removed"),
        "{error}"
    );
    // No such DSP type: the host noticed it before the engine saw the chain.
    expect_err(
        set_dsp_chain(
            client,
            &format!(r#"[{{"plugin_id":"{PLUGIN}","type_id":"reverb"}}]"#),
        ),
        STELLATUNE_ERR_PLUGIN,
        &["reverb"],
    );
    expect_err(
        set_dsp_chain(client, r#"[{"plugin_id":"no-such-plugin"}]"#),
        STELLATUNE_ERR_UNKNOWN_PLUGIN,
        &["no-such-plugin"],
    );
    expect_err(
        set_dsp_chain(client, r#"[{"plugin_id":"x","gain":1}]"#),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["unknown field `gain`"],
    );
    ok(set_dsp_chain(client, &gain(r#"{"gain":0.5}"#)));
    ok(set_dsp_chain(client, "[]"));

    // A sink that fails at open while music plays: the route is handed over and opened by
    // the output thread after route_apply returned; the failure comes as an `error` event,
    // playback stops and the route is cleared.
    ok(apply_route(
        client,
        &misbehave(serde_json::json!({"error_in": ["open"]})),
    ));
    let error = poll_until(client, "error", Duration::from_secs(5));
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(PLUGIN), "{error}");
    let cleared = poll_until(client, "route_changed", Duration::from_secs(5));
    assert!(cleared["route"].is_null(), "{cleared}");

    ok(stellatune_player_stop(client));
    ok(stellatune_output_route_clear(client));
    ok(stellatune_player_dispose_client(client));
    ok(stellatune_runtime_shutdown());
}
