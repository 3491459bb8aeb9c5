//! Fixtures made with the `ffmpeg` program: encoded audio (AAC, ALAC, AIFF, ADPCM, FLAC, MP3)
//! with tags and an embedded cover, from WAV files the tests write themselves.
//!
//! Whether ffmpeg is there decides what a test does: on CI (`CI=true`) a missing ffmpeg fails
//! the test (`.ci/run` installs it); elsewhere the test is skipped with a printed note. On
//! Windows (the suite also runs under Wine, where ffmpeg is a Linux program) the tests that
//! need it are always skipped with a note.

use std::path::Path;
use std::process::{Command, Stdio};

/// A working `ffmpeg`, or `None` when the calling test should skip (a note is printed).
///
/// # Panics
/// When `CI=true` and ffmpeg cannot be run: CI must run these tests.
pub fn ffmpeg(test: &str) -> Option<Ffmpeg> {
    if cfg!(windows) {
        eprintln!("note: {test} skipped: fixtures are made with ffmpeg, which does not run here");
        return None;
    }
    let works = Command::new("ffmpeg")
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if works {
        return Some(Ffmpeg(()));
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{test}: `ffmpeg` is not installed, and CI must run this test (.ci/run installs it)"
        );
    }
    eprintln!("note: {test} skipped: `ffmpeg` is not on PATH (apt-get install ffmpeg)");
    None
}

/// Proof that ffmpeg runs; the only way to make fixtures with it.
pub struct Ffmpeg(());

impl Ffmpeg {
    /// Runs `ffmpeg -nostdin -y -hide_banner -loglevel error ARGS` and panics with its
    /// message when it fails.
    pub fn run(&self, args: &[&str]) {
        let out = Command::new("ffmpeg")
            .args(["-nostdin", "-y", "-hide_banner", "-loglevel", "error"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
        assert!(
            out.status.success(),
            "ffmpeg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Encodes `input` into `output` with the codec arguments `codec` (e.g. `["-c:a", "alac"]`).
    pub fn encode(&self, input: &Path, output: &Path, codec: &[&str]) {
        let mut args = vec!["-i", path_str(input)];
        args.extend_from_slice(codec);
        args.push(path_str(output));
        self.run(&args);
    }

    /// Encodes `input` into `output` with `tags` (`key=value`, as `-metadata` takes them) and,
    /// when given, `cover` embedded as the front cover (`attached_pic`).
    pub fn encode_tagged(
        &self,
        input: &Path,
        output: &Path,
        codec: &[&str],
        tags: &[&str],
        cover: Option<&Path>,
    ) {
        let mut args = vec!["-i", path_str(input)];
        if let Some(cover) = cover {
            args.extend(["-i", path_str(cover)]);
            args.extend(["-map", "0:a", "-map", "1:v", "-c:v", "copy"]);
            args.extend(["-disposition:v", "attached_pic"]);
            args.extend(["-metadata:s:v", "comment=Cover (front)"]);
        }
        args.extend_from_slice(codec);
        for tag in tags {
            args.extend(["-metadata", tag]);
        }
        args.push(path_str(output));
        self.run(&args);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// A valid PNG image of `width` x `height` RGB pixels (a gradient), small enough to embed as a
/// cover: stored (uncompressed) deflate blocks, so no compressor is needed.
pub fn tiny_png(width: u32, height: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            raw.extend([(x * 40) as u8, (y * 40) as u8, 0x80]);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in chunks.iter().enumerate() {
        zlib.push(u8::from(i + 1 == chunks.len()));
        let len = block.len() as u16;
        zlib.extend(len.to_le_bytes());
        zlib.extend((!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    zlib.extend(adler32(&raw).to_be_bytes());

    let mut ihdr = Vec::new();
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter method, no interlace

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        png.extend((data.len() as u32).to_be_bytes());
        let start = png.len();
        png.extend_from_slice(kind);
        png.extend_from_slice(&data);
        let crc = crc32(&png[start..]);
        png.extend(crc.to_be_bytes());
    }
    png
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in data {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        let png = tiny_png(2, 2);
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(png.ends_with(&[0xae, 0x42, 0x60, 0x82]), "IEND's CRC");
    }
}
