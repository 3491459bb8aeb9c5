//! One sidecar process: spawn, handshake, requests with timeouts, graceful stop.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::oneshot::{OneShot, Queue, WaitError};
use crate::spawner::ThreadHandle;
use stellatune_plugin_sdk::{PluginError, Result, emit_event, log, log_level, metric_add};
use stellatune_sidecar_proto::{
    PROTOCOL_VERSION, ProtoError, Request, Response, encode_frame, read_frame,
};

pub const SPAWNS_METRIC: &str = "asio_sidecar_spawns_total";
pub const RUNNING_METRIC: &str = "asio_sidecar_running";

/// How long a sidecar may take to answer the handshake. Well below the engine's 5 s command
/// timeout, so a stalled sidecar is reported as itself, not as a silent engine.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stopped sidecar may take to exit after its stdin closed before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(1000);
/// How long a sidecar that closed its pipe on its own may take to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// What makes two sidecars interchangeable: same executable, same arguments, same device
/// backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub backend: String,
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
    LastLeaseReleased,
    ModuleShutdown,
    /// A dead sidecar taken out of service so that a fresh one can replace it.
    Replaced(Fault),
    HandshakeFailed,
    ThreadStartFailed,
    /// Another caller spawned a sidecar of the same signature first; theirs is used.
    DuplicateSpawn,
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
            StopReason::LastLeaseReleased => f.write_str("last lease released"),
            StopReason::ModuleShutdown => f.write_str("module shutdown"),
            StopReason::Replaced(fault) => write!(f, "replaced: {fault}"),
            StopReason::HandshakeFailed => f.write_str("handshake failed"),
            StopReason::ThreadStartFailed => f.write_str("spawn failed: a thread did not start"),
            StopReason::DuplicateSpawn => f.write_str("duplicate of a concurrent spawn"),
            StopReason::Dropped => f.write_str("dropped"),
        }
    }
}

type Waiters = Mutex<HashMap<u64, Arc<OneShot<Response>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A started sidecar process, counted in the running gauge for exactly as long as it
/// exists: whatever path lets go of it, dropping it kills and reaps the process and
/// decrements the gauge, once. Its containment (Windows: its Job Object) goes after it.
struct Process(
    Child,
    // Only held: it is released when the process has been reaped.
    #[allow(dead_code)] crate::containment::Containment,
);

#[cfg(test)]
static RUNNING_IN_TESTS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl Process {
    fn start(mut command: Command) -> std::io::Result<Process> {
        crate::containment::prepare(&mut command);
        let mut child = crate::spawner::spawn_process(command)?;
        let containment = match crate::containment::Containment::apply(&child) {
            Ok(c) => c,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        metric_add(SPAWNS_METRIC, 1);
        metric_add(RUNNING_METRIC, 1);
        #[cfg(test)]
        RUNNING_IN_TESTS.fetch_add(1, Ordering::SeqCst);
        Ok(Process(child, containment))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !matches!(self.0.try_wait(), Ok(Some(_))) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
        metric_add(RUNNING_METRIC, -1);
        #[cfg(test)]
        RUNNING_IN_TESTS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a deliberate stop and a fault recorded, read by the reader thread to tell a sidecar
/// that was told to go from one that went bad.
#[derive(Default)]
struct Fate {
    stopping: Option<StopReason>,
    fault: Option<(Fault, String)>,
}

/// The state the sidecar's reader thread shares with its handle.
struct Shared {
    pid: u32,
    process: Mutex<Option<Process>>,
    waiters: Waiters,
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
        for (_, waiter) in lock(&self.waiters).drain() {
            waiter.close();
        }
        let pid = self.pid;
        match verdict {
            // The stop that caused this reaps the process and logs the stop.
            Ok(reason) => log(
                log_level::DEBUG,
                &format!("asio sidecar {pid} closed its pipe after a stop ({reason}): {why}"),
            ),
            Err((fault, detail)) => {
                // One that closed its pipe is exiting: let it. One that talks garbage is of
                // no further use.
                reap(&self.process, if eof { EXIT_GRACE } else { Duration::ZERO });
                log(
                    log_level::WARN,
                    &format!("asio sidecar {pid} stopped talking ({fault}): {detail}"),
                );
                emit_event(
                    "sidecar_exited",
                    &serde_json::json!({
                        "pid": pid,
                        "fault": fault.to_string(),
                        "reason": detail,
                    })
                    .to_string(),
                );
            }
        }
    }
}

/// Starts a named thread; the indirection lets tests make it fail.
type StartThread<'a> =
    &'a dyn Fn(&str, Box<dyn FnOnce() + Send + 'static>) -> std::io::Result<ThreadHandle>;

pub struct Sidecar {
    shared: Arc<Shared>,
    /// Frames to the writer thread; closing it closes the sidecar's stdin.
    outgoing: Arc<Queue<Vec<u8>>>,
    next_id: AtomicU64,
    threads: Mutex<Vec<ThreadHandle>>,
    started_in: Duration,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sidecar pid {}", self.shared.pid)
    }
}

