//! The one owner of what the host asked the engine to play through: the output route and
//! the DSP chain. Every path that stops playback and clears them while the engine runs (a
//! rollover, the last client leaving by dispose or by lease) goes through
//! [`Output::stop_and_clear`]; shutdown only forgets them ([`Output::reset`]) and lets the
//! engine's own bounded shutdown stop playback.
//!
//! Client commands, plugin operations (moving to a new plugin generation) and the engine
//! restart all change the output through here; they make plugin instances before, with no
//! lock held, and hand them in. Which gate mode a caller holds is the caller's business: the
//! output only keeps its record consistent with what the engine may hold.

use std::sync::{Mutex, MutexGuard, PoisonError};

use stellatune_audio::{AudioError, DspStage, Engine, SinkFactory};

use crate::route::{DspSpec, OutputRoute};

#[derive(Default)]
struct Desired {
    /// The route as last asked for, kept to re-create plugin sinks after a reload.
    route: Option<OutputRoute>,
    /// True from the moment a route is sent to the engine until a clear is confirmed. An
    /// engine that did not answer in time may still apply the route later, so "no answer"
    /// never counts as "no route".
    engine_may_have_route: bool,
    /// The DSP chain as last set, for the same reason as `route`.
    dsp_chain: Vec<DspSpec>,
    engine_may_have_dsp: bool,
}

/// How long a route clear (and a session's stop-and-clear) waits for the engine's output
/// thread to have closed the sink.
const OUTPUT_SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Lets a clear return once the engine's output thread has closed the sink, so a client that
/// cleared its route (or a session that was disposed or evicted) has released the device and
/// any sidecar when the call returns; the engine itself answered at once and keeps answering
/// other calls meanwhile. Opening is never waited for: `play` and `apply_route` return at once.
pub(crate) fn settle(engine: &Engine) {
    if !engine.wait_output_settled(OUTPUT_SETTLE_TIMEOUT) {
        tracing::debug!("the output is still busy; the call returns without waiting for it");
    }
}

#[derive(Default)]
pub(crate) struct Output {
    desired: Mutex<Desired>,
}

impl Output {
    fn lock(&self) -> MutexGuard<'_, Desired> {
        self.desired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends `factory` to the engine and records `route` as the one playing. Recorded before
    /// the engine answers: a later stop-and-clear must clear it even if this call timed out.
    pub fn apply_route(
        &self,
        engine: &Engine,
        route: OutputRoute,
        factory: Box<dyn SinkFactory>,
    ) -> Result<(), AudioError> {
        {
            let mut desired = self.lock();
            desired.route = Some(route);
            desired.engine_may_have_route = true;
        }
        // Not settled: the sink opens on the engine's output thread (a plugin sink may start a
        // process), and the caller, often a UI thread, must not wait on it. Progress and
        // failure arrive as `output_starting`, `route_changed` and `error` events.
        let applied = engine.apply_route(factory);
        if applied.is_err() {
            // The route did not take (or not yet): it is no longer something to move to a new
            // plugin generation, but the engine may still hold it, so it stays "maybe set".
            self.lock().route = None;
        }
        applied
    }

    pub fn clear_route(&self, engine: &Engine) -> Result<(), AudioError> {
        self.lock().route = None;
        engine.clear_route()?;
        settle(engine);
        self.lock().engine_may_have_route = false;
        Ok(())
    }

    pub fn set_dsp_chain(
        &self,
        engine: &Engine,
        chain: Vec<DspSpec>,
        stages: Vec<Box<dyn DspStage>>,
    ) -> Result<(), AudioError> {
        {
            let mut desired = self.lock();
            desired.engine_may_have_dsp = desired.engine_may_have_dsp || !chain.is_empty();
            desired.dsp_chain = chain;
        }
        engine.set_dsp_chain(stages)
    }

    pub fn route(&self) -> Option<OutputRoute> {
        self.lock().route.clone()
    }

    pub fn dsp_chain(&self) -> Vec<DspSpec> {
        self.lock().dsp_chain.clone()
    }

    /// Whether `route` is still the one asked for (a reload re-checks before moving it).
    pub fn is_current(&self, route: &OutputRoute) -> bool {
        self.lock().route.as_ref() == Some(route)
    }

    /// Stops playback and removes the route and the DSP chain; the caller holds the command
    /// gate exclusively. Nothing can play without a route, so without one (as far as the
    /// engine may know) the engine round trips are saved.
    pub fn stop_and_clear(&self, engine: &Engine) -> Result<(), AudioError> {
        let (route, dsp) = {
            let mut desired = self.lock();
            desired.route = None;
            desired.dsp_chain.clear();
            (desired.engine_may_have_route, desired.engine_may_have_dsp)
        };
        // The DSP chain belongs to the session that set it.
        if dsp && engine.set_dsp_chain(Vec::new()).is_ok() {
            self.lock().engine_may_have_dsp = false;
        }
        if !route {
            return Ok(());
        }
        if let Err(e) = engine.stop() {
            tracing::warn!(error = %e, "stopping playback failed");
        }
        engine.clear_route()?;
        settle(engine);
        self.lock().engine_may_have_route = false;
        Ok(())
    }

    /// Forgets everything (the engine it described was replaced).
    pub fn reset(&self) {
        *self.lock() = Desired::default();
    }
}
