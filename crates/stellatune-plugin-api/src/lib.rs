//! The plugin ABI, as plain `#[repr(C)]` types and `extern "C"` function pointers.
//!
//! A plugin is a shared library exporting one symbol, [`ENTRY_SYMBOL`], of type
//! [`PluginEntryFn`]. The host calls it once per load with its [`HostVTable`]; the plugin
//! returns a [`ModuleTable`] that stays valid until the library is unloaded.
//!
//! Versioning: [`ABI_MAJOR`] must match exactly; a plugin built against an older
//! [`ABI_MINOR`] is accepted (new fields only ever go at the end of tables whose size is
//! stated), a newer minor is refused.
//!
//! Memory: strings passed *into* a call are borrowed for the duration of the call
//! ([`StStr`]). Strings a plugin hands *out* ([`StStatus::message`], JSON out-parameters)
//! are owned by the plugin and go back through [`ModuleTable::free_string`].
//!
//! Output sink lifecycle: `create` -> (`negotiate` -> `open` -> `write`* -> `flush`/`reset`)*
//! -> `close` -> `destroy`. `reset` drops queued audio and keeps the instance usable;
//! `close` releases every external resource (processes, mappings, files, sockets) and
//! allows `open` again; `destroy` is final. The host always calls `close` before
//! `destroy`; the SDK closes first if a host did not.
//!
//! Sink traits (ABI 1.2): [`OutputSinkVTable::traits`] says how a sink type behaves, e.g.
//! [`sink_traits::FADES_ON_RESET`]. The host reads it only from a module whose
//! `abi_minor` is 2 or newer; for an older module every trait bit counts as clear.
//!
//! Take schedule (ABI 1.3): [`OutputSinkVTable::query_schedule`] tells the host when the
//! consumer behind a sink (a device, a sidecar's ring reader) takes its next frames, so that
//! the host refills just after a take instead of at a time of its own. The host calls it only
//! on a module whose `abi_minor` is 3 or newer.
//!
//! Threads (ABI 1.1): a plugin never starts an OS thread with its own copy of the Rust
//! standard library. Each plugin library links its own std, and the first thread that
//! copy starts creates a pthread key (for its thread-exit bookkeeping) that nothing deletes
//! when the library unloads; glibc has 1024 keys, so a process that reloads plugins would
//! abort after about a thousand generations. Instead the host lends threads through
//! [`HostVTable::spawn_thread`] and [`HostVTable::join_thread`]: only the host's std ever
//! starts one, and the host knows which threads run plugin code when it unloads a library.

#![no_std]

use core::ffi::{c_char, c_void};

pub const ABI_MAJOR: u32 = 1;
pub const ABI_MINOR: u32 = 3;

/// The one symbol a plugin library exports (NUL-terminated for `dlsym`).
pub const ENTRY_SYMBOL: &[u8] = b"stellatune_plugin_entry\0";

/// Status codes. Zero is success; everything else carries an optional message.
pub mod status {
    pub const OK: i32 = 0;
    pub const ERROR: i32 = -1;
    pub const INVALID_ARGUMENT: i32 = -2;
    pub const UNSUPPORTED: i32 = -3;
    /// The plugin panicked inside the call; the SDK caught it.
    pub const PANICKED: i32 = -4;
    /// The call came in the wrong lifecycle state (e.g. write before open).
    pub const BAD_STATE: i32 = -5;
    pub const IO: i32 = -6;
    /// An external resource the instance depends on went away (e.g. a sidecar died).
    pub const DISCONNECTED: i32 = -7;
}

/// A borrowed UTF-8 string: valid for the duration of the call it is passed to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StStr {
    pub ptr: *const u8,
    pub len: usize,
}

impl StStr {
    pub const EMPTY: StStr = StStr {
        ptr: core::ptr::null(),
        len: 0,
    };

    pub const fn from_static(s: &'static str) -> StStr {
        StStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    pub fn borrowed(s: &str) -> StStr {
        StStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// # Safety
    /// `ptr` must point at `len` bytes that stay valid for `'a`.
    pub unsafe fn as_bytes<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            &[]
        } else {
            // SAFETY: the caller guarantees ptr/len describe a live allocation for 'a.
            unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
        }
    }

    /// # Safety
    /// As [`StStr::as_bytes`].
    pub unsafe fn to_str<'a>(&self) -> Option<&'a str> {
        // SAFETY: forwarded to the caller's guarantee.
        core::str::from_utf8(unsafe { self.as_bytes() }).ok()
    }
}

/// A call's outcome. `message` is NULL or a NUL-terminated string owned by the plugin,
/// released with [`ModuleTable::free_string`].
#[repr(C)]
#[derive(Debug)]
pub struct StStatus {
    pub code: i32,
    pub message: *mut c_char,
}

