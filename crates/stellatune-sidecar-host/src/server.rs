//! The request loop: answers each request with one response frame carrying the request's id.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::sync::mpsc::Receiver;

use stellatune_sidecar_proto::{
    Frame, PROTOCOL_VERSION, ProtoError, Request, Response, write_frame,
};

use crate::Event;
use crate::devices;
use crate::stream::{Stream, StreamConfig};

/// Exit code when the first frame is not a matching `Hello`.
const EXIT_BAD_HANDSHAKE: u8 = 2;

enum Flow {
    Continue,
    Exit(ExitCode),
}

pub struct Server<W: Write> {
    out: W,
    greeted: bool,
    streams: BTreeMap<u64, Stream>,
}

impl<W: Write> Server<W> {
    pub fn new(out: W) -> Self {
        Server {
            out,
            greeted: false,
            streams: BTreeMap::new(),
        }
    }

    pub fn run(mut self, events: Receiver<Event>) -> ExitCode {
        loop {
            let flow = match events.recv() {
                Ok(Event::Request(frame)) => self.handle(frame),
                Ok(Event::BadFrame { id, message }) => {
                    log!(warn: "{message}");
                    match self.reply(id.unwrap_or(0), Response::Error { message }) {
                        Err(code) => Flow::Exit(code),
                        Ok(()) if !self.greeted => Flow::Exit(bad_handshake()),
                        Ok(()) => Flow::Continue,
                    }
                }
                Ok(Event::InputClosed) | Err(_) => {
                    log!("stdin closed; shutting down");
                    Flow::Exit(ExitCode::SUCCESS)
                }
                Ok(Event::Signal(sig)) => {
                    log!("signal {sig}; shutting down");
                    Flow::Exit(ExitCode::SUCCESS)
                }
            };
            if let Flow::Exit(code) = flow {
                self.close_all();
                return code;
            }
        }
    }

    fn handle(&mut self, Frame { id, body }: Frame<Request>) -> Flow {
        if !self.greeted {
            return match body {
                Request::Hello {
                    protocol_version,
                    client_pid,
                } if protocol_version == PROTOCOL_VERSION => {
                    log!("hello from pid {client_pid}");
                    self.greeted = true;
                    self.reply_flow(id, hello())
                }
                other => {
                    let message = match other {
                        Request::Hello {
                            protocol_version, ..
                        } => format!(
                            "protocol version {protocol_version} not supported (this sidecar speaks {PROTOCOL_VERSION})"
                        ),
                        _ => "the first request must be hello".to_string(),
                    };
                    log!(error: "{message}; exiting");
                    let _ = self.reply(id, Response::Error { message });
                    Flow::Exit(bad_handshake())
                }
            };
        }
        if let Request::Shutdown = body {
            log!("shutdown requested");
            self.close_all();
            let _ = self.reply(id, Response::Ok);
            return Flow::Exit(ExitCode::SUCCESS);
        }
        let response = self.respond(body).unwrap_or_else(|message| {
            log!(warn: "request {id} failed: {message}");
            Response::Error { message }
        });
        self.reply_flow(id, response)
    }

    fn respond(&mut self, body: Request) -> Result<Response, String> {
        match body {
            Request::Hello {
                protocol_version, ..
            } => {
                if protocol_version == PROTOCOL_VERSION {
                    Ok(hello())
                } else {
                    Err(format!("protocol version {protocol_version} not supported"))
                }
            }
            Request::ListDevices => Ok(Response::Devices {
                devices: devices::list(),
            }),
            Request::DeviceCaps { device } => {
                let devices::DeviceCaps {
                    sample_rates,
                    max_channels,
                    format,
                } = devices::caps(&device)?;
                log!("device {device}: {format}, up to {max_channels} ch");
                Ok(Response::Caps {
                    sample_rates,
                    max_channels,
                })
            }
            Request::OpenStream {
                stream_id,
                device,
                ring_path,
                sample_rate,
                channels,
                buffer_frames,
            } => {
                if self.streams.contains_key(&stream_id) {
                    return Err(format!("stream {stream_id} is already open"));
                }
                let cfg = StreamConfig {
                    sample_rate,
                    channels,
                    buffer_frames,
                };
                let stream = Stream::open(&device, ring_path, cfg)?;
                log!("stream {stream_id}: opened {device} at {sample_rate} Hz, {channels} ch");
                self.streams.insert(stream_id, stream);
                Ok(Response::Ok)
            }
            Request::Start { stream_id } => {
                self.stream(stream_id)?.start(stream_id)?;
                Ok(Response::Ok)
            }
            Request::Stop { stream_id } => {
                self.stream(stream_id)?.stop()?;
                Ok(Response::Ok)
            }
            Request::CloseStream { stream_id } => {
                let stream = self
                    .streams
                    .remove(&stream_id)
                    .ok_or_else(|| no_stream(stream_id))?;
                stream.close(true)?;
                log!("stream {stream_id}: closed");
                Ok(Response::Ok)
            }
            Request::Stats { stream_id } => {
                let (frames_played, underruns, running) = self.stream(stream_id)?.stats();
                Ok(Response::Stats {
                    frames_played,
                    underruns,
                    running,
                })
            }
            Request::Shutdown => unreachable!("handled by the caller"),
        }
    }

    fn stream(&mut self, stream_id: u64) -> Result<&mut Stream, String> {
        self.streams
            .get_mut(&stream_id)
            .ok_or_else(|| no_stream(stream_id))
    }

    /// Stops every stream at once (the player is gone or going), joins its thread, finalizes
    /// its device and unmaps its ring.
    fn close_all(&mut self) {
        for (id, stream) in std::mem::take(&mut self.streams) {
            match stream.close(false) {
                Ok(()) => log!("stream {id}: closed"),
                Err(e) => log!(warn: "stream {id}: {e}"),
            }
        }
    }

    /// Writes one response. A failed write means the player is gone: exit.
    fn reply(&mut self, id: u64, body: Response) -> Result<(), ExitCode> {
        match write_frame(&mut self.out, id, &body) {
            Ok(()) => Ok(()),
            Err(ProtoError::Encode(e)) => {
                // Cannot happen for our responses, but never leave a request unanswered.
                log!(error: "cannot encode response {id}: {e}");
                let message = format!("cannot encode response: {e}");
                write_frame(&mut self.out, id, &Response::Error { message })
                    .map_err(|_| ExitCode::SUCCESS)
            }
            Err(e) => {
                log!(error: "cannot write to stdout ({e}); exiting");
                Err(ExitCode::SUCCESS)
            }
        }
    }

    fn reply_flow(&mut self, id: u64, body: Response) -> Flow {
        match self.reply(id, body) {
            Ok(()) => Flow::Continue,
            Err(code) => Flow::Exit(code),
        }
    }
}

fn hello() -> Response {
    Response::Hello {
        protocol_version: PROTOCOL_VERSION,
        sidecar_pid: std::process::id(),
    }
}

fn bad_handshake() -> ExitCode {
    ExitCode::from(EXIT_BAD_HANDSHAKE)
}

fn no_stream(stream_id: u64) -> String {
    format!("no stream {stream_id}")
}
