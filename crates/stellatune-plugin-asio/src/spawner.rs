//! Where the plugin's processes and threads come from: a thin layer over the SDK's `rt`.
//!
//! - Threads are lent by the host (`rt::spawn_thread`): a thread started by the plugin's own
//!   copy of std would take a pthread key that is never given back when the library
//!   unloads, and a process that reloads the plugin a thousand times would run out of them.
//! - Sidecars are started from the SDK's long-lived service thread (`rt::spawn_process`):
//!   on Linux a sidecar's parent-death signal follows the *thread* that forked it, so a
//!   sidecar forked from a short-lived caller thread would die with that thread.

use std::process::{Child, Command};

use stellatune_plugin_sdk::rt;

/// A thread started through [`spawn_thread`]; `join` waits for it to end.
pub type ThreadHandle = rt::Thread;

/// Starts `command` from the service thread.
pub fn spawn_process(command: Command) -> std::io::Result<Child> {
    rt::spawn_process(command)
}

/// Starts a named thread, lent by the host.
pub fn spawn_thread(
    name: &str,
    body: impl FnOnce() + Send + 'static,
) -> std::io::Result<ThreadHandle> {
    rt::spawn_thread(name, body).map_err(|e| std::io::Error::other(e.message))
}

/// Ends and joins the service thread (before the library unloads).
pub fn stop() {
    rt::stop();
}
