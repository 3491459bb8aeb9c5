//! Child processes of a plugin: started from one long-lived service thread, and contained so
//! that none outlives the host process, however the host ends.
//!
//! - [`spawn_process`] starts a command from the plugin's service thread (itself lent by the
//!   host, started on first use): on Linux a child's parent-death signal
//!   (`PR_SET_PDEATHSIG`) follows the *thread* that forked it, so a child forked from a
//!   short-lived caller thread would be killed when that thread ends.
//! - [`spawn_contained`] does the same and ties the child's life to this process, per OS:
//!   - Linux and other Unixes: nothing to add here; the child asks for a parent-death signal
//!     itself (and a well-behaved child also exits when its stdin closes).
//!   - Windows: the child is started suspended and without a console window, put in a Job
//!     Object that kills its processes when its last handle closes
//!     (`JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`), and only then resumed, so it runs no code
//!     outside the job. The handle is this process's alone: when the process ends, however
//!     it ends, the kernel closes it and the child dies with it.
//! - [`stop`] ends and joins the service thread.

#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as os;

#[cfg(not(windows))]
mod unix;
#[cfg(not(windows))]
use unix as os;

use std::io;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::handoff::{OneShot, Queue};
use super::lock;
use super::thread::{Thread, spawn_thread};
use crate::host;

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
/// calling thread. The caller waits (with no lock held) for the spawn's result.
pub fn spawn_process(command: Command) -> io::Result<Child> {
    let reply: ProcessReply = Arc::new(OneShot::new());
    submit(command, reply.clone())?;
    reply
        .wait(REPLY_TIMEOUT)
        .unwrap_or_else(|e| Err(io::Error::other(format!("service thread: {e:?}"))))
}

/// What ties a child started by [`spawn_contained`] to this process (Windows: its Job
/// Object; elsewhere nothing). Keep it until the child has been reaped, then drop it: were
/// the child still running, dropping it would kill the child on Windows.
pub struct Containment(
    // Only held: dropping it is what releases the child (Windows: closes its job).
    #[allow(dead_code)] os::Containment,
);

impl std::fmt::Debug for Containment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Containment")
    }
}

/// Starts `command` like [`spawn_process`], contained so that it cannot outlive this process
/// (see the module docs for how, per OS). If the containment cannot be applied, the child is
/// killed and reaped before the error returns: a failed call leaves no process behind.
pub fn spawn_contained(mut command: Command) -> io::Result<(Child, Containment)> {
    os::prepare(&mut command);
    let mut child = spawn_process(command)?;
    match os::Containment::apply(&child) {
        Ok(containment) => Ok((child, Containment(containment))),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
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

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use super::*;

    // The OS layer alone, without the service thread (whose host-lent start the crate's
    // `tests` module checks): on Windows this is the suspended start, the job and the resume.
    #[test]
    fn a_contained_child_runs_to_its_end_and_is_reaped() {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .arg("--list")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        os::prepare(&mut command);
        let mut child = command.spawn().unwrap();
        // Held to the end of the test, past the reaping, as a caller must.
        let _containment = os::Containment::apply(&child).unwrap();
        assert!(child.wait().unwrap().success());
    }
}
