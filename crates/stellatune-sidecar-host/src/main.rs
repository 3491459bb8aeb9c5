//! `stellatune-sidecar-host`: the player's out-of-process audio output sidecar.
//!
//! The player spawns it with piped stdin/stdout, sends request frames (see
//! `stellatune_sidecar_proto`) on stdin and reads one response frame per request on stdout. Audio
//! goes through a shared-memory ring per stream that the player creates; the sidecar opens it
//! on `OpenStream` and a playback thread drains it into the device between `Start` and `Stop`.
//!
//! Devices (the ids `ListDevices` reports and `OpenStream` takes):
//!
//! - `null`: discards audio in real time;
//! - `wav:PATH`: writes a 32-bit float WAV file in real time (exactly the ring's samples);
//!   `wav[FORMAT]:PATH` writes FORMAT instead: `i16`, `i24` or `i32` integer, or `f32` (the
//!   same as `wav:PATH`);
//! - `cpal:NAME` (feature `cpal`; `cpal:` is the default device): a system device, opened in a
//!   sample format its driver reports: f32 if it has it, else the widest integer format.
//!
//! The ring always carries f32. Integer devices get it scaled to full scale, rounded and
//! clamped (never wrapped); 16- and 24-bit output is TPDF-dithered (see `convert`).
//!
//! Logs go to stderr only; stdout carries nothing but response frames.
//!
//! The sidecar exits cleanly (streams stopped, threads joined, WAV files finalized, rings
//! unmapped) on `Shutdown`, when stdin reaches end of file, or on SIGTERM/SIGINT/SIGHUP. On Linux
//! it asks for SIGTERM when its parent dies (`PR_SET_PDEATHSIG`; note the kernel sends it when the
//! parent *thread* that spawned it exits, so spawn it from a long-lived thread) and exits at once
//! if the parent is already gone: its parent pid is 1, or differs from `STELLATUNE_ASIO_PARENT_PID`
//! when the player sets that variable (needed to notice a dead parent under a subreaper).

use std::io::{self, BufWriter};
use std::process::ExitCode;
use std::sync::mpsc;

// The env var naming the pid the sidecar expects as its parent (set by the client).
#[cfg(unix)]
use stellatune_sidecar_proto::PARENT_PID_ENV;
use stellatune_sidecar_proto::{Frame, ProtoError, Request, read_frame};

/// One log line on stderr: `[stellatune-sidecar-host PID] LEVEL message`. The client reads
/// these lines and hands them to the host's log at that level (`log!(warn: ...)`,
/// `log!(error: ...)`; plain `log!(...)` is info).
macro_rules! log {
    (error: $($arg:tt)*) => { $crate::log_line("ERROR", format_args!($($arg)*)) };
    (warn: $($arg:tt)*) => { $crate::log_line("WARN", format_args!($($arg)*)) };
    ($($arg:tt)*) => { $crate::log_line("INFO", format_args!($($arg)*)) };
}

/// One `write` per line: stderr is unbuffered (`eprintln!` writes each piece of the format on
/// its own, seven writes a line), and the player's reader thread wakes once per write. A
/// stderr that is gone loses the line rather than the process.
fn log_line(level: &str, message: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let line = format!(
        "[stellatune-sidecar-host {}] {level} {message}\n",
        std::process::id()
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

mod convert;
mod devices;
mod server;
#[cfg(unix)]
mod signals;
mod stream;

/// What the main loop reacts to.
pub enum Event {
    Request(Frame<Request>),
    /// A frame that could not be decoded; the input stays in step.
    BadFrame {
        id: Option<u64>,
        message: String,
    },
    /// Stdin reached end of file (or failed).
    InputClosed,
    /// A termination signal arrived.
    Signal(i32),
}

fn main() -> ExitCode {
    // Block the termination signals before any thread exists, so every thread inherits the mask
    // and only the waiter thread receives them (also the parent-death SIGTERM asked for below).
    #[cfg(unix)]
    let sigset = signals::block_termination_signals();
    if parent_already_gone() {
        log!(warn: "parent process is gone; exiting");
        return ExitCode::SUCCESS;
    }

    let (tx, rx) = mpsc::channel();
    #[cfg(unix)]
    signals::spawn_waiter(sigset, tx.clone());
    if let Err(e) = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_requests(tx))
    {
        log!(error: "cannot start the input thread: {e}");
        return ExitCode::FAILURE;
    }

    let out = BufWriter::new(io::stdout().lock());
    server::Server::new(out).run(rx)
}

/// Arms the parent-death signal (Linux) and tells whether the parent has already died.
fn parent_already_gone() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_PDEATHSIG, sig) takes plain integers and touches no memory of ours.
        let rc = unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGTERM as libc::c_ulong,
                0,
                0,
                0,
            )
        };
        if rc != 0 {
            log!(warn: "PR_SET_PDEATHSIG failed: {}", io::Error::last_os_error());
        }
    }
    #[cfg(unix)]
    {
        // Checked after arming: if the parent died before that, no signal will come.
        let ppid = std::os::unix::process::parent_id();
        if ppid == 1 {
            return true;
        }
        if let Some(expected) = std::env::var(PARENT_PID_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            return ppid != expected;
        }
    }
    false
}

/// The stdin thread: decodes request frames and forwards them until end of input.
fn read_requests(tx: mpsc::Sender<Event>) {
    let mut input = io::stdin().lock();
    loop {
        let event = match read_frame::<_, Request>(&mut input) {
            Ok(frame) => Event::Request(frame),
            Err(ProtoError::BadPayload { id, source, .. }) => Event::BadFrame {
                id,
                message: format!("bad request frame: {source}"),
            },
            Err(e @ ProtoError::TooLarge { .. }) => Event::BadFrame {
                id: None,
                message: e.to_string(),
            },
            Err(ProtoError::Closed) => Event::InputClosed,
            Err(e) => {
                log!(error: "reading stdin failed: {e}");
                Event::InputClosed
            }
        };
        let last = matches!(event, Event::InputClosed);
        if tx.send(event).is_err() || last {
            return;
        }
    }
}
