//! The plugin's service thread, which starts every process and thread the plugin owns.
//!
//! Two reasons to funnel this through one thread:
//! - On Linux a sidecar's parent-death signal follows the *thread* that forked it, so a
//!   sidecar forked from a short-lived caller thread would die with that thread.
//! - Spawning a std thread touches std's thread-locals (which have destructors) on the
//!   spawning thread. Done by plugin code on a host thread, that registers a destructor of
//!   the plugin's own copy of std, and glibc then keeps the plugin library loaded until the
//!   host thread exits: replaced generations would never leave memory. The service thread
//!   itself is created with `pthread_create`, which touches no Rust thread-local, and is
//!   joined before the library unloads, so its own thread-locals are gone by then.

use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::oneshot::{OneShot, Queue};

type ThreadBody = Box<dyn FnOnce() + Send + 'static>;

enum Job {
    Process(Command, Arc<OneShot<std::io::Result<Child>>>),
    Thread(
        String,
        ThreadBody,
        Arc<OneShot<std::io::Result<JoinHandle<()>>>>,
    ),
}

struct Service {
    jobs: Arc<Queue<Job>>,
    thread: native::Handle,
}

static SERVICE: Mutex<Option<Service>> = Mutex::new(None);

fn service() -> MutexGuard<'static, Option<Service>> {
    SERVICE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn serve(jobs: &Queue<Job>) {
    while let Some(job) = jobs.pop() {
        match job {
            Job::Process(mut command, reply) => reply.put(command.spawn()),
            Job::Thread(name, body, reply) => {
                reply.put(std::thread::Builder::new().name(name).spawn(body));
            }
        }
    }
}

fn submit(job: impl FnOnce() -> Job) -> std::io::Result<()> {
    let jobs = {
        let mut guard = service();
        if guard.is_none() {
            let jobs = Arc::new(Queue::new());
            let theirs = jobs.clone();
            let thread = native::start(Box::new(move || serve(&theirs)))?;
            *guard = Some(Service { jobs, thread });
        }
        guard.as_ref().map(|s| s.jobs.clone())
    };
    match jobs {
        Some(jobs) if jobs.push(job()) => Ok(()),
        _ => Err(std::io::Error::other(
            "the plugin's service thread is stopped",
        )),
    }
}

const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Starts `command` from the service thread.
pub fn spawn_process(command: Command) -> std::io::Result<Child> {
    let reply = Arc::new(OneShot::new());
    submit(|| Job::Process(command, reply.clone()))?;
    reply
        .wait(REPLY_TIMEOUT)
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("service thread: {e:?}"))))
}

/// Starts a named thread from the service thread.
pub fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let reply = Arc::new(OneShot::new());
    submit(|| Job::Thread(name.to_owned(), Box::new(body), reply.clone()))?;
    reply
        .wait(REPLY_TIMEOUT)
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("service thread: {e:?}"))))
}

/// Ends and joins the service thread (before the library unloads).
pub fn stop() {
    let taken = service().take();
    if let Some(Service { jobs, thread }) = taken {
        jobs.close();
        native::join(thread);
    }
}

#[cfg(unix)]
mod native {
    use std::ffi::c_void;

    use super::ThreadBody;

    pub struct Handle(libc::pthread_t);

    extern "C" fn trampoline(arg: *mut c_void) -> *mut c_void {
        // SAFETY: `arg` is the `Box<ThreadBody>` leaked by `start`, handed over exactly once.
        let body = unsafe { Box::from_raw(arg.cast::<ThreadBody>()) };
        // A panic must not unwind out of an `extern "C"` function.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(*body));
        std::ptr::null_mut()
    }

    pub fn start(body: ThreadBody) -> std::io::Result<Handle> {
        let arg = Box::into_raw(Box::new(body)).cast::<c_void>();
        let mut thread: libc::pthread_t = 0;
        // SAFETY: `thread` is a valid out-pointer, NULL attributes mean defaults, and
        // `trampoline` takes ownership of `arg` when the thread starts.
        let rc = unsafe { libc::pthread_create(&mut thread, std::ptr::null(), trampoline, arg) };
        if rc != 0 {
            // SAFETY: the thread did not start, so `arg` is still ours to free.
            drop(unsafe { Box::from_raw(arg.cast::<ThreadBody>()) });
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        Ok(Handle(thread))
    }

    pub fn join(handle: Handle) {
        // SAFETY: `handle` came from a successful `pthread_create` and is joined once.
        unsafe {
            libc::pthread_join(handle.0, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
mod native {
    use super::ThreadBody;

    pub struct Handle(std::thread::JoinHandle<()>);

    pub fn start(body: ThreadBody) -> std::io::Result<Handle> {
        std::thread::Builder::new()
            .name("asio-service".into())
            .spawn(body)
            .map(Handle)
    }

    pub fn join(handle: Handle) {
        let _ = handle.0.join();
    }
}
