//! The player's side of one sidecar process: start it, complete the handshake, send requests
//! and wait for their answers with a timeout, open ring streams, and stop it (gracefully when
//! it was told to go, at once when it is of no further use).
//!
//! The client runs inside whatever embeds it, typically a plugin library, and takes from its
//! [`ClientEnv`] everything whose right form depends on that: how a process is started (a
//! plugin starts it from a long-lived service thread and contains it), how a thread is started
//! (a plugin borrows it from the host), and where logs, counters and fault reports go. So that
//! it is safe inside a plugin library, it follows the plugin rules itself: it starts no thread
//! of its own, uses no channel, no thread-local and no `std::thread::current()`; its handoffs
//! are a mutex and a condvar.
//!
//! No lock is held across the spawn, a pipe write, or a wait for the process.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::{
    DeviceInfo, PROTOCOL_VERSION, ProtoError, Request, Response, RingError, RingWriter,
    encode_frame, read_frame, unique_ring_file_name,
};

/// Env var naming the pid the sidecar should see as its parent: lets it tell a dead parent
/// from a live one under a subreaper.
pub const PARENT_PID_ENV: &str = "STELLATUNE_ASIO_PARENT_PID";

/// How long a sidecar may take to answer the handshake. Well below the engine's 5 s command
/// timeout, so a stalled sidecar is reported as itself, not as a silent engine.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stopped sidecar may take to exit after its stdin closed before it is killed.
/// Longer than its longest drain (1.5 s of a system device): the close of a stream is not
/// awaited, so a stop right after one lets the sidecar play that stream out first.
pub const STOP_GRACE: Duration = Duration::from_millis(2000);
/// How long a sidecar that closed its pipe on its own may take to exit before it is killed.
pub const EXIT_GRACE: Duration = Duration::from_millis(500);

/// A process started by [`ClientEnv::spawn_process`].
pub struct Spawned {
    pub child: Child,
    /// Whatever ties the child's life to this process (Windows: its Job Object). Dropped
    /// only after the child has been reaped.
    pub keep: Box<dyn Send + Sync>,
}

/// Waits for a thread started by [`ClientEnv::spawn_thread`] to end.
pub type Join = Box<dyn FnOnce() + Send>;

/// A thread body.
pub type Body = Box<dyn FnOnce() + Send + 'static>;

/// How much a log line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// What the client needs from the process it runs in.
pub trait ClientEnv: Send + Sync + 'static {
    /// Starts `command` (stdin and stdout piped) and whatever keeps it from outliving this
    /// process. On an error nothing may be left running.
    fn spawn_process(&self, command: Command) -> io::Result<Spawned>;

    /// Starts a thread named `name` running `body`.
    fn spawn_thread(&self, name: &str, body: Body) -> io::Result<Join>;

    /// A line for the log.
    fn log(&self, level: Level, message: &str);

    /// A sidecar process started (it is running from now until [`ClientEnv::process_ended`]).
    fn process_started(&self, _pid: u32) {}

    /// A sidecar process that [`ClientEnv::process_started`] reported was reaped; called
    /// exactly once per started process, on every path.
    fn process_ended(&self, _pid: u32) {}

    /// A sidecar went bad on its own (not after a stop): it exited, was killed, talked
    /// garbage, or was found hung. Called at most once per sidecar.
    fn faulted(&self, _pid: u32, _fault: Fault, _detail: &str) {}
}

/// How a sidecar went bad on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It exited, was killed, or put garbage on its pipe.
    Crashed,
    /// It stopped answering requests or reading its ring.
    Hung,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Fault::Crashed => "crashed",
            Fault::Hung => "hung",
        })
    }
}

/// Why a sidecar is stopped, as the log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The caller no longer needs it; the text says why (e.g. `last lease released`).
    Deliberate(&'static str),
    /// A dead sidecar taken out of service so that a fresh one can replace it.
    Replaced(Fault),
    HandshakeFailed,
    ThreadStartFailed,
    /// The last handle went without an explicit stop.
    Dropped,
}

