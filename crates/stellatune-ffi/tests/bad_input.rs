//! Every exported function against bad input and bad state: NULL pointers, invalid UTF-8,
//! malformed JSON, unknown route kinds, small and zero-capacity buffers, unknown, disposed
//! and evicted clients, calls before init and after shutdown, and the poll contract.
//!
//! The runtime is process-wide and the tests of one file run on parallel threads, so every
//! test holds `LOCK` and starts from a runtime state it sets up itself.

mod common;

use std::ffi::{CStr, CString, c_char};
use std::path::Path;
use std::ptr::{null, null_mut};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use common::*;
use stellatune_ffi::*;

static LOCK: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A stopped runtime, then a fresh one with `lease_ms` (and quiet logs, data in `dir`).
fn fresh_runtime(dir: &Path, lease_ms: u64) {
    ok(stellatune_runtime_shutdown());
    let config = serde_json::json!({
        "client_lease_ms": lease_ms,
        "data_dir": dir.join("data"),
        "log_filter": "error",
    })
    .to_string();
    ok(init(Some(&config)));
}

fn not_utf8() -> CString {
    CString::new(vec![b'a', 0xff, 0xfe, b'z']).unwrap()
}

/// Runs every call that takes a client (with valid arguments otherwise) and checks that each
/// fails with `want` and a last error containing `needle`.
#[track_caller]
fn every_client_call_fails(client: u64, wav: &Path, want: i32, needle: &str) {
    let path = path_c(wav);
    let route = c(r#"{"kind":"null"}"#);
    let replaygain = c(r#"{"mode":"track"}"#);
    let mut buf = vec![0 as c_char; 4096];
    let mut len = 0usize;
    type Call<'a> = Box<dyn Fn() -> i32 + 'a>;
    // SAFETY (all closures): every pointer is a live CString or a buffer valid for the
    // length passed, and `len` is valid for one write.
    let buf_ptr = buf.as_mut_ptr();
    let cap = buf.len();
    let len_ptr: *mut usize = &mut len;
    let calls: Vec<(&str, Call)> = vec![
        (
            "play",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_player_play(client, path.as_ptr()) }),
        ),
        (
            "queue_next",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_player_queue_next(client, path.as_ptr()) }),
        ),
        ("pause", Box::new(|| stellatune_player_pause(client))),
        ("resume", Box::new(|| stellatune_player_resume(client))),
        ("stop", Box::new(|| stellatune_player_stop(client))),
        (
            "seek_ms",
            Box::new(|| stellatune_player_seek_ms(client, 10)),
        ),
        (
            "set_volume",
            Box::new(|| stellatune_player_set_volume(client, 0.5)),
        ),
        (
            "set_replaygain",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_player_set_replaygain(client, replaygain.as_ptr()) }),
        ),
        (
            "route_apply",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_output_route_apply(client, route.as_ptr()) }),
        ),
        (
            "route_clear",
            Box::new(|| stellatune_output_route_clear(client)),
        ),
        (
            "poll_event",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_player_poll_event(client, 0, buf_ptr, cap, len_ptr) }),
        ),
        (
            "status_json",
            // SAFETY: see the note above the list.
            Box::new(|| unsafe { stellatune_player_status_json(client, buf_ptr, cap, len_ptr) }),
        ),
        (
            "dispose_client",
            Box::new(|| stellatune_player_dispose_client(client)),
        ),
    ];
    for (call, run) in calls {
        let rc = run();
        let message = last_error();
        assert_eq!(
            rc,
            want,
            "{call}: got {} want {}: {message}",
            name(rc),
            name(want)
        );
        assert!(
            message.contains(needle),
            "{call}: {message:?} lacks {needle:?}"
        );
        assert!(message.starts_with("stellatune_"), "{message}");
    }
}

