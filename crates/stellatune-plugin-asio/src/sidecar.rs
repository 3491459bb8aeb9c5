//! One sidecar process: spawn, handshake, requests with timeouts, graceful stop.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::oneshot::{OneShot, Queue, WaitError};
use stellatune_asio_proto::{PROTOCOL_VERSION, Request, Response, encode_frame, read_frame};
use stellatune_plugin_sdk::{PluginError, Result, emit_event, log, log_level, metric_add};

pub const SPAWNS_METRIC: &str = "asio_sidecar_spawns_total";
pub const RUNNING_METRIC: &str = "asio_sidecar_running";

/// How long a sidecar may take to answer the handshake. Well below the engine's 5 s command
/// timeout, so a stalled sidecar is reported as itself, not as a silent engine.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a stopped sidecar may take to exit after its stdin closed before it is killed.
const STOP_GRACE: Duration = Duration::from_millis(1000);

/// What makes two sidecars interchangeable: same executable, same arguments, same device
/// backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Signature {
    pub executable: PathBuf,
    pub args: Vec<String>,
    pub backend: String,
}

type Waiters = Arc<Mutex<HashMap<u64, Arc<OneShot<Response>>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub struct Sidecar {
    pid: u32,
    child: Arc<Mutex<Option<Child>>>,
    /// Frames to the writer thread; closing it closes the sidecar's stdin.
    outgoing: Arc<Queue<Vec<u8>>>,
    waiters: Waiters,
    alive: Arc<AtomicBool>,
    /// Set once the running gauge was decremented for this process.
    uncounted: Arc<AtomicBool>,
    next_id: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Sidecar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sidecar pid {}", self.pid)
    }
}

impl Sidecar {
    /// Starts the process and completes the protocol handshake.
    pub fn spawn(signature: &Signature) -> Result<Arc<Sidecar>> {
        let started = Instant::now();
        let mut command = Command::new(&signature.executable);
        command
            .args(&signature.args)
            // Lets the sidecar tell a dead parent from a live one under a subreaper.
            .env("STELLATUNE_ASIO_PARENT_PID", std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = crate::spawner::spawn_process(command).map_err(|e| {
            PluginError::io(format!(
                "cannot start sidecar {}: {e}",
                signature.executable.display()
            ))
        })?;
        metric_add(SPAWNS_METRIC, 1);
        metric_add(RUNNING_METRIC, 1);
        let pid = child.id();
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let child = Arc::new(Mutex::new(Some(child)));
        let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let uncounted = Arc::new(AtomicBool::new(false));
        let outgoing: Arc<Queue<Vec<u8>>> = Arc::new(Queue::new());
        let frames = outgoing.clone();
        let writer = crate::spawner::spawn_thread("asio-sidecar-writer", move || {
            let mut stdin = stdin;
            while let Some(frame) = frames.pop() {
                if stdin
                    .write_all(&frame)
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
            }
            // Dropping stdin here is the sidecar's signal to exit.
        })
        .map_err(|e| PluginError::error(format!("cannot start writer thread: {e}")))?;
        let reader = {
            let (waiters, alive, uncounted, child) = (
                waiters.clone(),
                alive.clone(),
                uncounted.clone(),
                child.clone(),
            );
            crate::spawner::spawn_thread("asio-sidecar-reader", move || {
                let mut stdout = BufReader::new(stdout);
                let why = loop {
                    match read_frame::<_, Response>(&mut stdout) {
                        Ok(frame) => {
                            if let Some(waiter) = lock(&waiters).remove(&frame.id) {
                                waiter.put(frame.body);
                            }
                        }
                        Err(e) => break e.to_string(),
                    }
                };
                // The pipe closed or carried garbage: either way this sidecar is done.
                alive.store(false, Ordering::SeqCst);
                for (_, waiter) in lock(&waiters).drain() {
                    waiter.close();
                }
                reap(&child, &uncounted, Duration::from_millis(500));
                log(
                    log_level::WARN,
                    &format!("asio sidecar {pid} stopped talking: {why}"),
                );
                emit_event(
                    "sidecar_exited",
                    &serde_json::json!({ "pid": pid, "reason": why }).to_string(),
                );
            })
            .map_err(|e| PluginError::error(format!("cannot start reader thread: {e}")))?
        };
        let sidecar = Arc::new(Sidecar {
            pid,
            child,
            outgoing,
            waiters,
            alive,
            uncounted,
            next_id: AtomicU64::new(1),
            threads: Mutex::new(vec![writer, reader]),
        });
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
                sidecar.stop();
                return Err(PluginError::disconnected(format!(
                    "sidecar handshake failed: {other:?}"
                )));
            }
        }
        log(
            log_level::INFO,
            &format!(
                "asio sidecar {pid} started in {} ms",
                started.elapsed().as_millis()
            ),
        );
        Ok(sidecar)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Sends `request` and waits at most `timeout` for its answer. A sidecar that does not
    /// answer in time is presumed hung and is marked dead, so the next use replaces it.
    pub fn request(&self, request: &Request, timeout: Duration) -> Result<Response> {
        if !self.is_alive() {
            return Err(PluginError::disconnected(format!(
                "sidecar {} is gone",
                self.pid
            )));
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let frame = encode_frame(id, request)
            .map_err(|e| PluginError::invalid_argument(format!("request not encodable: {e}")))?;
        let waiter = Arc::new(OneShot::new());
        lock(&self.waiters).insert(id, waiter.clone());
        // No channel here: see `oneshot` for why plugin code on host threads avoids them.
        if !self.outgoing.push(frame) {
            lock(&self.waiters).remove(&id);
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
                lock(&self.waiters).remove(&id);
                self.alive.store(false, Ordering::SeqCst);
                Err(PluginError::disconnected(format!(
                    "sidecar {} did not answer {} within {} ms",
                    self.pid,
                    request_name(request),
                    timeout.as_millis()
                )))
            }
            Err(WaitError::Closed) => Err(PluginError::disconnected(format!(
                "sidecar {} exited",
                self.pid
            ))),
        }
    }

    /// Kills a sidecar that stopped consuming (e.g. stopped by a signal). Its reader thread
    /// then sees the pipe close and reaps it; the next use leases a fresh one.
    pub fn kill_hung(&self) {
        self.alive.store(false, Ordering::SeqCst);
        if let Some(child) = lock(&self.child).as_mut() {
            let _ = child.kill();
        }
    }

    /// Closes the sidecar's stdin, waits a grace period for it to exit, kills it if it did
    /// not, reaps it and joins the threads that served it. Idempotent.
    pub fn stop(&self) {
        self.outgoing.close();
        reap(&self.child, &self.uncounted, STOP_GRACE);
        self.alive.store(false, Ordering::SeqCst);
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits up to `grace` for the process to exit, kills it after that, and reaps it, so no
/// zombie is left. Decrements the running gauge exactly once per process.
fn reap(child: &Mutex<Option<Child>>, uncounted: &AtomicBool, grace: Duration) {
    let Some(mut child) = lock(child).take() else {
        return;
    };
    let deadline = Instant::now() + grace;
    // A sidecar whose stdin closed exits within a fraction of a millisecond: poll fast at
    // first, then back off.
    let mut nap = Duration::from_micros(50);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(5));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    if !uncounted.swap(true, Ordering::SeqCst) {
        metric_add(RUNNING_METRIC, -1);
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
