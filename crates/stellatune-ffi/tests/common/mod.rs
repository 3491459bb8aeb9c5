//! Helpers shared by the integration tests: a generated WAV, and safe wrappers that call the
//! exported functions the way a C caller would.
#![allow(dead_code)]

use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stellatune_ffi::*;

/// Writes the standard test tone (stereo 16-bit 44.1 kHz) of `seconds` to `dir/name`.
pub fn write_wav(dir: &Path, name: &str, seconds: f32) -> PathBuf {
    let path = dir.join(name);
    stellatune_test_support::tone::write_tone(&path, seconds);
    path
}

pub fn c(text: &str) -> CString {
    CString::new(text).expect("no NUL in test strings")
}

pub fn path_c(path: &Path) -> CString {
    c(path.to_str().expect("utf-8 temp path"))
}

/// This thread's last error, read through the C ABI.
pub fn last_error() -> String {
    let mut buf = vec![0 as c_char; 4096];
    // SAFETY: `buf` is valid for its length.
    let rc = unsafe { stellatune_last_error(buf.as_mut_ptr(), buf.len()) };
    assert_eq!(rc, STELLATUNE_OK, "last_error itself failed");
    // SAFETY: `stellatune_last_error` NUL-terminated the buffer.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_str()
        .expect("utf-8")
        .to_owned()
}

/// Asserts `rc == want` and that the last error contains every one of `needles`.
#[track_caller]
pub fn expect_err(rc: i32, want: i32, needles: &[&str]) {
    let message = last_error();
    assert_eq!(
        rc,
        want,
        "got {} want {}; last error: {message}",
        name(rc),
        name(want)
    );
    for needle in needles {
        assert!(
            message.contains(needle),
            "last error {message:?} lacks {needle:?}"
        );
    }
}

#[track_caller]
pub fn ok(rc: i32) {
    if rc != STELLATUNE_OK {
        panic!("call failed: {} ({rc}): {}", name(rc), last_error());
    }
}

pub fn name(code: i32) -> String {
    // SAFETY: `stellatune_error_name` returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(stellatune_error_name(code)) }
        .to_str()
        .unwrap()
        .to_owned()
}

pub fn init(config: Option<&str>) -> i32 {
    let config = config.map(c);
    let ptr = config.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
    // SAFETY: `ptr` is NULL or a live CString.
    unsafe { stellatune_runtime_init(ptr) }
}

pub fn create_client() -> u64 {
    let mut id = 0;
    // SAFETY: `id` is a valid u64 out-pointer.
    ok(unsafe { stellatune_player_create_client(&mut id) });
    assert_ne!(id, 0);
    id
}

pub fn apply_route(client: u64, json: &str) -> i32 {
    let json = c(json);
    // SAFETY: `json` is a live CString.
    unsafe { stellatune_output_route_apply(client, json.as_ptr()) }
}

pub fn play(client: u64, path: &Path) -> i32 {
    let path = path_c(path);
    // SAFETY: `path` is a live CString.
    unsafe { stellatune_player_play(client, path.as_ptr()) }
}

/// One poll with a buffer of `cap` bytes: (code, text, *out_len).
pub fn poll(client: u64, timeout_ms: u32, cap: usize) -> (i32, String, usize) {
    let mut buf = vec![0x55 as c_char; cap.max(1)];
    let mut len = usize::MAX;
    // SAFETY: `buf` is valid for at least `cap` bytes and `len` for one write.
    let rc = unsafe {
        stellatune_player_poll_event(client, timeout_ms, buf.as_mut_ptr(), cap, &mut len)
    };
    let text = if rc == STELLATUNE_OK {
        // SAFETY: on success the buffer is NUL-terminated.
        let text = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            text.len(),
            len,
            "out_len must be the length without the NUL"
        );
        text
    } else {
        String::new()
    };
    (rc, text, len)
}

/// Polls until an event whose `type` is `kind` arrives; panics after `within`.
pub fn poll_until(client: u64, kind: &str, within: Duration) -> serde_json::Value {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let (rc, text, _) = poll(client, 100, 4096);
        ok(rc);
        if text.is_empty() {
            continue;
        }
        let event: serde_json::Value = serde_json::from_str(&text).expect("event is JSON");
        if event["type"] == kind {
            return event;
        }
    }
    panic!("no {kind} event within {within:?}");
}

pub fn metrics() -> serde_json::Value {
    let mut buf = vec![0 as c_char; 4096];
    let mut len = 0;
    // SAFETY: `buf` is valid for its length and `len` for one write.
    ok(unsafe { stellatune_runtime_metrics_json(buf.as_mut_ptr(), buf.len(), &mut len) });
    // SAFETY: on success the buffer is NUL-terminated.
    let text = unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap();
    serde_json::from_str(text).expect("metrics are JSON")
}
