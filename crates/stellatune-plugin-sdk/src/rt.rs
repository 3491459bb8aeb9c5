//! Process hygiene for plugin code: threads, child processes and handoffs that leave
//! nothing behind in the host process when the library unloads.
//!
//! A plugin library links its own copy of the Rust standard library. The first time that
//! copy starts a thread (or names the current thread, or registers a thread-local with a
//! destructor), it creates a pthread key or a TLS destructor of its own. Nothing gives
//! those back when the library unloads: a key leaks per generation (glibc has 1024, so the
//! process aborts after about a thousand reloads), and a destructor either pins the
//! library in memory or runs after it is gone. So plugin code never starts a thread
//! itself:
//!
//! * [`spawn_thread`] borrows a thread from the host (ABI 1.1, `HostVTable::spawn_thread`);
//!   [`Thread::join`] gives it back. Join every thread before the module's shutdown
//!   returns: the host will not unload a library while a thread it lent still runs it.
//! * [`spawn_process`] starts child processes from one long-lived service thread (itself
//!   lent by the host), because on Linux a child's parent-death signal
//!   (`PR_SET_PDEATHSIG`) follows the *thread* that forked it: a child forked from a
//!   short-lived thread would be killed when that thread ends.
//! * [`OneShot`] and [`Queue`] hand values between threads with a mutex and a condvar;
//!   channels register thread-local destructors, these do not.
//! * [`stop`] joins the service thread. `export_plugin!` calls it after the plugin's own
//!   shutdown fn, so a plugin only calls it itself to stop earlier.
//!
//! Before the host called the entry (a plugin crate's own unit tests, where no library is
//! ever unloaded), [`spawn_thread`] falls back to `std::thread`.

mod handoff;

use std::ffi::c_void;
use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub use handoff::{OneShot, Queue, WaitError};
use stellatune_plugin_api::{HostVTable, StStr, status};

use crate::{PluginError, Result, host};

/// The first ABI minor whose host vtable has `spawn_thread` and `join_thread`.
pub const THREADS_ABI_MINOR: u32 = 1;

type Body = Box<dyn FnOnce() + Send + 'static>;

/// Where a lent thread's panic message goes, for [`Thread::join`].
type PanicSlot = Arc<Mutex<Option<String>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a lent thread runs: handed to the host as the entry's argument.
struct Start {
    body: Body,
    panicked: PanicSlot,
}

/// The entry of every lent thread. Runs on a host thread; nothing may unwind out of it.
extern "C" fn trampoline(arg: *mut c_void) {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `arg` is the `Box<Start>` leaked by `spawn_thread`; the host calls the
        // entry exactly once per successful spawn, so the box is reclaimed exactly once.
        let start = unsafe { Box::from_raw(arg.cast::<Start>()) };
        let Start { body, panicked } = *start;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(body)) {
            *lock(&panicked) = Some(crate::__private::panic_message(&*payload));
            crate::__private::drop_payload(payload);
        }
    }));
    if let Err(payload) = ran {
        crate::__private::drop_payload(payload);
    }
}

enum Inner {
    /// A host-lent thread's handle.
    Lent(u64),
    /// No host (unit tests of a plugin crate): a thread of the process's own std.
    Std(std::thread::JoinHandle<()>),
}

/// A thread started by [`spawn_thread`]. Dropping it without [`Thread::join`] leaves the
/// thread running; the host joins it, within a time bound, before the library unloads.
pub struct Thread {
    inner: Inner,
    name: String,
    panicked: PanicSlot,
}

impl std::fmt::Debug for Thread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "plugin thread `{}`", self.name)
    }
}

impl Thread {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the thread to end. An error if the host refused the join or the thread's
    /// body panicked ([`status::PANICKED`], with the panic message).
    pub fn join(self) -> Result<()> {
        match self.inner {
            Inner::Lent(id) => {
                let code = match host::raw() {
                    Some(h) if h.abi_minor >= THREADS_ABI_MINOR => (h.join_thread)(h.ctx, id),
                    _ => status::BAD_STATE,
                };
                if code != status::OK {
                    return Err(PluginError::new(
                        code,
                        format!("the host could not join thread `{}`", self.name),
                    ));
                }
            }
            Inner::Std(handle) => {
                if handle.join().is_err() && lock(&self.panicked).is_none() {
                    *lock(&self.panicked) = Some("panicked".into());
                }
            }
        }
        match lock(&self.panicked).take() {
            Some(message) => Err(PluginError::new(
                status::PANICKED,
                format!("thread `{}` panicked: {message}", self.name),
            )),
            None => Ok(()),
        }
    }
}