#[test]
fn error_names_and_abi_version() {
    assert_eq!(stellatune_abi_version(), STELLATUNE_ABI_VERSION);
    let mut seen = std::collections::HashSet::new();
    for code in (STELLATUNE_ERR_PLUGIN..=STELLATUNE_OK).rev() {
        let n = name(code);
        assert!(n.starts_with("STELLATUNE_"), "{code}: {n}");
        assert_ne!(n, "STELLATUNE_ERR_UNKNOWN_CODE", "{code}");
        assert!(seen.insert(n), "names are unique");
    }
    assert_eq!(name(STELLATUNE_ERR_NOT_FOUND), "STELLATUNE_ERR_NOT_FOUND");
    assert_eq!(name(1), "STELLATUNE_ERR_UNKNOWN_CODE");
    assert_eq!(
        name(STELLATUNE_ERR_PLUGIN - 1),
        "STELLATUNE_ERR_UNKNOWN_CODE"
    );
    assert_eq!(name(i32::MIN), "STELLATUNE_ERR_UNKNOWN_CODE");
}

#[test]
fn init_refuses_bad_config_naming_the_field() {
    let _guard = lock();
    ok(stellatune_runtime_shutdown());
    let bad = not_utf8();
    // SAFETY: a live CString.
    let rc = unsafe { stellatune_runtime_init(bad.as_ptr()) };
    expect_err(
        rc,
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["stellatune_runtime_init", "config_json", "UTF-8"],
    );
    expect_err(
        init(Some("{not json")),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["config"],
    );
    expect_err(
        init(Some("[1,2]")),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["config"],
    );
    expect_err(init(Some("")), STELLATUNE_ERR_INVALID_ARGUMENT, &["config"]);
    expect_err(
        init(Some(r#"{"client_lease":5}"#)),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["client_lease"],
    );
    expect_err(
        init(Some(r#"{"client_lease_ms":0}"#)),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["client_lease_ms"],
    );
    expect_err(
        init(Some(r#"{"event_queue_capacity":0}"#)),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["event_queue_capacity"],
    );
    expect_err(
        init(Some(r#"{"log_format":"xml"}"#)),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["xml"],
    );
    // A wrong type names its key too (serde alone does not; the FFI finds it).
    expect_err(
        init(Some(r#"{"log_filter":"warn","client_lease_ms":"soon"}"#)),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["`client_lease_ms`", "invalid type"],
    );
    let m = metrics();
    assert_ne!(
        m["state"], "running",
        "no bad config started the runtime: {m}"
    );
}

#[test]
fn every_call_before_init_and_after_shutdown_is_not_initialized() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 0.5);

    let check_all = |client: u64| {
        every_client_call_fails(
            client,
            &wav,
            STELLATUNE_ERR_NOT_INITIALIZED,
            "not initialised",
        );
        let mut id = 7u64;
        // SAFETY: `id` is valid for one write.
        expect_err(
            unsafe { stellatune_player_create_client(&mut id) },
            STELLATUNE_ERR_NOT_INITIALIZED,
            &["create_client"],
        );
        assert_eq!(id, 0, "out_client is zeroed on failure");
        expect_err(
            stellatune_runtime_prepare_hot_restart(),
            STELLATUNE_ERR_NOT_INITIALIZED,
            &["prepare_hot_restart"],
        );
        let artifact = c("/tmp/plugin.zip");
        let plugin = c("some.plugin");
        let mut buf = vec![0 as c_char; 64];
        let mut len = 0;
        // SAFETY: live CStrings and buffers valid for the lengths passed.
        unsafe {
            expect_err(
                stellatune_plugins_install(artifact.as_ptr(), buf.as_mut_ptr(), buf.len()),
                STELLATUNE_ERR_NOT_INITIALIZED,
                &["plugins_install"],
            );
            expect_err(
                stellatune_plugins_uninstall(plugin.as_ptr()),
                STELLATUNE_ERR_NOT_INITIALIZED,
                &["uninstall"],
            );
            expect_err(
                stellatune_plugins_list_json(buf.as_mut_ptr(), buf.len(), &mut len),
                STELLATUNE_ERR_NOT_INITIALIZED,
                &["plugins_list_json"],
            );
        }
        expect_err(
            stellatune_plugins_reload(),
            STELLATUNE_ERR_NOT_INITIALIZED,
            &["plugins_reload"],
        );
        // Shutdown is always fine, and metrics work in every state.
        ok(stellatune_runtime_shutdown());
        ok(stellatune_runtime_shutdown());
        assert_eq!(metrics()["runtime_threads"], 0);
    };

    ok(stellatune_runtime_shutdown());
    check_all(1);

    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();
    ok(stellatune_runtime_shutdown());
    assert_eq!(metrics()["state"], "stopped");
    check_all(client);

    // Re-init works, and a client of the previous runtime is known as evicted, not reused.
    fresh_runtime(tmp.path(), 30_000);
    expect_err(
        stellatune_player_pause(client),
        STELLATUNE_ERR_CLIENT_EVICTED,
        &["shut down"],
    );
    ok(stellatune_runtime_shutdown());
}

#[test]
fn null_pointers_are_refused_naming_the_parameter() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();
    let mut buf = vec![0 as c_char; 64];
    let mut len = 0usize;
    let path = c("/tmp/x.zip");
    let b = buf.as_mut_ptr();
    let cap = buf.len();
    // Each call is checked right after it runs: the last error is the latest failure's.
    macro_rules! refused {
        ($call:expr, $needle:expr) => {
            expect_err($call, STELLATUNE_ERR_INVALID_ARGUMENT, &[$needle])
        };
    }
    // SAFETY: every non-NULL pointer is a live CString or a buffer valid for `cap` bytes.
    unsafe {
        refused!(
            stellatune_player_create_client(null_mut()),
            "`out_client` is NULL"
        );
        refused!(stellatune_player_play(client, null()), "`path` is NULL");
        refused!(
            stellatune_player_queue_next(client, null()),
            "`path` is NULL"
        );
        refused!(
            stellatune_output_route_apply(client, null()),
            "`route_json` is NULL"
        );
        refused!(
            stellatune_player_poll_event(client, 0, null_mut(), cap, &mut len),
            "`buf` is NULL"
        );
        refused!(
            stellatune_player_poll_event(client, 0, b, cap, null_mut()),
            "`out_len` is NULL"
        );
        refused!(
            stellatune_player_status_json(client, null_mut(), cap, &mut len),
            "`buf` is NULL"
        );
        refused!(
            stellatune_player_status_json(client, b, cap, null_mut()),
            "`out_len` is NULL"
        );
        refused!(
            stellatune_plugins_install(null(), b, cap),
            "`artifact_path` is NULL"
        );
        refused!(
            stellatune_plugins_install(path.as_ptr(), null_mut(), cap),
            "`out_id` is NULL"
        );
        refused!(stellatune_plugins_uninstall(null()), "`plugin_id` is NULL");
        refused!(
            stellatune_plugins_list_json(null_mut(), cap, &mut len),
            "`buf` is NULL"
        );
        refused!(
            stellatune_plugins_list_json(b, cap, null_mut()),
            "`out_len` is NULL"
        );
        refused!(
            stellatune_runtime_metrics_json(null_mut(), cap, &mut len),
            "`buf` is NULL"
        );
        refused!(
            stellatune_runtime_metrics_json(b, cap, null_mut()),
            "`out_len` is NULL"
        );
        // last_error refuses NULL without touching the stored message.
        assert_eq!(
            stellatune_last_error(null_mut(), 64),
            STELLATUNE_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("`out_len` is NULL"));
    }
    // The client survived all of it.
    assert_eq!(
        stellatune_player_pause(client),
        STELLATUNE_ERR_NOTHING_PLAYING
    );

    // Argument errors come before state errors.
    ok(stellatune_runtime_shutdown());
    // SAFETY: NULL is what is being tested.
    let rc = unsafe { stellatune_player_play(client, null()) };
    expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &["`path` is NULL"]);
}

#[test]
fn invalid_utf8_is_refused_naming_the_parameter() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();
    let bad = not_utf8();
    let mut buf = vec![0 as c_char; 64];
    macro_rules! refused {
        ($call:expr, $param:expr) => {
            expect_err(
                $call,
                STELLATUNE_ERR_INVALID_ARGUMENT,
                &[concat!("`", $param, "` is not valid UTF-8"), "offset 1"],
            )
        };
    }
    // SAFETY: `bad` is a live CString and `buf` is valid for its length.
    unsafe {
        refused!(stellatune_runtime_init(bad.as_ptr()), "config_json");
        refused!(stellatune_player_play(client, bad.as_ptr()), "path");
        refused!(stellatune_player_queue_next(client, bad.as_ptr()), "path");
        refused!(
            stellatune_output_route_apply(client, bad.as_ptr()),
            "route_json"
        );
        refused!(
            stellatune_plugins_install(bad.as_ptr(), buf.as_mut_ptr(), buf.len()),
            "artifact_path"
        );
        refused!(stellatune_plugins_uninstall(bad.as_ptr()), "plugin_id");
    }
    ok(stellatune_runtime_shutdown());
}

#[test]
fn route_json_errors_name_what_is_wrong() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();
    let invalid = STELLATUNE_ERR_INVALID_ARGUMENT;
    expect_err(apply_route(client, "["), invalid, &["route"]);
    expect_err(apply_route(client, ""), invalid, &["route"]);
    expect_err(apply_route(client, "42"), invalid, &["kind"]);
    expect_err(
        apply_route(client, r#"{"path":"/tmp/x.wav"}"#),
        invalid,
        &["kind"],
    );
    expect_err(apply_route(client, r#"{"kind":7}"#), invalid, &["kind"]);
    expect_err(
        apply_route(client, r#"{"kind":"speaker"}"#),
        invalid,
        &["speaker"],
    );
    expect_err(apply_route(client, r#"{"kind":"wav"}"#), invalid, &["path"]);
    expect_err(
        apply_route(client, r#"{"kind":"wav","path":"/tmp/x.wav","volume":3}"#),
        invalid,
        &["volume"],
    );
    expect_err(
        apply_route(client, r#"{"kind":"wav","path":5}"#),
        invalid,
        &["`path`"],
    );
    expect_err(
        apply_route(
            client,
            r#"{"kind":"wav","path":"/tmp/x.wav","paced":"yes"}"#,
        ),
        invalid,
        &["`paced`"],
    );
    let unwritable = tmp.path().join("no-such-dir").join("out.wav");
    let route = serde_json::json!({ "kind": "wav", "path": unwritable }).to_string();
    expect_err(
        apply_route(client, &route),
        STELLATUNE_ERR_SINK,
        &["route_apply"],
    );
    // Windows builds always have device output. Elsewhere, without the `device` feature, the
    // output refuses its configuration: the caller asked for something this build cannot do.
    if !cfg!(any(feature = "device", windows)) {
        expect_err(
            apply_route(client, r#"{"kind":"device"}"#),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["device"],
        );
    }
    ok(apply_route(client, r#"{"kind":"null"}"#));
    let wav_out = tmp.path().join("out.wav");
    let route = serde_json::json!({ "kind": "wav", "path": wav_out, "paced": false }).to_string();
    ok(apply_route(client, &route));
    ok(stellatune_output_route_clear(client));
    ok(stellatune_runtime_shutdown());
}

#[test]
fn playback_errors_have_their_own_codes() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 1.0);
    let junk = tmp.path().join("junk.wav");
    std::fs::write(&junk, b"this is not audio at all, just some text bytes").unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();

    expect_err(play(client, &wav), STELLATUNE_ERR_NO_ROUTE, &["route"]);
    ok(apply_route(client, r#"{"kind":"null"}"#));
    expect_err(
        play(client, &tmp.path().join("missing.wav")),
        STELLATUNE_ERR_NOT_FOUND,
        &["missing.wav"],
    );
    expect_err(
        play(client, tmp.path()),
        STELLATUNE_ERR_NOT_FOUND,
        &["not a regular file"],
    );
    expect_err(
        play(client, &junk),
        STELLATUNE_ERR_UNSUPPORTED,
        &["junk.wav"],
    );
    expect_err(
        stellatune_player_pause(client),
        STELLATUNE_ERR_NOTHING_PLAYING,
        &["pause"],
    );
    expect_err(
        stellatune_player_resume(client),
        STELLATUNE_ERR_NOTHING_PLAYING,
        &["resume"],
    );
    expect_err(
        stellatune_player_seek_ms(client, 5),
        STELLATUNE_ERR_NOTHING_PLAYING,
        &["seek"],
    );
    let path = path_c(&wav);
    // SAFETY: a live CString.
    let rc = unsafe { stellatune_player_queue_next(client, path.as_ptr()) };
    expect_err(rc, STELLATUNE_ERR_NOTHING_PLAYING, &["queue_next"]);
    expect_err(
        stellatune_player_set_volume(client, 3.0),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["volume"],
    );
    expect_err(
        stellatune_player_set_volume(client, f32::NAN),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["volume"],
    );
    expect_err(
        stellatune_player_set_volume(client, -0.1),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["volume"],
    );
    // SAFETY: NULL is a documented input.
    let rc = unsafe { stellatune_player_set_replaygain(client, null()) };
    expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &["json"]);
    let bad_utf8 = not_utf8();
    // SAFETY: a live CString.
    let rc = unsafe { stellatune_player_set_replaygain(client, bad_utf8.as_ptr()) };
    expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &["json"]);
    for (json, needle) in [
        ("{", "replaygain"),
        (r#"{"mode":"loud"}"#, "loud"),
        (r#"{"mode":"track","extra":1}"#, "extra"),
        (r#"{"mode":"track","preamp_db":99}"#, "preamp_db"),
    ] {
        let json = c(json);
        // SAFETY: a live CString.
        let rc = unsafe { stellatune_player_set_replaygain(client, json.as_ptr()) };
        expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &[needle]);
    }
    let album = c(r#"{"mode":"album","preamp_db":-2.5,"prevent_clipping":false}"#);
    // SAFETY: a live CString.
    ok(unsafe { stellatune_player_set_replaygain(client, album.as_ptr()) });

    ok(play(client, &wav));
    // SAFETY: a live CString.
    ok(unsafe { stellatune_player_queue_next(client, path.as_ptr()) });
    expect_err(
        stellatune_player_seek_ms(client, 60_000),
        STELLATUNE_ERR_INVALID_ARGUMENT,
        &["past the end"],
    );
    ok(stellatune_player_seek_ms(client, 100));
    ok(stellatune_player_set_volume(client, 0.5));
    ok(stellatune_player_pause(client));
    ok(stellatune_player_resume(client));
    let mut buf = vec![0 as c_char; 4096];
    let mut len = 0;
    // SAFETY: `buf` is valid for its length, `len` for one write.
    ok(unsafe { stellatune_player_status_json(client, buf.as_mut_ptr(), buf.len(), &mut len) });
    // SAFETY: NUL-terminated on success.
    let status: serde_json::Value =
        serde_json::from_str(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap()).unwrap();
    assert_eq!(status["state"], "playing", "{status}");
    assert_eq!(status["volume"], 0.5, "{status}");
    assert_eq!(status["route"], "null", "{status}");
    assert!(status["queued_next"].is_u64(), "{status}");
    ok(stellatune_player_stop(client));
    ok(stellatune_runtime_shutdown());
}

#[test]
fn buffers_report_the_size_they_need() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();

    /// One of the functions that write JSON into a caller's buffer.
    type Writer<'a> = Box<dyn Fn(*mut c_char, usize, *mut usize) -> i32 + 'a>;
    // SAFETY (all three): the loop below passes a buffer valid for `cap` bytes and a valid
    // `len`.
    let writers: Vec<(&str, Writer)> = vec![
        (
            "metrics",
            // SAFETY: see the note above the list.
            Box::new(|b, c, l| unsafe { stellatune_runtime_metrics_json(b, c, l) }),
        ),
        (
            "plugins_list",
            // SAFETY: see the note above the list.
            Box::new(|b, c, l| unsafe { stellatune_plugins_list_json(b, c, l) }),
        ),
        (
            "status",
            // SAFETY: see the note above the list.
            Box::new(|b, c, l| unsafe { stellatune_player_status_json(client, b, c, l) }),
        ),
    ];
    for (what, write) in writers {
        let mut buf = vec![0x55 as c_char; 8192];
        let mut len = 0usize;
        // cap 0: nothing written, the size needed reported.
        let rc = write(buf.as_mut_ptr(), 0, &mut len);
        expect_err(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL, &["buffer too small"]);
        assert_eq!(buf[0], 0x55, "{what}: cap 0 writes nothing");
        let needed = len;
        assert!(needed >= 3, "{what}: needed {needed}");
        // One byte short: still too small, buffer left as an empty string.
        let rc = write(buf.as_mut_ptr(), needed - 1, &mut len);
        expect_err(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL, &[&needed.to_string()]);
        assert_eq!(len, needed, "{what}");
        assert_eq!(
            buf[0], 0,
            "{what}: a too-small buffer holds an empty string"
        );
        // Exactly enough.
        ok(write(buf.as_mut_ptr(), needed, &mut len));
        assert_eq!(len, needed - 1, "{what}");
        // SAFETY: NUL-terminated on success.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
        assert_eq!(text.len(), len);
        serde_json::from_str::<serde_json::Value>(text).expect("JSON");
        if what == "plugins_list" {
            assert_eq!(text, "[]");
        }
    }

    // The plugin id buffer needs room for at least the NUL.
    let artifact = c("/tmp/p.zip");
    let mut id = [0 as c_char; 4];
    // SAFETY: live CString; `id` valid for 4 bytes (0 passed).
    let rc = unsafe { stellatune_plugins_install(artifact.as_ptr(), id.as_mut_ptr(), 0) };
    expect_err(rc, STELLATUNE_ERR_INVALID_ARGUMENT, &["`cap` is 0"]);
    ok(stellatune_runtime_shutdown());
}

#[test]
fn last_error_truncates_safely_and_is_per_thread() {
    let _guard = lock();
    // Any thread starts with an empty message.
    std::thread::spawn(|| assert_eq!(last_error(), ""))
        .join()
        .unwrap();

    // SAFETY: NULL is what is being tested.
    let rc = unsafe { stellatune_player_play(1, null()) };
    assert_eq!(rc, STELLATUNE_ERR_INVALID_ARGUMENT);
    let full = last_error();
    assert_eq!(
        full,
        "stellatune_player_play: invalid argument: `path` is NULL"
    );

    let mut small = [0x55 as c_char; 16];
    // SAFETY: `small` is valid for 8 of its 16 bytes.
    let rc = unsafe { stellatune_last_error(small.as_mut_ptr(), 8) };
    assert_eq!(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL);
    // SAFETY: truncated output is still NUL-terminated.
    let cut = unsafe { CStr::from_ptr(small.as_ptr()) }.to_str().unwrap();
    assert_eq!(cut, &full[..7]);
    assert_eq!(small[8], 0x55, "nothing written past cap");
    assert_eq!(
        // SAFETY: cap 0 is refused before any write.
        unsafe { stellatune_last_error(small.as_mut_ptr(), 0) },
        STELLATUNE_ERR_INVALID_ARGUMENT
    );
    let mut one = [0x55 as c_char; 1];
    assert_eq!(
        // SAFETY: `one` is valid for 1 byte.
        unsafe { stellatune_last_error(one.as_mut_ptr(), 1) },
        STELLATUNE_ERR_BUFFER_TOO_SMALL
    );
    assert_eq!(one[0], 0);

    // Failures of last_error itself and successful calls keep the message.
    assert_eq!(stellatune_abi_version(), STELLATUNE_ABI_VERSION);
    let mut len = 0;
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: `buf` valid for its length, `len` for one write.
    ok(unsafe { stellatune_runtime_metrics_json(buf.as_mut_ptr(), buf.len(), &mut len) });
    assert_eq!(last_error(), full);
    // Another thread has its own message.
    std::thread::spawn(|| {
        expect_err(
            stellatune_player_pause(u64::MAX),
            STELLATUNE_ERR_NOT_INITIALIZED,
            &["pause"],
        );
    })
    .join()
    .unwrap();
    assert_eq!(last_error(), full);
}

#[test]
fn unknown_disposed_and_evicted_clients() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 0.5);
    fresh_runtime(tmp.path(), 30_000);

    // Never issued.
    every_client_call_fails(
        u64::MAX,
        &wav,
        STELLATUNE_ERR_UNKNOWN_CLIENT,
        "unknown client",
    );
    every_client_call_fails(0, &wav, STELLATUNE_ERR_UNKNOWN_CLIENT, "unknown client 0");

    // Disposed: every later call, including a second dispose, says so.
    let client = create_client();
    ok(stellatune_player_dispose_client(client));
    every_client_call_fails(client, &wav, STELLATUNE_ERR_CLIENT_DISPOSED, "disposed");

    // Evicted by a hot restart; a client created after it lives.
    let old = create_client();
    ok(stellatune_runtime_prepare_hot_restart());
    let new = create_client();
    every_client_call_fails(old, &wav, STELLATUNE_ERR_CLIENT_EVICTED, "hot restart");
    ok(apply_route(new, r#"{"kind":"null"}"#));
    ok(play(new, &wav));
    poll_until(new, "track_started", Duration::from_secs(10));

    // A poll blocked when the client is evicted wakes at once with CLIENT_EVICTED.
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        loop {
            let (rc, _, _) = poll(new, 5_000, 4096);
            if rc != STELLATUNE_OK {
                return (rc, started.elapsed());
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    ok(stellatune_runtime_prepare_hot_restart());
    let (rc, waited) = waiter.join().unwrap();
    assert_eq!(rc, STELLATUNE_ERR_CLIENT_EVICTED, "{}", name(rc));
    assert!(waited < Duration::from_secs(3), "woke after {waited:?}");
    ok(stellatune_runtime_shutdown());
}

#[test]
fn poll_too_small_keeps_the_event_and_timeouts_are_empty() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    let wav = write_wav(tmp.path(), "tone.wav", 1.0);
    fresh_runtime(tmp.path(), 30_000);
    let client = create_client();

    // Nothing happened yet: a timeout is success with no text.
    let started = Instant::now();
    let (rc, text, len) = poll(client, 50, 256);
    ok(rc);
    assert_eq!((text.as_str(), len), ("", 0));
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "waited {:?}",
        started.elapsed()
    );
    let (rc, text, len) = poll(client, 0, 256);
    ok(rc);
    assert_eq!((text.as_str(), len), ("", 0));

    ok(apply_route(client, r#"{"kind":"null"}"#));
    ok(play(client, &wav));
    // The first event (route_changed) does not fit in 4 bytes: its size comes back, twice,
    // because it stays queued.
    let (rc, _, needed) = poll(client, 1_000, 4);
    expect_err(
        rc,
        STELLATUNE_ERR_BUFFER_TOO_SMALL,
        &["poll_event", "buffer too small"],
    );
    let (rc, _, again) = poll(client, 1_000, 0);
    assert_eq!(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL);
    assert_eq!(again, needed, "the same event is still first");
    let (rc, text, len) = poll(client, 1_000, needed);
    ok(rc);
    assert_eq!(len, needed - 1);
    assert_eq!(text, r#"{"type":"route_changed","route":"null"}"#);
    // Then the rest, in order.
    let (rc, text, _) = poll(client, 1_000, 4096);
    ok(rc);
    assert_eq!(text, r#"{"type":"state_changed","state":"playing"}"#);
    let started = poll_until(client, "track_started", Duration::from_secs(10));
    assert_eq!(started["path"], wav.to_str().unwrap());
    assert_eq!(started["sample_rate"], 44_100);
    let position = poll_until(client, "position", Duration::from_secs(10));
    assert!(position["position_ms"].is_u64(), "{position}");
    ok(stellatune_runtime_shutdown());
}

#[test]
fn a_poll_longer_than_the_lease_keeps_the_client_alive() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 150);
    let waiting = create_client();
    // One poll of four leases with nothing to report: the client must outlive it.
    let (rc, text, _) = poll(waiting, 600, 4096);
    ok(rc);
    assert_eq!(text, "");
    expect_err(
        stellatune_player_pause(waiting),
        STELLATUNE_ERR_NOTHING_PLAYING,
        &["nothing is playing"],
    );

    // A silent client is evicted, and the polling one hears about it.
    let silent = create_client();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut notice = None;
    while notice.is_none() && Instant::now() < deadline {
        let (rc, text, _) = poll(waiting, 100, 4096);
        ok(rc);
        if text.contains("client_evicted") {
            notice = Some(serde_json::from_str::<serde_json::Value>(&text).unwrap());
        }
    }
    let notice = notice.expect("a client_evicted notice");
    assert_eq!(notice["client_id"], silent);
    assert!(
        notice["reason"].as_str().unwrap().contains("lease"),
        "{notice}"
    );
    expect_err(
        stellatune_player_pause(silent),
        STELLATUNE_ERR_CLIENT_EVICTED,
        &["lease"],
    );
    ok(stellatune_player_dispose_client(waiting));
    ok(stellatune_runtime_shutdown());
}

#[test]
fn plugin_functions_refuse_bad_artifacts_and_unknown_ids() {
    let _guard = lock();
    let tmp = tempfile::tempdir().unwrap();
    fresh_runtime(tmp.path(), 30_000);
    let missing = c(&tmp.path().join("no-such-plugin.zip").to_string_lossy());
    let not_a_plugin_dir = tmp.path().join("not-a-plugin");
    std::fs::create_dir_all(&not_a_plugin_dir).unwrap();
    let not_a_plugin = c(&not_a_plugin_dir.to_string_lossy());
    let empty = c("");
    let plugin = c("org.example.plugin");
    let mut id = [0x55 as c_char; 64];
    // SAFETY: live CStrings and `id` valid for its length.
    unsafe {
        expect_err(
            stellatune_plugins_install(missing.as_ptr(), id.as_mut_ptr(), id.len()),
            STELLATUNE_ERR_PLUGIN,
            &["no-such-plugin.zip"],
        );
        assert_eq!(id[0], 0, "out_id holds an empty string");
        expect_err(
            stellatune_plugins_install(not_a_plugin.as_ptr(), id.as_mut_ptr(), id.len()),
            STELLATUNE_ERR_PLUGIN,
            &["plugin.json"],
        );
        expect_err(
            stellatune_plugins_install(empty.as_ptr(), id.as_mut_ptr(), id.len()),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`artifact_path` is empty"],
        );
        expect_err(
            stellatune_plugins_uninstall(plugin.as_ptr()),
            STELLATUNE_ERR_UNKNOWN_PLUGIN,
            &["org.example.plugin"],
        );
        expect_err(
            stellatune_plugins_uninstall(empty.as_ptr()),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`plugin_id` is empty"],
        );
        let mut buf = [0 as c_char; 8];
        let mut len = 0;
        ok(stellatune_plugins_list_json(
            buf.as_mut_ptr(),
            buf.len(),
            &mut len,
        ));
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "[]");
        assert_eq!(len, 2);
    }
    ok(stellatune_plugins_reload());
    ok(stellatune_runtime_shutdown());
}
