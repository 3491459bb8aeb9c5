//! Plugin output sinks, adapted to the engine's `Sink` trait.

use std::ffi::c_void;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use stellatune_core::{Sink, SinkError, SinkFactory, SinkStatus, StreamSpec, TakeSchedule};
use stellatune_plugin_api::{
    OutputSinkVTable, SCHEDULE_SINCE_ABI_MINOR, StSinkSchedule, StSinkStatus, StSpec, StStatus,
    StStr, sink_traits,
};

use crate::error::{PluginError, Result};
use crate::generation::Generation;

/// How long a plugin's close may take before the host stops waiting for it.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The instance pointer, movable to the thread that closes it.
struct Instance(*mut c_void);

// SAFETY: the ABI requires instances to accept calls from any thread, one at a time; the
// host never calls one instance from two threads at once.
unsafe impl Send for Instance {}

/// A live output-sink instance of one plugin generation. Holding it keeps the generation
/// loaded; dropping it closes (if still open) and destroys the instance, always in that
/// order.
pub struct PluginSink {
    generation: Arc<Generation>,
    vtable: &'static OutputSinkVTable,
    instance: Option<Instance>,
    closed: bool,
    describe: String,
    /// Channels of the opened spec: the ABI counts frames, the engine hands samples.
    channels: usize,
    /// The type's [`sink_traits`] bits; none for a module older than ABI 1.2.
    traits: u32,
    /// `query_schedule`, for a module of ABI 1.3 or newer.
    query_schedule: Option<QueryScheduleFn>,
}

type QueryScheduleFn = extern "C" fn(*mut c_void, *mut StSinkSchedule) -> StStatus;

impl std::fmt::Debug for PluginSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

impl PluginSink {
    pub(crate) fn create(
        generation: Arc<Generation>,
        vtable: &'static OutputSinkVTable,
        type_id: &str,
        target: &str,
        config_json: &str,
    ) -> Result<PluginSink> {
        let mut instance: *mut c_void = std::ptr::null_mut();
        let st = (vtable.create)(
            StStr::borrowed(config_json),
            StStr::borrowed(target),
            &mut instance,
        );
        generation.check("create", st)?;
        if instance.is_null() {
            return Err(PluginError::Call {
                plugin: generation.plugin_id().to_owned(),
                call: "create",
                code: 0,
                message: "create succeeded but returned no instance".into(),
            });
        }
        let describe = format!(
            "plugin:{}/{type_id}{}{target} (generation {})",
            generation.plugin_id(),
            if target.is_empty() { "" } else { "@" },
            generation.number()
        );
        // The field exists only in vtables of modules built for ABI 1.2 or newer.
        let traits = if generation.table().abi_minor >= sink_traits::SINCE_ABI_MINOR {
            vtable.traits
        } else {
            0
        };
        // And this one only in those of ABI 1.3 or newer.
        let query_schedule = (generation.table().abi_minor >= SCHEDULE_SINCE_ABI_MINOR)
            .then_some(vtable.query_schedule);
        Ok(PluginSink {
            generation,
            vtable,
            traits,
            query_schedule,
            instance: Some(Instance(instance)),
            // Even a never-opened instance is closed before it is destroyed.
            closed: false,
            describe,
            channels: 0,
        })
    }

    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    fn ptr(&self) -> std::result::Result<*mut c_void, SinkError> {
        self.instance.as_ref().map(|i| i.0).ok_or_else(|| {
            SinkError::invalid_config(format!("{}: instance already destroyed", self.describe))
        })
    }

    fn check(&self, call: &'static str, st: StStatus) -> std::result::Result<(), SinkError> {
        self.generation.check(call, st).map_err(SinkError::from)
    }

    /// Calls the plugin's close on a helper thread and waits at most `timeout`. A close
    /// that does not return in time is abandoned: the helper destroys the instance when the
    /// plugin finally returns, and holds the generation loaded until then.
    fn bounded_close(&mut self, timeout: Duration) -> std::result::Result<(), SinkError> {
        let ptr = self.ptr()?;
        let handoff = Arc::new((Mutex::new(CloseState::Running), Condvar::new()));
        let generation = self.generation.clone();
        let vtable = self.vtable;
        let instance = Instance(ptr);
        let theirs = handoff.clone();
        let threads = self.generation.helper_threads().clone();
        let spawned = threads.spawn("stellatune-plugin-close", move || {
                let instance = instance;
                let result = generation.check("close", (vtable.close)(instance.0));
                let (state, ready) = &*theirs;
                let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
                if matches!(*state, CloseState::Abandoned) {
                    (vtable.destroy)(instance.0);
                    tracing::warn!(plugin = %generation.plugin_id(), "a late close returned; instance destroyed");
                } else {
                    *state = CloseState::Done(result);
                    // The waiter still holds its own reference, so this is never the last
                    // one: let go before waking it, so that when the sink is gone the
                    // generation unloads at once on the sink's thread, not a moment later on
                    // this one (a shutdown that returned would still find it mapped).
                    drop(generation);
                    ready.notify_all();
                }
            });
        if let Err(e) = spawned {
            return Err(SinkError::io("cannot start the plugin close thread", e));
        }
        let (state, ready) = &*handoff;
        let state = state.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut state, _) = ready
            .wait_timeout_while(state, timeout, |s| matches!(s, CloseState::Running))
            .unwrap_or_else(PoisonError::into_inner);
        self.closed = true;
        match std::mem::replace(&mut *state, CloseState::Abandoned) {
            CloseState::Done(result) => result.map_err(SinkError::from),
            _ => {
                self.instance = None;
                let e = PluginError::Hung {
                    plugin: self.generation.plugin_id().to_owned(),
                    call: "close",
                    timeout_ms: timeout.as_millis() as u64,
                };
                tracing::error!(error = %e, "plugin sink did not close in time; abandoned");
                Err(SinkError::from(e))
            }
        }
    }
}