impl StStatus {
    pub const OK: StStatus = StStatus {
        code: status::OK,
        message: core::ptr::null_mut(),
    };
}

#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StSpec {
    pub sample_rate: u32,
    pub channels: u16,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StSinkStatus {
    pub queued_frames: u64,
    pub underruns: u64,
}

pub mod log_level {
    pub const ERROR: u32 = 1;
    pub const WARN: u32 = 2;
    pub const INFO: u32 = 3;
    pub const DEBUG: u32 = 4;
    pub const TRACE: u32 = 5;
}

/// The body of a host-lent thread: the host calls it once, with the `arg` given to
/// [`HostVTable::spawn_thread`], on a thread it owns. It must not unwind.
pub type ThreadEntryFn = extern "C" fn(arg: *mut c_void);

/// What the host offers a plugin. Valid from the entry call until the module is unloaded.
///
/// Fields after `plugin_dir` exist only when `abi_minor` says so (each is marked with the
/// minor that added it): a plugin reads `abi_minor` before touching them.
#[repr(C)]
pub struct HostVTable {
    pub abi_major: u32,
    pub abi_minor: u32,
    /// Opaque to the plugin; passed back on every callback.
    pub ctx: *mut c_void,
    pub log: extern "C" fn(ctx: *mut c_void, level: u32, message: StStr),
    /// A plugin event (`kind`, JSON payload) for every client of the host.
    pub emit_event: extern "C" fn(ctx: *mut c_void, kind: StStr, json: StStr),
    /// Adds `delta` to a named runtime metric (e.g. `asio_sidecar_running`). The host keeps
    /// the sums across plugin generations, so counters survive a reload; a gauge is kept by
    /// adding +1 and -1.
    pub metric_add: extern "C" fn(ctx: *mut c_void, name: StStr, delta: i64),
    /// The runtime's data directory: where a plugin keeps files it creates at run time
    /// (e.g. shared-memory ring files). Valid as long as the vtable.
    pub data_dir: StStr,
    /// The directory this generation runs from: the host's private copy of the plugin's
    /// installed directory (plugin.json, the library this code was loaded from, and anything
    /// shipped beside it, such as a helper executable). Start shipped programs from here, never
    /// from the installed directory, which install, upgrade and uninstall replace while the
    /// plugin runs. Read-only; run-time files belong in `data_dir`. Valid as long as the vtable.
    pub plugin_dir: StStr,
    /// (ABI 1.1) Starts a host-owned thread named `name` that runs `entry(arg)` once and
    /// ends when it returns; writes a non-zero handle into `*out_thread`. Returns a
    /// [`status`] code: on anything but [`status::OK`] no thread started, `entry` is never
    /// called and `arg` is still the plugin's to free (the host logs why).
    ///
    /// Every thread a plugin starts must have ended, and should be joined, before the
    /// module's `shutdown` returns: the host joins leftovers with a short time bound before
    /// it unloads the library, and if one is still running it never unloads the library
    /// (running code of an unloaded library would crash the process), so that generation
    /// leaks.
    pub spawn_thread: extern "C" fn(
        ctx: *mut c_void,
        name: StStr,
        entry: ThreadEntryFn,
        arg: *mut c_void,
        out_thread: *mut u64,
    ) -> i32,
    /// (ABI 1.1) Waits until the thread `thread` (from `spawn_thread`) has ended and
    /// releases its handle; each handle is joined at most once. Returns a [`status`] code:
    /// [`status::INVALID_ARGUMENT`] for an unknown (or already joined) handle,
    /// [`status::BAD_STATE`] when a thread tries to join itself.
    pub join_thread: extern "C" fn(ctx: *mut c_void, thread: u64) -> i32,
}

pub mod capability_kind {
    pub const OUTPUT_SINK: u32 = 1;
    pub const DSP: u32 = 2;
}

/// One thing a module can make instances of.
#[repr(C)]
pub struct Capability {
    /// [`capability_kind`].
    pub kind: u32,
    /// Unique within the module, e.g. `asio` or `gain`.
    pub type_id: StStr,
    pub display_name: StStr,
    /// JSON schema of the instance config, or empty.
    pub config_schema_json: StStr,
    /// The config used when a route gives none.
    pub default_config_json: StStr,
    /// [`OutputSinkVTable`] or [`DspVTable`], after `kind`.
    pub vtable: *const c_void,
}

