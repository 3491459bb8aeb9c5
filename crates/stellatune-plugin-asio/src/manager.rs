//! The plugin-local sidecar manager: one sidecar per signature, shared through leases,
//! spawned on the first lease and stopped when the last lease goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use stellatune_plugin_sdk::{Result, log, log_level};

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
            retired.stop(sidecar::LAST_LEASE_RELEASED);
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
}