impl StopReason {
    /// Whether the process is of no further use, so it is killed without a grace period.
    fn is_failure(self) -> bool {
        matches!(
            self,
            StopReason::Replaced(_) | StopReason::HandshakeFailed | StopReason::ThreadStartFailed
        )
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Deliberate(why) => f.write_str(why),
            StopReason::Replaced(fault) => write!(f, "replaced: {fault}"),
            StopReason::HandshakeFailed => f.write_str("handshake failed"),
            StopReason::ThreadStartFailed => f.write_str("spawn failed: a thread did not start"),
            StopReason::Dropped => f.write_str("dropped"),
        }
    }
}

/// Why a client call failed. The messages name the sidecar, its pid and the request.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot start sidecar {}: {source}", .executable.display())]
    Spawn {
        executable: PathBuf,
        source: io::Error,
    },
    #[error("sidecar pipes missing")]
    Pipes,
    #[error("cannot start the sidecar's {role} thread: {source}")]
    Thread {
        role: &'static str,
        source: io::Error,
    },
    #[error("sidecar handshake failed: {0}")]
    Handshake(String),
    #[error("sidecar {pid} is gone")]
    Gone { pid: u32 },
    #[error("sidecar is stopping")]
    Stopping,
    #[error("request not encodable: {0}")]
    Encode(ProtoError),
    #[error("sidecar refused {request}: {message}")]
    Refused {
        request: &'static str,
        message: String,
    },
    #[error("sidecar {pid} did not answer {request} within {} ms", .timeout.as_millis())]
    Timeout {
        pid: u32,
        request: &'static str,
        timeout: Duration,
    },
    #[error("sidecar {pid} exited")]
    Exited { pid: u32 },
    #[error("unexpected answer to {request}: {response:?}")]
    Unexpected {
        request: &'static str,
        response: Box<Response>,
    },
    #[error("ring {}: {source}", .path.display())]
    Ring { path: PathBuf, source: RingError },
}

/// What to run as the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Launch {
    /// How the log names it, e.g. `asio sidecar`; its threads are named after it
    /// (`asio-sidecar-writer`, `asio-sidecar-reader`).
    pub name: String,
    pub executable: PathBuf,
    pub args: Vec<String>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A started sidecar process, counted as running for exactly as long as it exists: whatever
/// path lets go of it, dropping it kills and reaps the process and reports its end, once.
/// What contains it goes after it.
struct Process {
    child: Child,
    // Only held: released when the process has been reaped (field order: after `child`).
    #[allow(dead_code)]
    keep: Box<dyn Send + Sync>,
    env: Arc<dyn ClientEnv>,
}