/// An output sink type. `instance` is the pointer `create` returned.
#[repr(C)]
pub struct OutputSinkVTable {
    /// Writes a JSON array of `{"id": ..., "name": ...}` targets into `*out_json`.
    pub list_targets_json:
        extern "C" fn(config_json: StStr, out_json: *mut *mut c_char) -> StStatus,
    pub create: extern "C" fn(
        config_json: StStr,
        target: StStr,
        out_instance: *mut *mut c_void,
    ) -> StStatus,
    pub negotiate:
        extern "C" fn(instance: *mut c_void, preferred: StSpec, out_spec: *mut StSpec) -> StStatus,
    pub open: extern "C" fn(instance: *mut c_void, spec: StSpec) -> StStatus,
    /// Interleaved f32; never blocks; `*out_frames` is how many frames were taken.
    pub write: extern "C" fn(
        instance: *mut c_void,
        samples: *const f32,
        frames: usize,
        out_frames: *mut usize,
    ) -> StStatus,
    pub query_status: extern "C" fn(instance: *mut c_void, out: *mut StSinkStatus) -> StStatus,
    pub flush: extern "C" fn(instance: *mut c_void) -> StStatus,
    pub reset: extern "C" fn(instance: *mut c_void) -> StStatus,
    pub close: extern "C" fn(instance: *mut c_void) -> StStatus,
    pub destroy: extern "C" fn(instance: *mut c_void),
    /// (ABI 1.2) Bits of [`sink_traits`] that hold for every instance of this type. Exists
    /// only when the module's `abi_minor` is 2 or newer: the host reads it after checking.
    pub traits: u32,
    /// (ABI 1.3) When the consumer behind an open sink takes its next frames. Returns
    /// [`status::OK`] with `period_ns` 0 when the sink does not know. Never blocks. Exists only
    /// when the module's `abi_minor` is [`SCHEDULE_SINCE_ABI_MINOR`] or newer.
    pub query_schedule: extern "C" fn(instance: *mut c_void, out: *mut StSinkSchedule) -> StStatus,
}

/// The first ABI minor whose [`OutputSinkVTable`] has `query_schedule`.
pub const SCHEDULE_SINCE_ABI_MINOR: u32 = 3;

/// When a sink's consumer takes its next frames (ABI 1.3), from the moment of the call.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StSinkSchedule {
    /// Nanoseconds until the next take.
    pub next_take_in_ns: u64,
    /// Nanoseconds between takes; 0 = the sink does not know its consumer's schedule.
    pub period_ns: u64,
}

/// Bits of [`OutputSinkVTable::traits`] (ABI 1.2).
pub mod sink_traits {
    /// The first ABI minor whose [`super::OutputSinkVTable`] has `traits`.
    pub const SINCE_ABI_MINOR: u32 = 2;

    /// `reset` fades out the queued audio it drops where the audio is played (over a few
    /// milliseconds) and fades in what is written after it, as an output with a real queue
    /// (a device ring) does. The host then writes no fade-out of its own after a reset:
    /// written after the drop, it would be audio from ahead of what was heard. Without this
    /// bit the host writes a short fade-out after each reset of a playing stream, which is
    /// right for a sink whose queue is already written out (a file).
    pub const FADES_ON_RESET: u32 = 1 << 0;
}

/// A DSP transform working in place on interleaved f32.
#[repr(C)]
pub struct DspVTable {
    pub create:
        extern "C" fn(config_json: StStr, spec: StSpec, out_instance: *mut *mut c_void) -> StStatus,
    pub process: extern "C" fn(instance: *mut c_void, samples: *mut f32, frames: usize) -> StStatus,
    pub reset: extern "C" fn(instance: *mut c_void) -> StStatus,
    pub destroy: extern "C" fn(instance: *mut c_void),
}

/// What the entry symbol returns. Lives as long as the library is loaded.
#[repr(C)]
pub struct ModuleTable {
    /// `size_of::<ModuleTable>()` as the plugin was built: fields past it do not exist.
    pub size: usize,
    pub abi_major: u32,
    pub abi_minor: u32,
    pub plugin_id: StStr,
    pub plugin_version: StStr,
    pub capabilities: *const Capability,
    pub capability_count: usize,
    pub free_string: extern "C" fn(s: *mut c_char),
    /// Called once before the library is unloaded, after every instance is destroyed:
    /// the plugin stops whatever module-level resources it owns (threads, processes) and
    /// joins every thread the host lent it. The host bounds how long it waits for this call;
    /// a module whose shutdown does not return in time is never unloaded.
    pub shutdown: extern "C" fn() -> StStatus,
}

/// The type of [`ENTRY_SYMBOL`]. Returns NULL if the plugin refuses the host.
pub type PluginEntryFn = unsafe extern "C" fn(host: *const HostVTable) -> *const ModuleTable;

// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Sync for ModuleTable {}
// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Send for ModuleTable {}
// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Sync for Capability {}
// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Send for Capability {}
// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Sync for StStr {}
// SAFETY: the tables hold only immutable data and function pointers; the raw pointers
// point at 'static data in the plugin library, read-only.
unsafe impl Send for StStr {}
