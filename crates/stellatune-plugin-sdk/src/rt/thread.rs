//! Threads lent by the host (ABI 1.1): [`spawn_thread`] and [`Thread::join`].

use std::ffi::c_void;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use stellatune_plugin_api::{HostVTable, StStr, status};

use super::lock;
use crate::{Error, Result, host};

/// The first ABI minor whose host vtable has `spawn_thread` and `join_thread`.
pub const THREADS_ABI_MINOR: u32 = 1;

type Body = Box<dyn FnOnce() + Send + 'static>;

/// Where a lent thread's panic message goes, for [`Thread::join`].
type PanicSlot = Arc<Mutex<Option<String>>>;

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
                    return Err(Error::new(
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
            Some(message) => Err(Error::new(
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
    Err(Error::unsupported(format!(
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
        return Err(Error::new(
            code,
            format!("the host could not start thread `{name}`"),
        ));
    }
    if id == 0 {
        // The thread runs (and owns `arg`), but cannot be joined: the host broke the ABI.
        return Err(Error::other(format!(
            "the host started thread `{name}` but returned no handle"
        )));
    }
    Ok(Thread {
        inner: Inner::Lent(id),
        name: name.to_owned(),
        panicked,
    })
}
