//! `stellatune_media_probe_json` and `stellatune_media_cover` through the C ABI: they work
//! without a runtime, follow the buffer protocol, copy the cover's bytes as stored, and
//! answer bad input with a code and a last error. Fixtures with a cover are made by ffmpeg
//! (skipped as `stellatune_test_support::ffmpeg` says).

mod common;

use std::ffi::c_char;
use std::ptr::{null, null_mut};

use common::*;
use stellatune_ffi::*;
use stellatune_test_support::ffmpeg::{ffmpeg, tiny_png};
use stellatune_test_support::tone::{RATE, multichannel_tones, write_wav_int};

fn probe(path: &std::ffi::CStr, cap: usize) -> (i32, String, usize) {
    let mut buf = vec![0 as c_char; cap.max(1)];
    let mut len = usize::MAX;
    // SAFETY: `buf` has `cap` bytes (at least one), `len` is a valid out-pointer.
    let rc = unsafe { stellatune_media_probe_json(path.as_ptr(), buf.as_mut_ptr(), cap, &mut len) };
    let text = if rc == STELLATUNE_OK {
        let bytes: Vec<u8> = buf[..len].iter().map(|&b| b as u8).collect();
        String::from_utf8(bytes).unwrap()
    } else {
        String::new()
    };
    (rc, text, len)
}

fn cover(path: &std::ffi::CStr, cap: usize) -> (i32, Vec<u8>, usize) {
    let mut buf = vec![0u8; cap.max(1)];
    let mut len = usize::MAX;
    // SAFETY: as above.
    let rc = unsafe { stellatune_media_cover(path.as_ptr(), buf.as_mut_ptr(), cap, &mut len) };
    buf.truncate(if rc == STELLATUNE_OK { len } else { 0 });
    (rc, buf, len)
}

/// A plain WAV: probed before any init (the tests of this file never start the runtime),
/// the buffer protocol, and NOT_FOUND for its missing cover.
#[test]
fn probe_works_without_a_runtime_and_follows_the_buffer_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("plain.wav");
    write_wav_int(
        &wav,
        RATE,
        2,
        16,
        &multichannel_tones(RATE as usize / 2, 2, 16),
    );
    let p = path_c(&wav);

    let (rc, _, needed) = probe(&p, 0);
    expect_err(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL, &["bytes needed"]);
    let (rc, json, len) = probe(&p, needed);
    ok(rc);
    assert_eq!(len + 1, needed, "the size asked for includes the NUL");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["codec"], "pcm_s16le");
    assert_eq!(v["sample_rate"], RATE);
    assert_eq!(v["channels"], 2);
    assert_eq!(v["bits_per_sample"], 16);
    assert_eq!(v["duration_ms"], 500);
    assert_eq!(v["cover"], serde_json::Value::Null);
    assert_eq!(v["tags"]["title"], serde_json::Value::Null);
    assert_eq!(v["replaygain"]["track_gain_db"], serde_json::Value::Null);
    assert_eq!(metrics()["state"], "uninit", "probing started no runtime");

    let (rc, _, len) = cover(&p, 64);
    expect_err(
        rc,
        STELLATUNE_ERR_NOT_FOUND,
        &["stellatune_media_cover", "no embedded cover"],
    );
    assert_eq!(len, 0);
}

#[test]
fn bad_input_gets_codes_and_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut buf = [0 as c_char; 256];
    let mut bytes = [0u8; 256];
    let mut len = 0usize;
    let wav = dir.path().join("plain.wav");
    write_wav_int(&wav, RATE, 1, 16, &multichannel_tones(1000, 1, 16));
    let p = path_c(&wav);
    // SAFETY: NULL pointers are what is being tested; the others are valid.
    unsafe {
        expect_err(
            stellatune_media_probe_json(null(), buf.as_mut_ptr(), 256, &mut len),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`path` is NULL"],
        );
        expect_err(
            stellatune_media_probe_json(p.as_ptr(), null_mut(), 256, &mut len),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`buf` is NULL"],
        );
        expect_err(
            stellatune_media_probe_json(p.as_ptr(), buf.as_mut_ptr(), 256, null_mut()),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`out_len` is NULL"],
        );
        expect_err(
            stellatune_media_cover(null(), bytes.as_mut_ptr(), 256, &mut len),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`path` is NULL"],
        );
        expect_err(
            stellatune_media_cover(p.as_ptr(), null_mut(), 256, &mut len),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["`buf` is NULL"],
        );
        let bad = std::ffi::CString::new(vec![b'a', 0xff]).unwrap();
        expect_err(
            stellatune_media_probe_json(bad.as_ptr(), buf.as_mut_ptr(), 256, &mut len),
            STELLATUNE_ERR_INVALID_ARGUMENT,
            &["not valid UTF-8"],
        );
    }
    let missing = path_c(&dir.path().join("missing.flac"));
    expect_err(
        probe(&missing, 256).0,
        STELLATUNE_ERR_NOT_FOUND,
        &["file not found"],
    );
    expect_err(
        cover(&missing, 256).0,
        STELLATUNE_ERR_NOT_FOUND,
        &["file not found"],
    );
    let folder = path_c(dir.path());
    expect_err(
        probe(&folder, 256).0,
        STELLATUNE_ERR_NOT_FOUND,
        &["not a regular file"],
    );
    let text = dir.path().join("notes.m4a");
    std::fs::write(&text, "plain text, not audio\n".repeat(50)).unwrap();
    let text = path_c(&text);
    expect_err(
        probe(&text, 256).0,
        STELLATUNE_ERR_UNSUPPORTED,
        &["unsupported format"],
    );
    expect_err(
        cover(&text, 256).0,
        STELLATUNE_ERR_UNSUPPORTED,
        &["unsupported format"],
    );
}

#[test]
fn cover_bytes_come_out_exactly_as_embedded() {
    let Some(ff) = ffmpeg("cover_bytes_come_out_exactly_as_embedded") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("src.wav");
    write_wav_int(&wav, RATE, 2, 16, &multichannel_tones(RATE as usize, 2, 16));
    let png = tiny_png(6, 4);
    let png_path = dir.path().join("cover.png");
    std::fs::write(&png_path, &png).unwrap();
    let m4a = dir.path().join("tagged.m4a");
    ff.encode_tagged(
        &wav,
        &m4a,
        &["-c:a", "aac"],
        &["title=Through the ABI", "track=7"],
        Some(&png_path),
    );
    let p = path_c(&m4a);

    let (rc, json, _) = probe(&p, 4096);
    ok(rc);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["codec"], "aac");
    assert_eq!(v["channels"], 2);
    assert_eq!(v["bits_per_sample"], serde_json::Value::Null);
    assert_eq!(v["tags"]["title"], "Through the ABI");
    assert_eq!(v["tags"]["track_number"], 7);
    assert_eq!(
        v["cover"],
        serde_json::json!({"mime": "image/png", "bytes": png.len()})
    );

    let (rc, _, needed) = cover(&p, 0);
    expect_err(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL, &["bytes needed"]);
    assert_eq!(needed, png.len(), "no NUL is counted for bytes");
    let (rc, _, len) = cover(&p, png.len() - 1);
    assert_eq!(rc, STELLATUNE_ERR_BUFFER_TOO_SMALL);
    assert_eq!(len, png.len());
    let (rc, bytes, len) = cover(&p, png.len());
    ok(rc);
    assert_eq!(len, png.len());
    assert_eq!(bytes, png);
}
