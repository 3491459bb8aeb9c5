//! Control frames: `u32` little-endian payload length, then the payload, which is the JSON of a
//! [`Frame`]. Requests travel on the sidecar's stdin, responses on its stdout; a response carries
//! the `id` of the request it answers.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Version of the control protocol and ring layout pair; exchanged in `Hello`. 2: the ring's
/// drained-at position, underrun count and device-queued frames (ring layout 2); `Stop` plays
/// out what the ring holds before it answers.
pub const PROTOCOL_VERSION: u32 = 2;

/// Largest accepted payload (the bytes after the length prefix). A bigger length prefix is
/// refused before anything is allocated for it.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

const PREFIX: usize = 4;

/// One control message: a caller-chosen correlation id and a body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame<T> {
    pub id: u64,
    pub body: T,
}

/// Player -> sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Must be the first frame; the sidecar exits after answering anything else first.
    Hello {
        protocol_version: u32,
        client_pid: u32,
    },
    ListDevices,
    DeviceCaps {
        device: String,
    },
    /// Opens the ring at `ring_path` (created by the player with `RingWriter`) and the device.
    /// `sample_rate` and `channels` must match the ring's header.
    OpenStream {
        stream_id: u64,
        device: String,
        ring_path: PathBuf,
        sample_rate: u32,
        channels: u16,
        buffer_frames: u32,
    },
    Start {
        stream_id: u64,
    },
    /// Plays out what the ring still holds (bounded in time), then stops the stream.
    Stop {
        stream_id: u64,
    },
    /// Stops the stream as `Stop` does if it runs (playing out what the ring holds), then
    /// closes its device and unmaps its ring.
    CloseStream {
        stream_id: u64,
    },
    Stats {
        stream_id: u64,
    },
    /// Closes every stream, answers `Ok`, and exits.
    Shutdown,
}

/// Sidecar -> player.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Hello {
        protocol_version: u32,
        sidecar_pid: u32,
    },
    Ok,
    Error {
        message: String,
    },
    Devices {
        devices: Vec<DeviceInfo>,
    },
    Caps {
        sample_rates: Vec<u32>,
        max_channels: u16,
    },
    Stats {
        frames_played: u64,
        underruns: u64,
        running: bool,
    },
}

/// One output device as listed by `ListDevices`; `id` is what `OpenStream` takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub id: String,
    pub name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// The length prefix announces more than [`MAX_FRAME_BYTES`]. [`read_frame`] has already
    /// skipped the payload, so the stream stays in step; after [`decode_frame`] the caller cannot
    /// resynchronise cheaply and should drop the connection.
    #[error("frame payload of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// The payload is not the JSON of a `Frame<T>`. `consumed` bytes (prefix and payload) were
    /// used up, so the stream stays in step; `id` is the frame's id when that much could be read.
    #[error("bad frame payload (id {id:?}): {source}")]
    BadPayload {
        id: Option<u64>,
        consumed: usize,
        #[source]
        source: serde_json::Error,
    },
    /// The value could not be encoded (e.g. a non-UTF-8 path), or encodes to more than
    /// [`MAX_FRAME_BYTES`].
    #[error("cannot encode frame: {0}")]
    Encode(String),
    /// End of stream, at a frame boundary or inside a frame.
    #[error("stream closed")]
    Closed,
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Encodes one frame (length prefix included).
///
/// Fails only if `body` cannot be represented as JSON (a map with non-string keys, a path that is
/// not UTF-8) or the payload would exceed [`MAX_FRAME_BYTES`], which the receiver would refuse.
pub fn encode_frame<T: Serialize>(id: u64, body: &T) -> Result<Vec<u8>, ProtoError> {
    let mut out = vec![0u8; PREFIX];
    serde_json::to_writer(&mut out, &Frame { id, body })
        .map_err(|e| ProtoError::Encode(e.to_string()))?;
    let len = out.len() - PREFIX;
    if len > MAX_FRAME_BYTES {
        return Err(ProtoError::Encode(format!(
            "payload of {len} bytes exceeds the {MAX_FRAME_BYTES}-byte limit"
        )));
    }
    out[..PREFIX].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Decodes the frame at the start of `buf`.
///
/// `Ok(None)`: `buf` holds only part of a frame; call again with more bytes. `Ok(Some((frame,
/// consumed)))`: the frame and how many bytes of `buf` it used. Never panics, whatever `buf`
/// holds.
pub fn decode_frame<T: DeserializeOwned>(
    buf: &[u8],
) -> Result<Option<(Frame<T>, usize)>, ProtoError> {
    let Some(prefix) = buf.first_chunk::<PREFIX>() else {
        return Ok(None);
    };
    let len = payload_len(*prefix)?;
    let Some(payload) = buf.get(PREFIX..PREFIX + len) else {
        return Ok(None);
    };
    let frame = parse_payload(payload)?;
    Ok(Some((frame, PREFIX + len)))
}

/// Writes one frame and flushes `w`.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, id: u64, body: &T) -> Result<(), ProtoError> {
    let bytes = encode_frame(id, body)?;
    w.write_all(&bytes)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame, blocking until it is complete.
///
/// End of input gives [`ProtoError::Closed`]. An oversized frame is skipped (read and discarded in
/// small pieces, never allocated) and reported as [`ProtoError::TooLarge`]; a payload that is not
/// a valid frame is reported as [`ProtoError::BadPayload`]. After either error the next call
/// reads the next frame.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<Frame<T>, ProtoError> {
    let mut prefix = [0u8; PREFIX];
    read_exact_or_closed(r, &mut prefix)?;
    let len = match payload_len(prefix) {
        Ok(len) => len,
        Err(e) => {
            let announced = u64::from(u32::from_le_bytes(prefix));
            let skipped = io::copy(&mut r.by_ref().take(announced), &mut io::sink())?;
            if skipped < announced {
                return Err(ProtoError::Closed);
            }
            return Err(e);
        }
    };
    let mut payload = vec![0u8; len];
    read_exact_or_closed(r, &mut payload)?;
    parse_payload(&payload)
}