impl Process {
    fn start(env: &Arc<dyn ClientEnv>, command: Command) -> io::Result<Process> {
        let Spawned { child, keep } = env.spawn_process(command)?;
        env.process_started(child.id());
        Ok(Process {
            child,
            keep,
            env: env.clone(),
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        self.env.process_ended(self.child.id());
    }
}

/// What a deliberate stop and a fault recorded, read by the reader thread to tell a sidecar
/// that was told to go from one that went bad.
#[derive(Default)]
struct Fate {
    stopping: Option<StopReason>,
    fault: Option<(Fault, String)>,
}

/// Answers on their way to the requests waiting for them.
#[derive(Default)]
struct Replies {
    /// One slot per request in flight; filled by the reader thread.
    slots: HashMap<u64, Option<Response>>,
    /// The pipe closed: nothing more will come.
    closed: bool,
}

/// Frames on their way to the writer thread. Closing it ends the writer, which closes the
/// sidecar's stdin.
#[derive(Default)]
struct Outbox {
    state: Mutex<(VecDeque<Vec<u8>>, bool)>,
    ready: Condvar,
}

impl Outbox {
    fn push(&self, frame: Vec<u8>) -> bool {
        let mut state = lock(&self.state);
        if state.1 {
            return false;
        }
        state.0.push_back(frame);
        self.ready.notify_one();
        true
    }

    fn close(&self) {
        lock(&self.state).1 = true;
        self.ready.notify_all();
    }

    /// The next frame, waiting for one; `None` once closed and drained.
    fn pop(&self) -> Option<Vec<u8>> {
        let mut state = lock(&self.state);
        loop {
            if let Some(frame) = state.0.pop_front() {
                return Some(frame);
            }
            if state.1 {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The state the sidecar's reader thread shares with its handle.
struct Shared {
    pid: u32,
    name: String,
    env: Arc<dyn ClientEnv>,
    process: Mutex<Option<Process>>,
    replies: Mutex<Replies>,
    replied: Condvar,
    alive: AtomicBool,
    fate: Mutex<Fate>,
}

impl Shared {
    /// Records the first fault (later ones add nothing) and takes the sidecar out of use.
    fn fault(&self, fault: Fault, detail: String) {
        let mut fate = lock(&self.fate);
        if fate.fault.is_none() {
            fate.fault = Some((fault, detail));
        }
        self.alive.store(false, Ordering::SeqCst);
    }

    /// After the pipe closed (`eof`) or carried garbage: a sidecar that was not told to stop
    /// (or had already been found hung) is reported as a fault, one that was is not.
    fn pipe_closed(&self, eof: bool, why: String) {
        let verdict = {
            let mut fate = lock(&self.fate);
            match (&fate.fault, fate.stopping) {
                (Some((fault, detail)), _) => Err((*fault, detail.clone())),
                (None, Some(reason)) => Ok(reason),
                (None, None) => {
                    fate.fault = Some((Fault::Crashed, why.clone()));
                    Err((Fault::Crashed, why.clone()))
                }
            }
        };
        self.alive.store(false, Ordering::SeqCst);
        lock(&self.replies).closed = true;
        self.replied.notify_all();
        let (pid, name) = (self.pid, &self.name);
        match verdict {
            // The stop that caused this reaps the process and logs the stop.
            Ok(reason) => self.env.log(
                Level::Debug,
                &format!("{name} {pid} closed its pipe after a stop ({reason}): {why}"),
            ),
            Err((fault, detail)) => {
                // One that closed its pipe is exiting: let it. One that talks garbage is of
                // no further use.
                let grace = if eof { EXIT_GRACE } else { Duration::ZERO };
                reap(&self.process, Instant::now() + grace);
                self.env.log(
                    Level::Warn,
                    &format!("{name} {pid} stopped talking ({fault}): {detail}"),
                );
                self.env.faulted(pid, fault, &detail);
            }
        }
    }

    /// Waits until the reader thread saw the pipe close (the process is exiting) or
    /// `deadline` passes; tells whether it closed. Woken by the reader, never polled.
    fn wait_pipe_closed(&self, deadline: Instant) -> bool {
        let mut replies = lock(&self.replies);
        loop {
            if replies.closed {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            replies = self
                .replied
                .wait_timeout(replies, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Hands an answer to the request waiting for it; an answer nobody waits for (its
    /// request timed out) is dropped.
    fn answer(&self, id: u64, response: Response) {
        if let Some(slot) = lock(&self.replies).slots.get_mut(&id) {
            *slot = Some(response);
            self.replied.notify_all();
        }
    }

    /// Waits at most `timeout` for the answer to request `id`, and forgets the request.
    fn wait_answer(&self, id: u64, timeout: Duration) -> Result<Response, Waited> {
        let deadline = Instant::now() + timeout;
        let mut replies = lock(&self.replies);
        loop {
            if let Some(response) = replies.slots.get_mut(&id).and_then(Option::take) {
                replies.slots.remove(&id);
                return Ok(response);
            }
            if replies.closed {
                replies.slots.remove(&id);
                return Err(Waited::Closed);
            }
            let now = Instant::now();
            if now >= deadline {
                replies.slots.remove(&id);
                return Err(Waited::Timeout);
            }
            replies = self
                .replied
                .wait_timeout(replies, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

enum Waited {
    Timeout,
    Closed,
}

/// A running sidecar and the two threads that serve its pipes. Dropping it stops it.
pub struct Sidecar {
    shared: Arc<Shared>,
    outgoing: Arc<Outbox>,
    next_id: AtomicU64,
    next_stream: AtomicU64,
    threads: Mutex<Vec<Join>>,
    started_in: Duration,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sidecar pid {}", self.shared.pid)
    }
}

impl Sidecar {
    /// Starts the process and completes the protocol handshake. A failure leaves nothing
    /// behind: a started process is killed and reaped, a started thread joined.
    pub fn spawn(env: Arc<dyn ClientEnv>, launch: &Launch) -> Result<Sidecar, ClientError> {
        let started = Instant::now();
        let mut command = Command::new(&launch.executable);
        command
            .args(&launch.args)
            .env(PARENT_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its log lines go to the host's log (level, filter and log file apply), not to
            // whatever terminal the host has.
            .stderr(Stdio::piped());
        let mut process = Process::start(&env, command).map_err(|source| ClientError::Spawn {
            executable: launch.executable.clone(),
            source,
        })?;
        let pid = process.child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.child.stdin.take(),
            process.child.stdout.take(),
            process.child.stderr.take(),
        ) else {
            // Dropping the process kills and reaps it.
            return Err(ClientError::Pipes);
        };
        // From here on every failure goes through `stop`, which closes the writer's queue,
        // kills and reaps the process and joins whichever threads started.
        let shared = Arc::new(Shared {
            pid,
            name: launch.name.clone(),
            env: env.clone(),
            process: Mutex::new(Some(process)),
            replies: Mutex::new(Replies::default()),
            replied: Condvar::new(),
            alive: AtomicBool::new(true),
            fate: Mutex::new(Fate::default()),
        });
        let outgoing = Arc::new(Outbox::default());
        let mut sidecar = Sidecar {
            shared: shared.clone(),
            outgoing: outgoing.clone(),
            next_id: AtomicU64::new(1),
            next_stream: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
            started_in: Duration::ZERO,
        };
        let thread_name = |role: &str| format!("{}-{role}", launch.name.replace(' ', "-"));
        let writer = env.spawn_thread(
            &thread_name("writer"),
            Box::new(move || {
                let mut stdin = stdin;
                while let Some(frame) = outgoing.pop() {
                    if stdin
                        .write_all(&frame)
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        break;
                    }
                }
                // Dropping stdin here is the sidecar's signal to exit.
            }),
        );
        sidecar.adopt(writer, "writer")?;
        // The handshake is asked for before the reader starts, so that its answer finds the
        // request waiting even from a sidecar that speaks before it reads.
        let hello = Request::Hello {
            protocol_version: PROTOCOL_VERSION,
            client_pid: std::process::id(),
        };
        let hello_id = match sidecar.send(&hello, true) {
            Ok(id) => id,
            Err(e) => {
                sidecar.stop(StopReason::HandshakeFailed);
                return Err(ClientError::Handshake(e.to_string()));
            }
        };
        let reader = env.spawn_thread(
            &thread_name("reader"),
            Box::new(move || {
                let mut stdout = BufReader::new(stdout);
                let (eof, why) = loop {
                    match read_frame::<_, Response>(&mut stdout) {
                        Ok(frame) => shared.answer(frame.id, frame.body),
                        Err(e) => break (matches!(e, ProtoError::Closed), e.to_string()),
                    }
                };
                shared.pipe_closed(eof, why);
            }),
        );
        sidecar.adopt(reader, "reader")?;
        let log_env = env.clone();
        let log_name = launch.name.clone();
        let stderr_reader = env.spawn_thread(
            &thread_name("stderr"),
            Box::new(move || forward_log_lines(stderr, &*log_env, &log_name, pid)),
        );
        sidecar.adopt(stderr_reader, "stderr")?;
        match sidecar.receive(hello_id, &hello, HANDSHAKE_TIMEOUT) {
            Ok(Response::Hello {
                protocol_version, ..
            }) if protocol_version == PROTOCOL_VERSION => {}
            other => {
                sidecar.stop(StopReason::HandshakeFailed);
                return Err(ClientError::Handshake(match other {
                    Ok(response) => format!("answered {response:?}"),
                    Err(e) => e.to_string(),
                }));
            }
        }
        sidecar.started_in = started.elapsed();
        Ok(sidecar)
    }

    /// Keeps a started thread for `stop` to join; a thread that did not start stops the
    /// sidecar.
    fn adopt(&self, started: io::Result<Join>, role: &'static str) -> Result<(), ClientError> {
        match started {
            Ok(join) => {
                lock(&self.threads).push(join);
                Ok(())
            }
            Err(source) => {
                self.stop(StopReason::ThreadStartFailed);
                Err(ClientError::Thread { role, source })
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.shared.pid
    }

    /// How many of the pipe threads (writer, reader, stderr) were started and not yet joined.
    fn threads_started(&self) -> usize {
        lock(&self.threads).len()
    }

    /// How long the spawn and handshake took.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    pub fn is_alive(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// The fault that took this sidecar out of use, if one did.
    pub fn fault(&self) -> Option<Fault> {
        lock(&self.shared.fate).fault.as_ref().map(|(f, _)| *f)
    }

    /// Sends `request` and waits at most `timeout` for its answer. A sidecar that does not
    /// answer in time is presumed hung and is marked dead, so the next use replaces it. An
    /// `Error` answer is a [`ClientError::Refused`].
    pub fn request(&self, request: &Request, timeout: Duration) -> Result<Response, ClientError> {
        let id = self.send(request, true)?;
        self.receive(id, request, timeout)
    }

    /// Queues `request` for the writer, with a slot for its answer when it is `awaited` (the
    /// reader drops an answer that has none); returns its id.
    fn send(&self, request: &Request, awaited: bool) -> Result<u64, ClientError> {
        if !self.is_alive() {
            return Err(ClientError::Gone {
                pid: self.shared.pid,
            });
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let frame = encode_frame(id, request).map_err(ClientError::Encode)?;
        if awaited {
            lock(&self.shared.replies).slots.insert(id, None);
        }
        if !self.outgoing.push(frame) {
            lock(&self.shared.replies).slots.remove(&id);
            return Err(ClientError::Stopping);
        }
        Ok(id)
    }

    /// Waits at most `timeout` for the answer to `request`, sent as `id`.
    fn receive(
        &self,
        id: u64,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let pid = self.shared.pid;
        match self.shared.wait_answer(id, timeout) {
            Ok(Response::Error { message }) => Err(ClientError::Refused {
                request: request_name(request),
                message,
            }),
            Ok(response) => Ok(response),
            Err(Waited::Timeout) => {
                let request = request_name(request);
                self.shared.fault(
                    Fault::Hung,
                    format!("did not answer {request} within {} ms", timeout.as_millis()),
                );
                Err(ClientError::Timeout {
                    pid,
                    request,
                    timeout,
                })
            }
            Err(Waited::Closed) => Err(ClientError::Exited { pid }),
        }
    }

    /// The devices the sidecar can play to.
    pub fn list_devices(&self, timeout: Duration) -> Result<Vec<DeviceInfo>, ClientError> {
        match self.request(&Request::ListDevices, timeout)? {
            Response::Devices { devices } => Ok(devices),
            other => Err(ClientError::Unexpected {
                request: request_name(&Request::ListDevices),
                response: Box::new(other),
            }),
        }
    }

    /// Creates a ring in `ring_dir` (under a name never used before) for `capacity_frames`
    /// frames of `spec`, and has the sidecar open and start a stream on `device` that reads
    /// it. On a failure the ring is removed again.
    pub fn open_stream(
        &self,
        ring_dir: &Path,
        device: &str,
        sample_rate: u32,
        channels: u16,
        capacity_frames: u32,
        timeout: Duration,
    ) -> Result<RingStream, ClientError> {
        // Never a name an older ring may still hold open (see `unique_ring_file_name`).
        let path = ring_dir.join(unique_ring_file_name());
        let ring = RingWriter::create(&path, sample_rate, channels, capacity_frames).map_err(
            |source| ClientError::Ring {
                path: path.clone(),
                source,
            },
        )?;
        let id = self.next_stream.fetch_add(1, Ordering::SeqCst);
        self.request(
            &Request::OpenStream {
                stream_id: id,
                device: device.to_owned(),
                ring_path: path,
                sample_rate,
                channels,
                // The period a hardware device is asked for: a quarter of the ring. The
                // sidecar's built-in (paced) devices take about half the ring per period
                // instead (half of what is left after a reset's fade-out).
                buffer_frames: (capacity_frames / 4).max(64),
            },
            timeout,
        )?;
        self.request(&Request::Start { stream_id: id }, timeout)?;
        Ok(RingStream {
            id,
            heartbeat: ring.reader_heartbeat(),
            heartbeat_seen: Instant::now(),
            ring,
        })
    }

    /// Asks the sidecar (if it is still alive to hear it) to play out what the ring holds,
    /// stop and close `stream`, and removes the ring file; the sidecar keeps its own mapping
    /// until it is done. Nothing waits for the answer: the sidecar serves its requests in
    /// order, so a stream opened after this finds this one closed, and a sidecar stopped
    /// after this has closed it (and finalised a wav file) before it exits. Waiting cost the
    /// closing thread a round trip to the sidecar (half a millisecond when idle, up to the
    /// ring's length while it plays out), and a shutdown one of its longest steps.
    pub fn close_stream(&self, mut stream: RingStream) {
        // Whatever is still queued is the stream's end, not a gap.
        stream.mark_drained();
        let _ = self.send(
            &Request::CloseStream {
                stream_id: stream.id,
            },
            false,
        );
        drop(stream);
    }

    /// Kills a sidecar that stopped consuming (e.g. stopped by a signal). Its reader thread
    /// then sees the pipe close, reports it and reaps it; the next use replaces it.
    pub fn kill_hung(&self) {
        self.shared
            .fault(Fault::Hung, "stopped reading its ring".to_owned());
        if let Some(process) = lock(&self.shared.process).as_mut() {
            let _ = process.child.kill();
        }
    }

    /// Closes the sidecar's stdin, waits a grace period for it to exit (none when it is of no
    /// further use), kills it if it did not, reaps it and joins the threads that served it.
    /// Idempotent; the first call logs the stop with its reason.
    pub fn stop(&self, reason: StopReason) {
        let first = {
            let mut fate = lock(&self.shared.fate);
            let first = fate.stopping.is_none();
            fate.stopping.get_or_insert(reason);
            first
        };
        self.outgoing.close();
        let grace = if reason.is_failure() {
            Duration::ZERO
        } else {
            STOP_GRACE
        };
        let deadline = Instant::now() + grace;
        // A sidecar whose stdin closed exits; its stdout closes as it does, which wakes the
        // reader thread and through it this wait: no fixed sleep stands between the exit and
        // the reap.
        // The writer and the reader start first: with both running, the reader sees the exit.
        if !grace.is_zero() && self.threads_started() >= 2 {
            self.shared.wait_pipe_closed(deadline);
        }
        reap(&self.shared.process, deadline);
        self.shared.alive.store(false, Ordering::SeqCst);
        let threads: Vec<Join> = std::mem::take(&mut *lock(&self.threads));
        for join in threads {
            join();
        }
        if first {
            let fault = match &lock(&self.shared.fate).fault {
                Some((fault, detail)) => format!(" (it had {fault}: {detail})"),
                None => String::new(),
            };
            self.shared.env.log(
                Level::Info,
                &format!(
                    "{} stopped: pid {}, reason: {reason}{fault}",
                    self.shared.name, self.shared.pid
                ),
            );
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop(StopReason::Dropped);
    }
}

/// A stream the sidecar plays from a ring: the writing end of the ring and a watch on the
/// reader's heartbeat. Close it with [`Sidecar::close_stream`]; dropping it only removes the
/// ring.
pub struct RingStream {
    id: u64,
    ring: RingWriter,
    heartbeat: u64,
    heartbeat_seen: Instant,
}

impl RingStream {
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn ring(&self) -> &RingWriter {
        &self.ring
    }

    /// Writes what fits of `interleaved` (never blocks) and returns the frames taken.
    pub fn write(&mut self, interleaved: &[f32]) -> usize {
        let taken = self.ring.write(interleaved);
        let heartbeat = self.ring.reader_heartbeat();
        if heartbeat != self.heartbeat {
            self.heartbeat = heartbeat;
            self.heartbeat_seen = Instant::now();
        }
        taken
    }

    /// How long the reader's heartbeat has stood still, as seen by the writes so far: a full
    /// ring whose reader has been silent for long means a hung sidecar.
    pub fn reader_silent_for(&self) -> Duration {
        self.heartbeat_seen.elapsed()
    }

    /// Frames written and not yet heard: those in the ring and those the sidecar took from it
    /// that its device has not played yet. Reaches 0 once everything written was played.
    pub fn queued_frames(&self) -> usize {
        self.ring.queued_frames() + self.ring.device_queued_frames()
    }

    /// When the sidecar's device takes its next period, if it keeps a schedule (see the ring's
    /// read schedule).
    pub fn read_schedule(&self) -> Option<crate::ReadSchedule> {
        self.ring.read_schedule()
    }

    /// Underruns the sidecar counted on this stream (see `RingReader::note_period`).
    pub fn underruns(&self) -> u64 {
        self.ring.reader_underruns()
    }

    /// Marks what was written so far as the end of the audio for now: the sidecar running dry
    /// after it is no underrun.
    pub fn mark_drained(&mut self) {
        self.ring.mark_drained();
    }

    /// Drops the queued audio (an epoch handshake with the reader).
    pub fn reset(&mut self) {
        self.ring.reset();
    }
}

/// Waits until `deadline` for the process to exit, then lets go of it, which kills it if it
/// still runs, reaps it and reports its end. Called once the pipe closed (the process is
/// exiting, so its exit is a matter of microseconds), or with a deadline that has passed.
fn reap(process: &Mutex<Option<Process>>, deadline: Instant) {
    let Some(mut process) = lock(process).take() else {
        return;
    };
    // The process closed its pipes on its way out; the exit itself follows at once. A short
    // backoff covers that last step without a fixed sleep.
    let mut nap = Duration::from_micros(20);
    while matches!(process.child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(nap.min(deadline.saturating_duration_since(Instant::now())));
        nap = (nap * 2).min(Duration::from_millis(2));
    }
    drop(process);
}

/// Hands each line the sidecar writes on stderr to the host's log until the pipe closes (the
/// sidecar exited). A line of the sidecar's own log, `[NAME PID] LEVEL message`, keeps its
/// level; anything else (a panic message, a driver's own output) is a warning, verbatim.
fn forward_log_lines(stderr: impl Read, env: &dyn ClientEnv, name: &str, pid: u32) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let (level, message) = parse_log_line(text);
        env.log(level, &format!("{name} (pid {pid}): {message}"));
    }
}

/// Splits `[NAME PID] LEVEL message` into its level and message; any other line is a warning.
fn parse_log_line(line: &str) -> (Level, &str) {
    let tagged = line
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
        .and_then(|(_, rest)| rest.split_once(' '));
    match tagged {
        Some(("ERROR", message)) => (Level::Error, message),
        Some(("WARN", message)) => (Level::Warn, message),
        Some(("INFO", message)) => (Level::Info, message),
        Some(("DEBUG", message)) => (Level::Debug, message),
        _ => (Level::Warn, line),
    }
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::Hello { .. } => "hello",
        Request::ListDevices => "list devices",
        Request::DeviceCaps { .. } => "device caps",
        Request::OpenStream { .. } => "open stream",
        Request::Start { .. } => "start",
        Request::Stop { .. } => "stop",
        Request::CloseStream { .. } => "close stream",
        Request::Stats { .. } => "stats",
        Request::Shutdown => "shutdown",
    }
}

// Runs `/bin/sh` as the sidecar and inspects this process's children.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::AtomicI64;

    use super::*;

    /// Starts plain std processes and threads, counts what it started and what ended, and can
    /// refuse one thread by name.
    #[derive(Default)]
    struct TestEnv {
        refuse_thread: Option<&'static str>,
        running: AtomicI64,
        started: AtomicI64,
        threads_started: AtomicI64,
        threads_ended: Arc<AtomicI64>,
        logged: Mutex<Vec<(Level, String)>>,
    }

    impl ClientEnv for TestEnv {
        fn spawn_process(&self, mut command: Command) -> io::Result<Spawned> {
            Ok(Spawned {
                child: command.spawn()?,
                keep: Box::new(()),
            })
        }

        fn spawn_thread(&self, name: &str, body: Body) -> io::Result<Join> {
            if self.refuse_thread == Some(name) {
                return Err(io::Error::other("no thread for you"));
            }
            self.threads_started.fetch_add(1, Ordering::SeqCst);
            let ended = self.threads_ended.clone();
            let handle = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    body();
                    ended.fetch_add(1, Ordering::SeqCst);
                })?;
            Ok(Box::new(move || {
                let _ = handle.join();
            }))
        }

        fn log(&self, level: Level, message: &str) {
            lock(&self.logged).push((level, message.to_owned()));
        }

        fn process_started(&self, _pid: u32) {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.running.fetch_add(1, Ordering::SeqCst);
        }

        fn process_ended(&self, _pid: u32) {
            self.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    fn shell(script: &str) -> Launch {
        Launch {
            name: "test sidecar".into(),
            executable: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    /// Live children running `sh` or `sleep`, and zombies among all children.
    fn children() -> (Vec<u32>, usize) {
        let children = stellatune_probe::children(std::process::id());
        let zombies = children.iter().filter(|c| c.zombie).count();
        let live = children
            .into_iter()
            .filter(|c| !c.zombie && (c.name == "sh" || c.name == "sleep"))
            .map(|c| c.pid)
            .collect();
        (live, zombies)
    }

    #[test]
    fn a_thread_that_cannot_start_leaves_no_process_thread_or_gauge_behind() {
        for refused in [
            "test-sidecar-writer",
            "test-sidecar-reader",
            "test-sidecar-stderr",
        ] {
            let env = Arc::new(TestEnv {
                refuse_thread: Some(refused),
                ..TestEnv::default()
            });
            // A sidecar that would never exit on its own: only a kill ends it.
            let err = Sidecar::spawn(env.clone(), &shell("exec sleep 30"))
                .expect_err("a thread was refused");
            assert!(
                matches!(err, ClientError::Thread { .. }) && err.to_string().contains("thread"),
                "{refused}: {err}"
            );
            // Everything the failed spawn started is gone by the time it returns.
            assert_eq!(
                env.threads_ended.load(Ordering::SeqCst),
                env.threads_started.load(Ordering::SeqCst),
                "{refused}: a started thread still runs"
            );
            assert_eq!(children(), (Vec::new(), 0), "{refused}: child left");
            assert_eq!(env.started.load(Ordering::SeqCst), 1, "{refused}");
            assert_eq!(env.running.load(Ordering::SeqCst), 0, "{refused}: running");
        }
    }

    #[test]
    fn a_sidecar_that_exits_before_the_handshake_is_reaped_at_once() {
        let env = Arc::new(TestEnv::default());
        let began = Instant::now();
        let err = Sidecar::spawn(env.clone(), &shell("exit 3")).expect_err("no handshake");
        assert!(matches!(err, ClientError::Handshake(_)), "{err}");
        assert!(err.to_string().contains("sidecar"), "{err}");
        // Neither the handshake timeout nor a stop's grace period was waited out.
        assert!(began.elapsed() < HANDSHAKE_TIMEOUT, "{:?}", began.elapsed());
        assert_eq!(children(), (Vec::new(), 0));
        assert_eq!(env.running.load(Ordering::SeqCst), 0);
        assert_eq!(
            env.threads_ended.load(Ordering::SeqCst),
            env.threads_started.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn what_the_sidecar_writes_on_stderr_reaches_the_host_log_at_its_level() {
        let env = Arc::new(TestEnv::default());
        let script = "echo '[stellatune-sidecar-host 7] WARN device error: gone' >&2; \
                      echo '[stellatune-sidecar-host 7] INFO stream 1: opened' >&2; \
                      echo 'thread main panicked' >&2; exit 3";
        Sidecar::spawn(env.clone(), &shell(script)).expect_err("no handshake");
        // The failed spawn joined the stderr thread, which read the pipe to its end.
        let logged = lock(&env.logged).clone();
        let from_stderr: Vec<(Level, &str)> = logged
            .iter()
            .filter(|(_, m)| m.starts_with("test sidecar (pid "))
            .map(|(level, m)| (*level, m.split_once("): ").map_or("", |(_, rest)| rest)))
            .collect();
        assert_eq!(
            from_stderr,
            vec![
                (Level::Warn, "device error: gone"),
                (Level::Info, "stream 1: opened"),
                (Level::Warn, "thread main panicked"),
            ],
            "{logged:?}"
        );
    }

    #[test]
    fn a_missing_executable_is_a_spawn_error_naming_it() {
        let env = Arc::new(TestEnv::default());
        let launch = Launch {
            executable: "/nonexistent/sidecar".into(),
            ..shell("")
        };
        let err = Sidecar::spawn(env.clone(), &launch).expect_err("nothing to start");
        assert!(matches!(err, ClientError::Spawn { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/sidecar"), "{err}");
        assert_eq!(env.started.load(Ordering::SeqCst), 0);
        assert_eq!(env.threads_started.load(Ordering::SeqCst), 0);
    }
}
