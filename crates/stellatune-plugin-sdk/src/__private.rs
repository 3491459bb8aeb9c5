//! What [`crate::export_plugin!`] expands to: the `extern "C"` shims between the ABI and the
//! safe traits. Not a stable API.

use std::any::Any;
use std::ffi::{CString, c_char, c_void};
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr;
use std::sync::{Mutex, PoisonError};

use stellatune_plugin_api::{
    ABI_MAJOR, ABI_MINOR, Capability, DspVTable, HostVTable, ModuleTable, OutputSinkVTable,
    StSinkSchedule, StSinkStatus, StSpec, StStatus, StStr, capability_kind, log_level, status,
};

use crate::{Dsp, DspType, Error, OutputSink, OutputSinkType, Result, Spec, Target, host};

/// What a user `shutdown` fn may return.
pub trait IntoPluginResult {
    fn into_plugin_result(self) -> Result<()>;
}

impl IntoPluginResult for () {
    fn into_plugin_result(self) -> Result<()> {
        Ok(())
    }
}

impl IntoPluginResult for Result<()> {
    fn into_plugin_result(self) -> Result<()> {
        self
    }
}

// ---------------------------------------------------------------------------------------
// Statuses, strings, panics

pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Drops a panic payload without letting a panicking `Drop` escape.
pub(crate) fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// A NUL-terminated copy of `s` (interior NULs dropped), owned by the caller until it comes
/// back through [`free_string`].
fn into_c_string(s: String) -> *mut c_char {
    let c = CString::new(s).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).unwrap_or_default()
    });
    c.into_raw()
}

fn make_status(code: i32, message: String) -> StStatus {
    StStatus {
        code: if code == status::OK {
            status::ERROR
        } else {
            code
        },
        message: into_c_string(message),
    }
}

/// Runs `f`, turning its error or panic into a status. `what` names the entry point.
fn guard(what: &str, f: impl FnOnce() -> Result<()>) -> StStatus {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => StStatus::OK,
        Ok(Err(e)) => make_status(e.code, e.message),
        Err(payload) => {
            let message = panic_message(&*payload);
            drop_payload(payload);
            make_status(
                status::PANICKED,
                format!("plugin panicked in {what}: {message}"),
            )
        }
    }
}

/// Logs a failed status nobody can receive (from `destroy`) and frees its message.
fn log_dropped_status(st: StStatus) {
    if st.code == status::OK {
        return;
    }
    let message = if st.message.is_null() {
        String::new()
    } else {
        // SAFETY: the message came from `into_c_string` (CString::into_raw) just now and is
        // released here, once.
        unsafe { CString::from_raw(st.message) }
            .to_string_lossy()
            .into_owned()
    };
    host::log(
        log_level::WARN,
        &format!("status {} while destroying an instance: {message}", st.code),
    );
}

/// The module's `free_string`: releases a string this module handed out.
extern "C" fn free_string(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let freed = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: every string this module hands out comes from `CString::into_raw`, and the
        // host gives each back exactly once.
        drop(unsafe { CString::from_raw(s) })
    }));
    if let Err(payload) = freed {
        drop_payload(payload);
    }
}

/// # Safety
/// `s` must describe bytes that stay valid for `'a` (the ABI lends them for the call).
unsafe fn str_arg<'a>(s: StStr, what: &str) -> Result<&'a str> {
    // SAFETY: forwarded to the caller.
    unsafe { s.to_str() }
        .ok_or_else(|| Error::invalid_argument(format!("{what} is not valid UTF-8")))
}

/// # Safety
/// As [`str_arg`].
unsafe fn config_arg<'a>(s: StStr, default: &'static str) -> Result<&'a str> {
    // SAFETY: forwarded to the caller.
    let config = unsafe { str_arg(s, "config_json") }?;
    Ok(if config.trim().is_empty() {
        default
    } else {
        config
    })
}

fn non_null<T>(p: *mut T, what: &str) -> Result<*mut T> {
    if p.is_null() {
        Err(Error::invalid_argument(format!("{what} is NULL")))
    } else {
        Ok(p)
    }
}