impl Sidecar {
    /// Starts the process and completes the protocol handshake.
    pub fn spawn(signature: &Signature) -> Result<Arc<Sidecar>> {
        Self::spawn_with(signature, &|name, body| {
            crate::spawner::spawn_thread(name, body)
        })
    }

    fn spawn_with(signature: &Signature, start_thread: StartThread<'_>) -> Result<Arc<Sidecar>> {
        let started = Instant::now();
        let mut command = Command::new(&signature.executable);
        command
            .args(&signature.args)
            // Lets the sidecar tell a dead parent from a live one under a subreaper.
            .env("STELLATUNE_ASIO_PARENT_PID", std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut process = Process::start(command).map_err(|e| {
            PluginError::io(format!(
                "cannot start sidecar {}: {e}",
                signature.executable.display()
            ))
        })?;
        let pid = process.0.id();
        let (Some(stdin), Some(stdout)) = (process.0.stdin.take(), process.0.stdout.take()) else {
            // Dropping the process kills and reaps it.
            return Err(PluginError::io("sidecar pipes missing"));
        };
        // From here on every failure goes through `stop`, which closes the writer's queue,
        // kills and reaps the process (its gauge with it) and joins whichever threads started.
        let shared = Arc::new(Shared {
            pid,
            process: Mutex::new(Some(process)),
            waiters: Mutex::new(HashMap::new()),
            alive: AtomicBool::new(true),
            fate: Mutex::new(Fate::default()),
        });
        let outgoing: Arc<Queue<Vec<u8>>> = Arc::new(Queue::new());
        let mut sidecar = Sidecar {
            shared: shared.clone(),
            outgoing: outgoing.clone(),
            next_id: AtomicU64::new(1),
            threads: Mutex::new(Vec::new()),
            started_in: Duration::ZERO,
        };
        let writer = start_thread(
            "asio-sidecar-writer",
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
        match writer {
            Ok(thread) => lock(&sidecar.threads).push(thread),
            Err(e) => {
                sidecar.stop(StopReason::ThreadStartFailed);
                return Err(PluginError::error(format!(
                    "cannot start the sidecar's writer thread: {e}"
                )));
            }
        }
        let reader = start_thread(
            "asio-sidecar-reader",
            Box::new(move || {
                let mut stdout = BufReader::new(stdout);
                let (eof, why) = loop {
                    match read_frame::<_, Response>(&mut stdout) {
                        Ok(frame) => {
                            if let Some(waiter) = lock(&shared.waiters).remove(&frame.id) {
                                waiter.put(frame.body);
                            }
                        }
                        Err(e) => break (matches!(e, ProtoError::Closed), e.to_string()),
                    }
                };
                shared.pipe_closed(eof, why);
            }),
        );
        match reader {
            Ok(thread) => lock(&sidecar.threads).push(thread),
            Err(e) => {
                sidecar.stop(StopReason::ThreadStartFailed);
                return Err(PluginError::error(format!(
                    "cannot start the sidecar's reader thread: {e}"
                )));
            }
        }
        let hello = sidecar.request(
            &Request::Hello {
                protocol_version: PROTOCOL_VERSION,
                client_pid: std::process::id(),
            },
            HANDSHAKE_TIMEOUT,
        );
        match hello {
            Ok(Response::Hello {
                protocol_version, ..
            }) if protocol_version == PROTOCOL_VERSION => {}
            other => {
                sidecar.stop(StopReason::HandshakeFailed);
                return Err(PluginError::disconnected(format!(
                    "sidecar handshake failed: {other:?}"
                )));
            }
        }
        sidecar.started_in = started.elapsed();
        Ok(Arc::new(sidecar))
    }

    pub fn pid(&self) -> u32 {
        self.shared.pid
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
    /// answer in time is presumed hung and is marked dead, so the next use replaces it.
    pub fn request(&self, request: &Request, timeout: Duration) -> Result<Response> {
        let pid = self.shared.pid;
        if !self.is_alive() {
            return Err(PluginError::disconnected(format!("sidecar {pid} is gone")));
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let frame = encode_frame(id, request)
            .map_err(|e| PluginError::invalid_argument(format!("request not encodable: {e}")))?;
        let waiter = Arc::new(OneShot::new());
        lock(&self.shared.waiters).insert(id, waiter.clone());
        // No channel here: see `oneshot` for why plugin code on host threads avoids them.
        if !self.outgoing.push(frame) {
            lock(&self.shared.waiters).remove(&id);
            return Err(PluginError::disconnected("sidecar is stopping"));
        }
        // A request is answered on whatever thread calls it, often the host's: wait without
        // a thread-local (see `oneshot`).
        match waiter.wait(timeout) {
            Ok(Response::Error { message }) => Err(PluginError::error(format!(
                "sidecar refused {}: {message}",
                request_name(request)
            ))),
            Ok(response) => Ok(response),
            Err(WaitError::Timeout) => {
                lock(&self.shared.waiters).remove(&id);
                let detail = format!(
                    "did not answer {} within {} ms",
                    request_name(request),
                    timeout.as_millis()
                );
                self.shared.fault(Fault::Hung, detail.clone());
                Err(PluginError::disconnected(format!("sidecar {pid} {detail}")))
            }
            Err(WaitError::Closed) => {
                Err(PluginError::disconnected(format!("sidecar {pid} exited")))
            }
        }
    }

    /// Kills a sidecar that stopped consuming (e.g. stopped by a signal). Its reader thread
    /// then sees the pipe close, reports it and reaps it; the next use leases a fresh one.
    pub fn kill_hung(&self) {
        self.shared
            .fault(Fault::Hung, "stopped reading its ring".to_owned());
        if let Some(process) = lock(&self.shared.process).as_mut() {
            let _ = process.0.kill();
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
        reap(&self.shared.process, grace);
        self.shared.alive.store(false, Ordering::SeqCst);
        let threads: Vec<ThreadHandle> = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
        if first {
            let fault = match &lock(&self.shared.fate).fault {
                Some((fault, detail)) => format!(" (it had {fault}: {detail})"),
                None => String::new(),
            };
            log(
                log_level::INFO,
                &format!(
                    "asio sidecar stopped: pid {}, reason: {reason}{fault}",
                    self.shared.pid
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

/// Waits up to `grace` for the process to exit, then lets go of it, which kills it if it
/// still runs, reaps it and decrements the running gauge.
fn reap(process: &Mutex<Option<Process>>, grace: Duration) {
    let Some(mut process) = lock(process).take() else {
        return;
    };
    let deadline = Instant::now() + grace;
    // A sidecar whose stdin closed exits within a fraction of a millisecond: poll fast at
    // first, then back off.
    let mut nap = Duration::from_micros(50);
    while matches!(process.0.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    }
    drop(process);
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

// Spawns `/bin/sh` as the sidecar and counts this process's children through /proc.
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Children of this process, zombies included.
    fn children() -> Vec<u32> {
        let me = std::process::id().to_string();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
                    stat.rsplit_once(") ")
                        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                        == Some(me.as_str())
                })
            })
            .collect()
    }

    #[test]
    fn a_thread_that_cannot_start_leaves_no_process_thread_or_gauge_behind() {
        // A sidecar that would never exit on its own: only a kill ends it.
        let signature = Signature {
            executable: "/bin/sh".into(),
            args: vec!["-c".into(), "exec sleep 30".into()],
            backend: "builtin".into(),
        };
        for refused in ["asio-sidecar-writer", "asio-sidecar-reader"] {
            let started = Arc::new(AtomicUsize::new(0));
            let ended = Arc::new(AtomicUsize::new(0));
            let start = |name: &str, body: Box<dyn FnOnce() + Send + 'static>| {
                if name == refused {
                    return Err(std::io::Error::other("no thread for you"));
                }
                started.fetch_add(1, Ordering::SeqCst);
                let ended = ended.clone();
                crate::spawner::spawn_thread(name, move || {
                    body();
                    ended.fetch_add(1, Ordering::SeqCst);
                })
            };
            let err = Sidecar::spawn_with(&signature, &start).expect_err("a thread was refused");
            assert!(err.to_string().contains("thread"), "{refused}: {err}");
            // Everything the failed spawn started is gone by the time it returns.
            assert_eq!(
                ended.load(Ordering::SeqCst),
                started.load(Ordering::SeqCst),
                "{refused}: a started thread still runs"
            );
            assert_eq!(children(), Vec::<u32>::new(), "{refused}: child left");
            assert_eq!(
                RUNNING_IN_TESTS.load(Ordering::SeqCst),
                0,
                "{refused}: running gauge"
            );
        }
    }
}