fn payload_len(prefix: [u8; PREFIX]) -> Result<usize, ProtoError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_FRAME_BYTES {
        return Err(ProtoError::TooLarge {
            len,
            max: MAX_FRAME_BYTES,
        });
    }
    Ok(len)
}

fn parse_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<Frame<T>, ProtoError> {
    serde_json::from_slice(payload).map_err(|source| {
        #[derive(Deserialize)]
        struct IdOnly {
            id: u64,
        }
        ProtoError::BadPayload {
            id: serde_json::from_slice::<IdOnly>(payload).ok().map(|f| f.id),
            consumed: PREFIX + payload.len(),
            source,
        }
    })
}

fn read_exact_or_closed<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), ProtoError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => ProtoError::Closed,
        _ => ProtoError::Io(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn samples() -> Vec<Request> {
        vec![
            Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                client_pid: 42,
            },
            Request::ListDevices,
            Request::DeviceCaps {
                device: "null".into(),
            },
            Request::OpenStream {
                stream_id: 7,
                device: "wav:/tmp/x y.wav".into(),
                ring_path: "/dev/shm/ring-1-7.shm".into(),
                sample_rate: 48_000,
                channels: 2,
                buffer_frames: 512,
            },
            Request::Start { stream_id: 7 },
            Request::Stop { stream_id: 7 },
            Request::CloseStream { stream_id: 7 },
            Request::Stats {
                stream_id: u64::MAX,
            },
            Request::Shutdown,
        ]
    }

    #[test]
    fn round_trip_requests_and_responses() {
        for (i, req) in samples().into_iter().enumerate() {
            let bytes = encode_frame(i as u64, &req).unwrap();
            let (frame, used) = decode_frame::<Request>(&bytes).unwrap().unwrap();
            assert_eq!(used, bytes.len());
            assert_eq!(
                frame,
                Frame {
                    id: i as u64,
                    body: req
                }
            );
        }
        let responses = [
            Response::Hello {
                protocol_version: 1,
                sidecar_pid: 9,
            },
            Response::Ok,
            Response::Error {
                message: "nope \u{1F600}".into(),
            },
            Response::Devices {
                devices: vec![DeviceInfo {
                    id: "null".into(),
                    name: "Null".into(),
                }],
            },
            Response::Caps {
                sample_rates: vec![44_100, 48_000],
                max_channels: 8,
            },
            Response::Stats {
                frames_played: 1,
                underruns: 2,
                running: true,
            },
        ];
        let mut stream = Vec::new();
        for (i, r) in responses.iter().enumerate() {
            write_frame(&mut stream, i as u64, r).unwrap();
        }
        let mut cur = Cursor::new(stream);
        for (i, r) in responses.iter().enumerate() {
            let f: Frame<Response> = read_frame(&mut cur).unwrap();
            assert_eq!(f.id, i as u64);
            assert_eq!(&f.body, r);
        }
        assert!(matches!(
            read_frame::<_, Response>(&mut cur),
            Err(ProtoError::Closed)
        ));
    }

    #[test]
    fn oversized_prefix_is_refused_without_allocation_and_skipped_by_reader() {
        let mut buf = ((MAX_FRAME_BYTES + 1) as u32).to_le_bytes().to_vec();
        assert!(matches!(
            decode_frame::<Request>(&buf),
            Err(ProtoError::TooLarge { .. })
        ));
        // u32::MAX announced with no payload behind it: the reader reports a closed stream.
        let huge = u32::MAX.to_le_bytes();
        assert!(matches!(
            read_frame::<_, Request>(&mut Cursor::new(huge)),
            Err(ProtoError::Closed)
        ));
        // An oversized frame followed by a good one: skipped, then the good one is read.
        buf.extend(std::iter::repeat_n(b'x', MAX_FRAME_BYTES + 1));
        buf.extend(encode_frame(5, &Request::Shutdown).unwrap());
        let mut cur = Cursor::new(buf);
        assert!(matches!(
            read_frame::<_, Request>(&mut cur),
            Err(ProtoError::TooLarge { .. })
        ));
        assert_eq!(
            read_frame::<_, Request>(&mut cur).unwrap(),
            Frame {
                id: 5,
                body: Request::Shutdown
            }
        );
    }

    #[test]
    fn bad_payload_keeps_the_stream_in_step_and_reports_the_id() {
        let body = br#"{"id":77,"body":{"type":"no_such_request"}}"#;
        let mut buf = (body.len() as u32).to_le_bytes().to_vec();
        buf.extend_from_slice(body);
        buf.extend(encode_frame(78, &Request::ListDevices).unwrap());
        match decode_frame::<Request>(&buf) {
            Err(ProtoError::BadPayload {
                id: Some(77),
                consumed,
                ..
            }) => assert_eq!(consumed, 4 + body.len()),
            other => panic!("unexpected {other:?}"),
        }
        let mut cur = Cursor::new(buf);
        assert!(matches!(
            read_frame::<_, Request>(&mut cur),
            Err(ProtoError::BadPayload { id: Some(77), .. })
        ));
        assert_eq!(read_frame::<_, Request>(&mut cur).unwrap().id, 78);
    }

    #[test]
    fn non_utf8_path_fails_to_encode_instead_of_panicking() {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let p = PathBuf::from(std::ffi::OsStr::from_bytes(b"/tmp/\xff.shm"));
            let req = Request::OpenStream {
                stream_id: 1,
                device: "null".into(),
                ring_path: p,
                sample_rate: 48_000,
                channels: 2,
                buffer_frames: 256,
            };
            assert!(matches!(encode_frame(1, &req), Err(ProtoError::Encode(_))));
        }
    }

    fn decode_both(bytes: &[u8]) {
        let _ = decode_frame::<Request>(bytes);
        let _ = decode_frame::<Response>(bytes);
        let mut cur = Cursor::new(bytes);
        // Reads until the input runs out; each call consumes at least the prefix.
        for _ in 0..bytes.len() + 1 {
            if let Err(ProtoError::Closed) = read_frame::<_, Request>(&mut cur) {
                break;
            }
        }
    }

    fn any_request() -> impl Strategy<Value = (u64, Request)> {
        (
            any::<u64>(),
            0usize..9,
            any::<u64>(),
            "[ -~]{0,40}",
            any::<u32>(),
            any::<u16>(),
        )
            .prop_map(|(id, which, sid, s, n, ch)| {
                let req = match which {
                    0 => Request::Hello {
                        protocol_version: n,
                        client_pid: n / 3,
                    },
                    1 => Request::ListDevices,
                    2 => Request::DeviceCaps { device: s },
                    3 => Request::OpenStream {
                        stream_id: sid,
                        device: s.clone(),
                        ring_path: s.into(),
                        sample_rate: n,
                        channels: ch,
                        buffer_frames: n / 7,
                    },
                    4 => Request::Start { stream_id: sid },
                    5 => Request::Stop { stream_id: sid },
                    6 => Request::CloseStream { stream_id: sid },
                    7 => Request::Stats { stream_id: sid },
                    _ => Request::Shutdown,
                };
                (id, req)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            decode_both(&bytes);
        }

        #[test]
        fn random_bytes_behind_a_plausible_prefix_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..256)
        ) {
            let mut bytes = (body.len() as u32).to_le_bytes().to_vec();
            bytes.extend_from_slice(&body);
            // A complete frame of garbage is an error (or, by chance, a valid frame), never None.
            match decode_frame::<Request>(&bytes) {
                Ok(Some((_, used))) => prop_assert_eq!(used, bytes.len()),
                Ok(None) => prop_assert!(false, "complete frame reported as partial"),
                Err(_) => {}
            }
            decode_both(&bytes);
        }

        #[test]
        fn valid_frames_round_trip((id, req) in any_request()) {
            let bytes = encode_frame(id, &req).unwrap();
            let (frame, used) = decode_frame::<Request>(&bytes).unwrap().unwrap();
            prop_assert_eq!(used, bytes.len());
            prop_assert_eq!(frame, Frame { id, body: req });
        }

        #[test]
        fn truncated_valid_frames_need_more_bytes((id, req) in any_request(), cut in any::<prop::sample::Index>()) {
            let bytes = encode_frame(id, &req).unwrap();
            let cut = cut.index(bytes.len());
            prop_assert!(matches!(decode_frame::<Request>(&bytes[..cut]), Ok(None)));
            prop_assert!(matches!(
                read_frame::<_, Request>(&mut Cursor::new(&bytes[..cut])),
                Err(ProtoError::Closed)
            ));
        }

        #[test]
        fn garbled_valid_frames_never_panic(
            (id, req) in any_request(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = encode_frame(id, &req).unwrap();
            for (at, val) in flips {
                let i = at.index(bytes.len());
                bytes[i] = val;
            }
            decode_both(&bytes);
        }
    }
}