/// # Safety
/// `p` must be NULL or the live pointer this shim family's `create` returned, and the host
/// makes one call at a time on it.
unsafe fn instance_mut<'a, I>(p: *mut c_void) -> Result<&'a mut I> {
    // SAFETY: forwarded to the caller.
    unsafe { p.cast::<I>().as_mut() }.ok_or_else(|| Error::invalid_argument("instance is NULL"))
}

fn check_spec(spec: Spec, what: &str) -> Result<Spec> {
    if spec.channels == 0 || spec.sample_rate == 0 {
        Err(Error::invalid_argument(format!(
            "{what} has zero channels or sample rate: {spec:?}"
        )))
    } else {
        Ok(spec)
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

pub(crate) fn targets_json(targets: &[Target]) -> String {
    let mut out = String::from("[");
    for (i, t) in targets.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        push_json_str(&mut out, &t.id);
        out.push_str(",\"name\":");
        push_json_str(&mut out, &t.name);
        out.push('}');
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------------------------------
// Module table and entry

const fn same_bytes(a: StStr, b: StStr) -> bool {
    if a.len != b.len {
        return false;
    }
    let mut i = 0;
    while i < a.len {
        // SAFETY: both come from `StStr::from_static` on `&'static str`s of `len` bytes.
        if unsafe { *a.ptr.add(i) != *b.ptr.add(i) } {
            return false;
        }
        i += 1;
    }
    true
}

/// The module table for `export_plugin!`. Fails the build if two capabilities share a
/// type id.
pub const fn module_table(
    id: &'static str,
    version: &'static str,
    capabilities: &'static [Capability],
    shutdown: extern "C" fn() -> StStatus,
) -> ModuleTable {
    let mut i = 0;
    while i < capabilities.len() {
        let mut j = i + 1;
        while j < capabilities.len() {
            if same_bytes(capabilities[i].type_id, capabilities[j].type_id) {
                panic!("export_plugin!: two capabilities share a type id");
            }
            j += 1;
        }
        i += 1;
    }
    ModuleTable {
        size: size_of::<ModuleTable>(),
        abi_major: ABI_MAJOR,
        abi_minor: ABI_MINOR,
        plugin_id: StStr::from_static(id),
        plugin_version: StStr::from_static(version),
        capabilities: capabilities.as_ptr(),
        capability_count: capabilities.len(),
        free_string,
        shutdown,
    }
}

/// Copies of the module table reporting another ABI version (the test hooks), leaked once
/// per distinct version so every returned pointer stays valid until unload.
static OVERRIDDEN: Mutex<Vec<&'static ModuleTable>> = Mutex::new(Vec::new());

fn with_abi_version(table: &'static ModuleTable, major: u32, minor: u32) -> *const ModuleTable {
    if (major, minor) == (table.abi_major, table.abi_minor) {
        return table;
    }
    let mut cache = OVERRIDDEN.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(t) = cache
        .iter()
        .find(|t| (t.abi_major, t.abi_minor) == (major, minor))
    {
        return *t;
    }
    let t: &'static ModuleTable = Box::leak(Box::new(ModuleTable {
        abi_major: major,
        abi_minor: minor,
        ..*table
    }));
    cache.push(t);
    t
}

/// Calls a test hook, if there is one: `Err` when it panicked.
fn call_override(hook: Option<fn() -> Option<u32>>) -> std::result::Result<Option<u32>, ()> {
    match hook.map(catch_unwind) {
        None => Ok(None),
        Some(Ok(v)) => Ok(v),
        Some(Err(payload)) => {
            drop_payload(payload);
            Err(())
        }
    }
}

/// The body of `stellatune_plugin_entry`.
///
/// # Safety
/// `host` must be NULL or point at a [`HostVTable`] valid until the library is unloaded.
pub unsafe fn entry(
    host: *const HostVTable,
    table: &'static ModuleTable,
    abi_major_override: Option<fn() -> Option<u32>>,
    abi_minor_override: Option<fn() -> Option<u32>>,
) -> *const ModuleTable {
    // SAFETY: the caller guarantees `host` is NULL or valid.
    let Some(h) = (unsafe { host.as_ref() }) else {
        return ptr::null();
    };
    // Only `abi_major` is read before the check: its offset is the same in every major.
    if h.abi_major != ABI_MAJOR {
        return ptr::null();
    }
    host::set_host(host);
    let (Ok(major), Ok(minor)) = (
        call_override(abi_major_override),
        call_override(abi_minor_override),
    ) else {
        return ptr::null();
    };
    with_abi_version(
        table,
        major.unwrap_or(table.abi_major),
        minor.unwrap_or(table.abi_minor),
    )
}