enum CloseState {
    Running,
    Done(Result<()>),
    Abandoned,
}

impl Sink for PluginSink {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn negotiate(&mut self, preferred: StreamSpec) -> std::result::Result<StreamSpec, SinkError> {
        let mut out = StSpec {
            sample_rate: 0,
            channels: 0,
        };
        let st = (self.vtable.negotiate)(self.ptr()?, to_st(preferred), &mut out);
        self.check("negotiate", st)?;
        if out.sample_rate == 0 || out.channels == 0 {
            return Err(SinkError::from(PluginError::Call {
                plugin: self.generation.plugin_id().to_owned(),
                call: "negotiate",
                code: stellatune_plugin_api::status::ERROR,
                message: "negotiated an empty spec".into(),
            }));
        }
        Ok(StreamSpec::new(out.sample_rate, out.channels))
    }

    fn open(&mut self, spec: StreamSpec) -> std::result::Result<(), SinkError> {
        let st = (self.vtable.open)(self.ptr()?, to_st(spec));
        self.check("open", st)?;
        self.closed = false;
        self.channels = usize::from(spec.channels);
        Ok(())
    }

    fn write(&mut self, interleaved: &[f32]) -> std::result::Result<usize, SinkError> {
        let ptr = self.ptr()?;
        if self.channels == 0 {
            return Err(SinkError::invalid_config(format!(
                "{}: written before open",
                self.describe
            )));
        }
        let mut taken = 0usize;
        // The engine only writes whole frames of the opened spec.
        let frames = interleaved.len() / self.channels;
        let st = (self.vtable.write)(ptr, interleaved.as_ptr(), frames, &mut taken);
        self.check("write", st)?;
        Ok(taken)
    }

    fn status(&self) -> SinkStatus {
        let Ok(ptr) = self.ptr() else {
            return SinkStatus::default();
        };
        let mut out = StSinkStatus::default();
        let st = (self.vtable.query_status)(ptr, &mut out);
        match self.check("query_status", st) {
            Ok(()) => SinkStatus {
                queued_frames: out.queued_frames,
                underruns: out.underruns,
            },
            Err(_) => SinkStatus::default(),
        }
    }

    fn flush(&mut self) -> std::result::Result<(), SinkError> {
        let st = (self.vtable.flush)(self.ptr()?);
        self.check("flush", st)
    }

    fn reset(&mut self) -> std::result::Result<(), SinkError> {
        let st = (self.vtable.reset)(self.ptr()?);
        self.check("reset", st)
    }

    fn fades_on_reset(&self) -> bool {
        self.traits & sink_traits::FADES_ON_RESET != 0
    }

    fn take_schedule(&self) -> Option<TakeSchedule> {
        let query = self.query_schedule?;
        let ptr = self.ptr().ok()?;
        let mut out = StSinkSchedule::default();
        let st = query(ptr, &mut out);
        self.check("query_schedule", st).ok()?;
        (out.period_ns > 0).then(|| TakeSchedule {
            next_take_in: Duration::from_nanos(out.next_take_in_ns),
            period: Duration::from_nanos(out.period_ns),
        })
    }

    fn close(&mut self) -> std::result::Result<(), SinkError> {
        if self.closed {
            return Ok(());
        }
        self.bounded_close(CLOSE_TIMEOUT)
    }
}

impl Drop for PluginSink {
    /// Close (if still open), then destroy: the order every host path keeps.
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.bounded_close(CLOSE_TIMEOUT) {
                tracing::warn!(sink = %self.describe, error = %e, "plugin sink close failed");
            }
        }
        if let Some(instance) = self.instance.take() {
            (self.vtable.destroy)(instance.0);
            tracing::debug!(sink = %self.describe, "plugin sink destroyed");
        }
    }
}

fn to_st(spec: StreamSpec) -> StSpec {
    StSpec {
        sample_rate: spec.sample_rate,
        channels: spec.channels,
    }
}

/// A route to a plugin sink whose instance was created by the caller (off the engine's
/// thread); the engine only takes it over.
pub struct PluginSinkFactory {
    sink: PluginSink,
}

impl PluginSinkFactory {
    pub(crate) fn new(sink: PluginSink) -> Self {
        Self { sink }
    }

    pub fn generation(&self) -> &Arc<Generation> {
        self.sink.generation()
    }
}

impl SinkFactory for PluginSinkFactory {
    fn describe(&self) -> String {
        self.sink.describe.clone()
    }

    fn create(self: Box<Self>) -> std::result::Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(self.sink))
    }
}