/// Whether `host` lends threads; the error names both versions.
pub(crate) fn check_lending(host: &HostVTable) -> Result<()> {
    if host.abi_minor >= THREADS_ABI_MINOR {
        return Ok(());
    }
    Err(PluginError::unsupported(format!(
        "the host speaks plugin ABI {}.{}, which lends no threads; rt::spawn_thread needs \
         {}.{THREADS_ABI_MINOR} or newer",
        host.abi_major,
        host.abi_minor,
        stellatune_plugin_api::ABI_MAJOR,
    )))
}

/// Runs `body` on a thread the host lends, named `name` (the host prefixes it with the
/// plugin id). See the module docs for why plugin code starts no thread of its own.
pub fn spawn_thread(name: &str, body: impl FnOnce() + Send + 'static) -> Result<Thread> {
    let panicked: PanicSlot = Arc::new(Mutex::new(None));
    let Some(h) = host::raw() else {
        let handle = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(body)?;
        return Ok(Thread {
            inner: Inner::Std(handle),
            name: name.to_owned(),
            panicked,
        });
    };
    check_lending(h)?;
    let start = Box::new(Start {
        body: Box::new(body),
        panicked: panicked.clone(),
    });
    let arg = Box::into_raw(start).cast::<c_void>();
    let mut id = 0u64;
    let code = (h.spawn_thread)(h.ctx, StStr::borrowed(name), trampoline, arg, &mut id);
    if code != status::OK {
        // SAFETY: on failure the host never calls the entry, so `arg` (leaked just above)
        // is still ours and is reclaimed once, here.
        drop(unsafe { Box::from_raw(arg.cast::<Start>()) });
        return Err(PluginError::new(
            code,
            format!("the host could not start thread `{name}`"),
        ));
    }
    if id == 0 {
        // The thread runs (and owns `arg`), but cannot be joined: the host broke the ABI.
        return Err(PluginError::error(format!(
            "the host started thread `{name}` but returned no handle"
        )));
    }
    Ok(Thread {
        inner: Inner::Lent(id),
        name: name.to_owned(),
        panicked,
    })
}

// ---------------------------------------------------------------------------------------
// The service thread that starts child processes

type ProcessReply = Arc<OneShot<io::Result<Child>>>;

struct Service {
    jobs: Arc<Queue<(Command, ProcessReply)>>,
    thread: Thread,
}

static SERVICE: Mutex<Option<Service>> = Mutex::new(None);

/// How long a caller waits for the service thread to start its process.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

fn submit(command: Command, reply: ProcessReply) -> io::Result<()> {
    let jobs = {
        let mut guard = lock(&SERVICE);
        if guard.is_none() {
            let jobs: Arc<Queue<(Command, ProcessReply)>> = Arc::new(Queue::new());
            let theirs = jobs.clone();
            let thread = spawn_thread("rt-service", move || {
                while let Some((mut command, reply)) = theirs.pop() {
                    reply.put(command.spawn());
                }
            })
            .map_err(|e| io::Error::other(e.message))?;
            *guard = Some(Service { jobs, thread });
        }
        guard.as_ref().map(|s| s.jobs.clone())
    };
    match jobs {
        Some(jobs) if jobs.push((command, reply)) => Ok(()),
        _ => Err(io::Error::other("the plugin's service thread is stopped")),
    }
}

/// Starts `command` from the plugin's long-lived service thread (started on first use), so
/// a parent-death signal the child sets up lasts as long as the plugin, not as long as the
/// calling thread.
pub fn spawn_process(command: Command) -> io::Result<Child> {
    let reply: ProcessReply = Arc::new(OneShot::new());
    submit(command, reply.clone())?;
    reply
        .wait(REPLY_TIMEOUT)
        .unwrap_or_else(|e| Err(io::Error::other(format!("service thread: {e:?}"))))
}

/// Ends and joins the service thread. Idempotent; a later [`spawn_process`] starts a new
/// one. Called by the `export_plugin!` shutdown after the plugin's own shutdown fn.
pub fn stop() {
    let taken = lock(&SERVICE).take();
    if let Some(Service { jobs, thread }) = taken {
        jobs.close();
        if let Err(e) = thread.join() {
            host::log(
                stellatune_plugin_api::log_level::WARN,
                &format!("rt: service thread: {e}"),
            );
        }
    }
}