/// The module's `shutdown`: runs the user's shutdown fn, if any, then [`crate::rt::stop`],
/// each panic-guarded (the service thread is joined even if the user's fn failed). The
/// user's failure is the one reported.
pub fn run_shutdown(user: Option<fn() -> Result<()>>) -> StStatus {
    let st = guard("shutdown", || match user {
        Some(f) => f(),
        None => Ok(()),
    });
    let stopped = guard("shutdown (rt::stop)", || {
        crate::rt::stop();
        Ok(())
    });
    if st.code == status::OK {
        stopped
    } else {
        free_string(stopped.message);
        st
    }
}

// ---------------------------------------------------------------------------------------
// Output sinks

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SinkState {
    Created,
    Open,
    Closed,
}

struct SinkInstance<S> {
    sink: S,
    state: SinkState,
    channels: usize,
}

impl<S> SinkInstance<S> {
    fn require_open(&self, what: &str) -> Result<()> {
        match self.state {
            SinkState::Open => Ok(()),
            SinkState::Created => Err(Error::bad_state(format!("{what} before open"))),
            SinkState::Closed => Err(Error::bad_state(format!(
                "{what} after close (open again first)"
            ))),
        }
    }
}

/// The `extern "C"` shims of one [`OutputSinkType`].
pub struct SinkShims<T>(PhantomData<T>);

impl<T: OutputSinkType> SinkShims<T> {
    const VTABLE: OutputSinkVTable = OutputSinkVTable {
        list_targets_json: Self::list_targets_json,
        create: Self::create,
        negotiate: Self::negotiate,
        open: Self::open,
        write: Self::write,
        query_status: Self::query_status,
        flush: Self::flush,
        reset: Self::reset,
        close: Self::close,
        destroy: Self::destroy,
        traits: T::TRAITS,
        query_schedule: Self::query_schedule,
    };
    const VTABLE_REF: &'static OutputSinkVTable = &Self::VTABLE;

    /// # Safety
    /// As [`instance_mut`].
    unsafe fn get<'a>(instance: *mut c_void) -> Result<&'a mut SinkInstance<T::Instance>> {
        // SAFETY: forwarded to the caller.
        unsafe { instance_mut(instance) }
    }

