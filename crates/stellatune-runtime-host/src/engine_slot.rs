//! The slot holding the running engine. Its own type because three owners read it (the
//! runtime, its commands, plugin operations) and one replaces it (engine restart): whoever
//! reads it under the command gate gets the engine that is current for that gate.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use stellatune_audio::Engine;

pub(crate) struct EngineSlot(Mutex<Arc<Engine>>);

impl EngineSlot {
    pub fn new(engine: Engine) -> Self {
        Self(Mutex::new(Arc::new(engine)))
    }

    /// The current engine. The lock is held only to clone the handle, never across a request.
    pub fn get(&self) -> Arc<Engine> {
        self.lock().clone()
    }

    /// Locked for a replacement: the caller holds the command gate exclusively.
    pub fn lock(&self) -> MutexGuard<'_, Arc<Engine>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
