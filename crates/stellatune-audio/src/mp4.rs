//! The edit list of an MP4/M4A file's audio track: which stretch of the decoded samples is
//! the track. Encoders put priming samples (AAC: 1024 or 2112 frames) in front of the audio
//! and pad the last packet, and say so in the `elst` atom; symphonia 0.5's MP4 reader does
//! not apply it, so playback trims by it here. Files that are not MP4, or whose edit list is
//! not one plain edit, are left as they are.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The playable stretch, in frames of the track's sample rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// Frames to drop at the start (the encoder's priming).
    pub start: u64,
    /// Frames that follow it; what comes after is padding.
    pub frames: u64,
}

impl Window {
    pub fn end(&self) -> u64 {
        self.start + self.frames
    }
}

/// A `moov` larger than this is not read (no real audio file comes near it).
const MAX_MOOV: u64 = 64 << 20;

/// The edit window of the first audio track of the MP4 file at `path`, when its media
/// timescale is `sample_rate` (true of every encoder in use). `None` for any other file or
/// any doubt.
pub(crate) fn edit_window(path: &Path, sample_rate: u32) -> Option<Window> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let mut pos = 0u64;
    let mut first = true;
    while pos + 8 <= len {
        file.seek(SeekFrom::Start(pos)).ok()?;
        let mut head = [0u8; 16];
        file.read_exact(&mut head[..8]).ok()?;
        let kind: [u8; 4] = head[4..8].try_into().ok()?;
        let (size, header) = match u32::from_be_bytes(head[..4].try_into().ok()?) {
            0 => (len - pos, 8),
            1 => {
                file.read_exact(&mut head[8..16]).ok()?;
                (u64::from_be_bytes(head[8..16].try_into().ok()?), 16)
            }
            n => (u64::from(n), 8),
        };
        if first && &kind != b"ftyp" {
            return None;
        }
        first = false;
        if size < header || pos.checked_add(size)? > len {
            return None;
        }
        if &kind == b"moov" {
            if size > MAX_MOOV {
                return None;
            }
            let mut moov = vec![0u8; (size - header) as usize];
            file.read_exact(&mut moov).ok()?;
            return window_in_moov(&moov, sample_rate);
        }
        pos += size;
    }
    None
}

/// The children of an atom body: (type, body).
fn children(mut data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    std::iter::from_fn(move || {
        if data.len() < 8 {
            return None;
        }
        let size = u32::from_be_bytes(data[..4].try_into().ok()?) as u64;
        let kind: [u8; 4] = data[4..8].try_into().ok()?;
        let (size, header) = match size {
            0 => (data.len() as u64, 8),
            1 if data.len() >= 16 => (u64::from_be_bytes(data[8..16].try_into().ok()?), 16),
            n => (n, 8),
        };
        if size < header || size > data.len() as u64 {
            return None;
        }
        let body = &data[header as usize..size as usize];
        data = &data[size as usize..];
        Some((kind, body))
    })
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).find(|(k, _)| k == kind).map(|(_, b)| b)
}

fn be_u32(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(
        data.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// The timescale of an `mvhd` or `mdhd` body.
fn timescale(header: &[u8]) -> Option<u64> {
    match header.first()? {
        0 => be_u32(header, 12),
        1 => be_u32(header, 20),
        _ => None,
    }
}

fn window_in_moov(moov: &[u8], sample_rate: u32) -> Option<Window> {
    let movie_scale = timescale(child(moov, b"mvhd")?)?;
    let trak = children(moov)
        .filter(|(k, _)| k == b"trak")
        .map(|(_, body)| body)
        .find(|trak| {
            child(trak, b"mdia")
                .and_then(|mdia| child(mdia, b"hdlr"))
                .and_then(|hdlr| hdlr.get(8..12))
                == Some(b"soun".as_slice())
        })?;
    let media_scale = timescale(child(child(trak, b"mdia")?, b"mdhd")?)?;
    if media_scale != u64::from(sample_rate) || movie_scale == 0 {
        return None;
    }
    let elst = child(child(trak, b"edts")?, b"elst")?;
    let version = *elst.first()?;
    let count = be_u32(elst, 4)?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut edits = Vec::new();
    for i in 0..count.min(16) as usize {
        let at = 8 + i * entry_len;
        let (duration, media_time) = if version == 1 {
            (be_u64(elst, at)?, be_u64(elst, at + 8)? as i64)
        } else {
            (
                be_u32(elst, at)?,
                i64::from(be_u32(elst, at + 4)? as u32 as i32),
            )
        };
        // An empty edit (media time -1) delays the track; it holds no samples to trim.
        if media_time >= 0 {
            edits.push((duration, media_time as u64));
        }
    }
    let [(duration, start)] = edits[..] else {
        return None;
    };
    let frames = u128::from(duration) * u128::from(media_scale) / u128::from(movie_scale);
    Some(Window {
        start,
        frames: u64::try_from(frames).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn header_v0(scale: u32) -> Vec<u8> {
        let mut h = vec![0u8; 12];
        h.extend(scale.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h
    }

    fn moov(edits: &[(u32, i32)], media_scale: u32) -> Vec<u8> {
        let mut elst = vec![0, 0, 0, 0];
        elst.extend((edits.len() as u32).to_be_bytes());
        for (d, t) in edits {
            elst.extend(d.to_be_bytes());
            elst.extend(t.to_be_bytes());
            elst.extend(0x0001_0000u32.to_be_bytes());
        }
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(b"soun");
        let mdia = [atom(b"mdhd", &header_v0(media_scale)), atom(b"hdlr", &hdlr)].concat();
        let trak = [atom(b"edts", &atom(b"elst", &elst)), atom(b"mdia", &mdia)].concat();
        [atom(b"mvhd", &header_v0(1000)), atom(b"trak", &trak)].concat()
    }

    #[test]
    fn one_edit_gives_the_window() {
        // 1.5 s at a movie timescale of 1000, starting after 1024 priming frames.
        let m = moov(&[(1500, 1024)], 44_100);
        assert_eq!(
            window_in_moov(&m, 44_100),
            Some(Window {
                start: 1024,
                frames: 66_150
            })
        );
        // An empty edit in front is skipped.
        let m = moov(&[(10, -1), (1500, 2112)], 44_100);
        assert_eq!(window_in_moov(&m, 44_100).map(|w| w.start), Some(2112));
    }

    #[test]
    fn anything_unusual_is_left_alone() {
        assert_eq!(window_in_moov(&moov(&[(1500, 1024)], 48_000), 44_100), None);
        assert_eq!(
            window_in_moov(&moov(&[(700, 0), (800, 5000)], 44_100), 44_100),
            None
        );
        assert_eq!(window_in_moov(&moov(&[], 44_100), 44_100), None);
        assert_eq!(window_in_moov(b"\0\0\0\x04junk", 44_100), None);
    }
}