    extern "C" fn list_targets_json(config_json: StStr, out_json: *mut *mut c_char) -> StStatus {
        guard("list_targets", || {
            let out = non_null(out_json, "out_json")?;
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(ptr::null_mut()) };
            // SAFETY: the ABI lends `config_json` for the duration of this call.
            let config = unsafe { config_arg(config_json, T::DEFAULT_CONFIG) }?;
            let json = targets_json(&T::list_targets(config)?);
            // SAFETY: as above.
            unsafe { out.write(into_c_string(json)) };
            Ok(())
        })
    }

    extern "C" fn create(
        config_json: StStr,
        target: StStr,
        out_instance: *mut *mut c_void,
    ) -> StStatus {
        guard("create", || {
            let out = non_null(out_instance, "out_instance")?;
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(ptr::null_mut()) };
            // SAFETY: the ABI lends both strings for the duration of this call.
            let (config, target) = unsafe {
                (
                    config_arg(config_json, T::DEFAULT_CONFIG)?,
                    str_arg(target, "target")?,
                )
            };
            let sink = T::create(config, target)?;
            let instance = Box::new(SinkInstance {
                sink,
                state: SinkState::Created,
                channels: 0,
            });
            // SAFETY: as above; ownership of the box passes to the host until `destroy`.
            unsafe { out.write(Box::into_raw(instance).cast()) };
            Ok(())
        })
    }

    extern "C" fn negotiate(
        instance: *mut c_void,
        preferred: StSpec,
        out_spec: *mut StSpec,
    ) -> StStatus {
        guard("negotiate", || {
            let out = non_null(out_spec, "out_spec")?;
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            let preferred = check_spec(preferred.into(), "preferred spec")?;
            let spec = inst.sink.negotiate(preferred)?;
            let spec = check_spec(spec, "negotiated spec")
                .map_err(|e| Error::other(format!("the sink returned bad data: {}", e.message)))?;
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(spec.into()) };
            Ok(())
        })
    }

    extern "C" fn open(instance: *mut c_void, spec: StSpec) -> StStatus {
        guard("open", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            let spec = check_spec(spec.into(), "spec")?;
            if inst.state == SinkState::Open {
                // Re-open with a new spec: release the old resources first.
                inst.state = SinkState::Closed;
                inst.sink.close()?;
            }
            inst.sink.open(spec)?;
            inst.state = SinkState::Open;
            inst.channels = usize::from(spec.channels);
            Ok(())
        })
    }

    extern "C" fn write(
        instance: *mut c_void,
        samples: *const f32,
        frames: usize,
        out_frames: *mut usize,
    ) -> StStatus {
        guard("write", || {
            let out = non_null(out_frames, "out_frames")?;
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(0) };
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.require_open("write")?;
            if frames == 0 {
                return Ok(());
            }
            if samples.is_null() {
                return Err(Error::invalid_argument("samples is NULL"));
            }
            let len = frames
                .checked_mul(inst.channels)
                .ok_or_else(|| Error::invalid_argument("frames overflows"))?;
            // SAFETY: the ABI lends `frames` interleaved frames of the opened spec's channel
            // count at `samples` for the duration of this call.
            let interleaved = unsafe { std::slice::from_raw_parts(samples, len) };
            let taken = inst.sink.write(interleaved)?;
            if taken > frames {
                return Err(Error::other(format!(
                    "the sink claims {taken} frames taken of {frames} given"
                )));
            }
            // SAFETY: as above.
            unsafe { out.write(taken) };
            Ok(())
        })
    }

    extern "C" fn query_status(instance: *mut c_void, out: *mut StSinkStatus) -> StStatus {
        guard("query_status", || {
            let out = non_null(out, "out")?;
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.require_open("query_status")?;
            let st = inst.sink.status();
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(st.into()) };
            Ok(())
        })
    }

    extern "C" fn query_schedule(instance: *mut c_void, out: *mut StSinkSchedule) -> StStatus {
        guard("query_schedule", || {
            let out = non_null(out, "out")?;
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.require_open("query_schedule")?;
            let schedule = crate::SinkSchedule::to_abi(inst.sink.schedule());
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(schedule) };
            Ok(())
        })
    }

    extern "C" fn flush(instance: *mut c_void) -> StStatus {
        guard("flush", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.require_open("flush")?;
            inst.sink.flush()
        })
    }

    extern "C" fn reset(instance: *mut c_void) -> StStatus {
        guard("reset", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.require_open("reset")?;
            inst.sink.reset()
        })
    }

    extern "C" fn close(instance: *mut c_void) -> StStatus {
        guard("close", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            if inst.state != SinkState::Open {
                return Ok(());
            }
            // Closed even if `close` fails or panics: the host will not close twice.
            inst.state = SinkState::Closed;
            inst.sink.close()
        })
    }

    extern "C" fn destroy(instance: *mut c_void) {
        if instance.is_null() {
            return;
        }
        // SAFETY: a non-NULL pointer from `create` (Box::into_raw); the host destroys it once
        // and uses it no more, so the box is reclaimed and freed exactly once, here.
        let mut instance = unsafe { Box::from_raw(instance.cast::<SinkInstance<T::Instance>>()) };
        if instance.state == SinkState::Open {
            instance.state = SinkState::Closed;
            log_dropped_status(guard("close (from destroy)", || instance.sink.close()));
        }
        log_dropped_status(guard("destroy", move || {
            drop(instance);
            Ok(())
        }));
    }
}

