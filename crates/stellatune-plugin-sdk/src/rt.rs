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
//!   short-lived thread would be killed when that thread ends. [`spawn_contained`] also ties
//!   the child's life to this process (Windows: a kill-on-close Job Object), so no child
//!   outlives the host, whatever way the host ends.
//! * [`OneShot`] and [`Queue`] hand values between threads with a mutex and a condvar;
//!   channels register thread-local destructors, these do not.
//! * [`stop`] joins the service thread. `export_plugin!` calls it after the plugin's own
//!   shutdown fn, so a plugin only calls it itself to stop earlier.
//!
//! Before the host called the entry (a plugin crate's own unit tests, where no library is
//! ever unloaded), [`spawn_thread`] falls back to `std::thread`.

mod handoff;
mod process;
mod thread;

use std::sync::{Mutex, MutexGuard, PoisonError};

pub use handoff::{OneShot, Queue, WaitError};
pub use process::{Containment, spawn_contained, spawn_process, stop};
#[cfg(test)]
pub(crate) use thread::check_lending;
pub use thread::{THREADS_ABI_MINOR, Thread, spawn_thread};

/// Every lock in `rt` survives a panic of another holder: the state it guards stays
/// consistent between statements, and a poisoned lock must not wedge the plugin's unload.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
