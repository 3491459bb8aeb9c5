//! The plugin-local sidecar manager: one sidecar per signature, shared through leases,
//! spawned on the first lease and stopped when the last lease goes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use stellatune_plugin_sdk::{Result, log, log_level, rt};

use crate::sidecar::{self, Fault, Sidecar, Signature, StopReason};

#[derive(Default)]
struct Slot {
    sidecar: Option<Arc<Sidecar>>,
    leases: usize,
}

/// Module-level state. A plain static (no thread-locals) so the library can really unload.
static SLOTS: Mutex<Option<HashMap<Signature, Slot>>> = Mutex::new(None);

fn slots() -> MutexGuard<'static, Option<HashMap<Signature, Slot>>> {
    SLOTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A sidecar whose last lease went, stopping on a thread of its own.
struct Retiring {
    signature: Signature,
    done: Arc<AtomicBool>,
    thread: rt::Thread,
}

/// The sidecars still stopping (see [`retire`]).
static RETIRING: Mutex<Vec<Retiring>> = Mutex::new(Vec::new());

fn retiring() -> MutexGuard<'static, Vec<Retiring>> {
    RETIRING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Stops a sidecar whose last lease went without holding up the thread that let go of it
/// (the engine's output thread closing its sink, or a runtime shutting down): the graceful
/// stop (stdin closed, the exit awaited and reaped, its pipe threads joined) runs on a lent
/// thread, meanwhile the engine goes on ending its own threads. A new lease of the same
/// signature waits for it first, so one signature never has two sidecars, and the module's
/// shutdown waits for every one. Without a thread to run on, it stops here.
fn retire(signature: &Signature, sidecar: Arc<Sidecar>, reason: StopReason) {
    let done = Arc::new(AtomicBool::new(false));
    let (finished, stopping) = (done.clone(), sidecar.clone());
    let started = rt::spawn_thread("asio-sidecar-stop", move || {
        stopping.stop(reason);
        // On Windows a ring file lasts until the sidecar's handle on it closes.
        crate::sink::report_ring_files();
        finished.store(true, Ordering::Release);
    });
    match started {
        Ok(thread) => {
            // Joins the stops that ended meanwhile: a lease churn keeps no list of them.
            let ended: Vec<Retiring> = {
                let mut list = retiring();
                list.push(Retiring {
                    signature: signature.clone(),
                    done,
                    thread,
                });
                take_where(&mut list, |r| r.done.load(Ordering::Acquire))
            };
            join_all(ended);
        }
        Err(e) => {
            log(
                log_level::WARN,
                &format!(
                    "no thread to stop asio sidecar {} on ({}); stopping it here",
                    sidecar.pid(),
                    e.message
                ),
            );
            sidecar.stop(reason);
        }
    }
}

/// Waits for the sidecars of `signature` (every one with `None`) that are still stopping.
fn wait_retired(signature: Option<&Signature>) {
    let waiting = take_where(&mut retiring(), |r| {
        signature.is_none_or(|s| *s == r.signature)
    });
    join_all(waiting);
}

/// Moves the stops that `pick` picks out of `list`.
fn take_where(list: &mut Vec<Retiring>, pick: impl Fn(&Retiring) -> bool) -> Vec<Retiring> {
    let (taken, kept) = std::mem::take(list).into_iter().partition(pick);
    *list = kept;
    taken
}

fn join_all(stops: Vec<Retiring>) {
    for stop in stops {
        if let Err(e) = stop.thread.join() {
            log(
                log_level::WARN,
                &format!("an asio sidecar stop ended badly: {}", e.message),
            );
        }
    }
}

/// A share of a running sidecar. Dropping the last lease of a signature stops its sidecar.
pub struct Lease {
    signature: Signature,
    sidecar: Arc<Sidecar>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lease on {:?}", self.sidecar)
    }
}

impl Lease {
    pub fn sidecar(&self) -> &Arc<Sidecar> {
        &self.sidecar
    }
}

fn slot_of<'a>(
    guard: &'a mut MutexGuard<'static, Option<HashMap<Signature, Slot>>>,
    signature: &Signature,
) -> &'a mut Slot {
    guard
        .get_or_insert_with(HashMap::new)
        .entry(signature.clone())
        .or_default()
}

/// Leases the sidecar for `signature`, spawning it if none runs (or the one that ran died).
/// The spawn and handshake happen with no lock held.
pub fn acquire(signature: &Signature) -> Result<Lease> {
    loop {
        let dead = {
            let mut guard = slots();
            let slot = slot_of(&mut guard, signature);
            match &slot.sidecar {
                Some(sidecar) if sidecar.is_alive() => {
                    slot.leases += 1;
                    log(
                        log_level::INFO,
                        &format!(
                            "asio sidecar reused: pid {}, leases {}",
                            sidecar.pid(),
                            slot.leases
                        ),
                    );
                    return Ok(Lease {
                        signature: signature.clone(),
                        sidecar: sidecar.clone(),
                    });
                }
                // A crashed or hung sidecar: take it out and reap it outside the lock.
                Some(_) => slot.sidecar.take(),
                None => None,
            }
        };
        if let Some(dead) = dead {
            // Marked dead without a recorded fault only if it died before anyone looked.
            let fault = dead.fault().unwrap_or(Fault::Crashed);
            log(
                log_level::WARN,
                &format!(
                    "asio sidecar {} {fault}; replacing it with a fresh one",
                    dead.pid()
                ),
            );
            dead.stop(StopReason::Replaced(fault));
        }
        // One that just lost its last lease may still be exiting.
        wait_retired(Some(signature));
        let fresh = sidecar::spawn(signature)?;
        let loser = {
            let mut guard = slots();
            let slot = slot_of(&mut guard, signature);
            match &slot.sidecar {
                // Another thread spawned one meanwhile: use theirs, retire ours.
                Some(theirs) if theirs.is_alive() => Some(fresh),
                _ => {
                    slot.sidecar = Some(fresh.clone());
                    slot.leases += 1;
                    log(
                        log_level::INFO,
                        &format!(
                            "asio sidecar spawned: pid {}, backend {}, executable {}, args {:?}, {} ms, leases {}",
                            fresh.pid(),
                            signature.backend,
                            signature.executable.display(),
                            signature.args,
                            fresh.started_in().as_millis(),
                            slot.leases
                        ),
                    );
                    return Ok(Lease {
                        signature: signature.clone(),
                        sidecar: fresh,
                    });
                }
            }
        };
        if let Some(ours) = loser {
            ours.stop(sidecar::DUPLICATE_SPAWN);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let retired = {
            let mut guard = slots();
            let Some(slot) = guard.as_mut().and_then(|m| m.get_mut(&self.signature)) else {
                return;
            };
            slot.leases = slot.leases.saturating_sub(1);
            if slot.leases == 0 {
                slot.sidecar.take()
            } else {
                None
            }
        };
        // The graceful stop (close stdin, grace period, kill) runs with no lock held.
        if let Some(retired) = retired {
            retire(&self.signature, retired, sidecar::LAST_LEASE_RELEASED);
        }
    }
}

/// Stops every sidecar. Called by the module's shutdown, after the host destroyed every
/// instance, so normally there is nothing left; a leak would otherwise outlive the library.
pub fn shutdown_all() {
    let all: Vec<Arc<Sidecar>> = slots()
        .take()
        .map(|m| m.into_values().filter_map(|s| s.sidecar).collect())
        .unwrap_or_default();
    for running in all {
        running.stop(sidecar::MODULE_SHUTDOWN);
    }
    wait_retired(None);
}