/// The capability entry of an [`OutputSinkType`].
pub const fn sink_capability<T: OutputSinkType>() -> Capability {
    Capability {
        kind: capability_kind::OUTPUT_SINK,
        type_id: StStr::from_static(T::TYPE_ID),
        display_name: StStr::from_static(T::DISPLAY_NAME),
        config_schema_json: StStr::from_static(T::CONFIG_SCHEMA),
        default_config_json: StStr::from_static(T::DEFAULT_CONFIG),
        vtable: (SinkShims::<T>::VTABLE_REF as *const OutputSinkVTable).cast::<c_void>(),
    }
}

// ---------------------------------------------------------------------------------------
// DSPs

struct DspInstance<D> {
    dsp: D,
    channels: usize,
}

/// The `extern "C"` shims of one [`DspType`].
pub struct DspShims<T>(PhantomData<T>);

impl<T: DspType> DspShims<T> {
    const VTABLE: DspVTable = DspVTable {
        create: Self::create,
        process: Self::process,
        reset: Self::reset,
        destroy: Self::destroy,
    };
    const VTABLE_REF: &'static DspVTable = &Self::VTABLE;

    /// # Safety
    /// As [`instance_mut`].
    unsafe fn get<'a>(instance: *mut c_void) -> Result<&'a mut DspInstance<T::Instance>> {
        // SAFETY: forwarded to the caller.
        unsafe { instance_mut(instance) }
    }

    extern "C" fn create(
        config_json: StStr,
        spec: StSpec,
        out_instance: *mut *mut c_void,
    ) -> StStatus {
        guard("create", || {
            let out = non_null(out_instance, "out_instance")?;
            // SAFETY: `out` is non-NULL and the host passes a writable out-parameter.
            unsafe { out.write(ptr::null_mut()) };
            // SAFETY: the ABI lends `config_json` for the duration of this call.
            let config = unsafe { config_arg(config_json, T::DEFAULT_CONFIG) }?;
            let spec = check_spec(spec.into(), "spec")?;
            let dsp = T::create(config, spec)?;
            let instance = Box::new(DspInstance {
                dsp,
                channels: usize::from(spec.channels),
            });
            // SAFETY: as above; ownership of the box passes to the host until `destroy`.
            unsafe { out.write(Box::into_raw(instance).cast()) };
            Ok(())
        })
    }

    extern "C" fn process(instance: *mut c_void, samples: *mut f32, frames: usize) -> StStatus {
        guard("process", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            if frames == 0 {
                return Ok(());
            }
            if samples.is_null() {
                return Err(Error::invalid_argument("samples is NULL"));
            }
            let len = frames
                .checked_mul(inst.channels)
                .ok_or_else(|| Error::invalid_argument("frames overflows"))?;
            // SAFETY: the ABI lends `frames` interleaved frames of the create spec's channel
            // count at `samples`, writable and unaliased, for the duration of this call.
            let interleaved = unsafe { std::slice::from_raw_parts_mut(samples, len) };
            inst.dsp.process(interleaved)
        })
    }

    extern "C" fn reset(instance: *mut c_void) -> StStatus {
        guard("reset", || {
            // SAFETY: the host passes a pointer from `create`, one call at a time.
            let inst = unsafe { Self::get(instance) }?;
            inst.dsp.reset()
        })
    }

    extern "C" fn destroy(instance: *mut c_void) {
        if instance.is_null() {
            return;
        }
        // SAFETY: a non-NULL pointer from `create` (Box::into_raw); the host destroys it once
        // and uses it no more, so the box is reclaimed and freed exactly once, here.
        let instance = unsafe { Box::from_raw(instance.cast::<DspInstance<T::Instance>>()) };
        log_dropped_status(guard("destroy", move || {
            drop(instance);
            Ok(())
        }));
    }
}

/// The capability entry of a [`DspType`].
pub const fn dsp_capability<T: DspType>() -> Capability {
    Capability {
        kind: capability_kind::DSP,
        type_id: StStr::from_static(T::TYPE_ID),
        display_name: StStr::from_static(T::DISPLAY_NAME),
        config_schema_json: StStr::from_static(T::CONFIG_SCHEMA),
        default_config_json: StStr::from_static(T::DEFAULT_CONFIG),
        vtable: (DspShims::<T>::VTABLE_REF as *const DspVTable).cast::<c_void>(),
    }
}
