//! Sidecars are started from one long-lived thread of the plugin. On Linux the sidecar's
//! parent-death signal fires when the *thread* that forked it exits, so a sidecar started
//! from a short-lived caller thread would be killed with that thread.

use std::process::{Child, Command};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use crossbeam_channel::{Sender, bounded, unbounded};

type Job = (Command, Sender<std::io::Result<Child>>);

static SPAWNER: Mutex<Option<(Sender<Job>, JoinHandle<()>)>> = Mutex::new(None);

fn spawner() -> MutexGuard<'static, Option<(Sender<Job>, JoinHandle<()>)>> {
    SPAWNER.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Spawns `command` from the spawner thread, starting that thread on first use.
pub fn spawn(command: Command) -> std::io::Result<Child> {
    let jobs = {
        let mut guard = spawner();
        if guard.is_none() {
            let (tx, rx) = unbounded::<Job>();
            let handle = std::thread::Builder::new()
                .name("asio-spawner".into())
                .spawn(move || {
                    for (mut command, reply) in rx {
                        let _ = reply.send(command.spawn());
                    }
                })?;
            *guard = Some((tx, handle));
        }
        guard.as_ref().map(|(tx, _)| tx.clone())
    };
    let (reply_tx, reply_rx) = bounded(1);
    let sent = jobs.is_some_and(|jobs| jobs.send((command, reply_tx)).is_ok());
    if !sent {
        return Err(std::io::Error::other("sidecar spawner is stopped"));
    }
    reply_rx
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("sidecar spawner stopped")))
}

/// Ends and joins the spawner thread (before the library unloads).
pub fn stop() {
    let taken = spawner().take();
    if let Some((jobs, handle)) = taken {
        drop(jobs);
        let _ = handle.join();
    }
}
