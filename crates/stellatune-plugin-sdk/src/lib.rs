//! Safe Rust traits over the StellaTune plugin ABI ([`stellatune_plugin_api`]) and the
//! [`export_plugin!`] macro that turns them into a loadable module.
//!
//! A plugin author implements [`OutputSinkType`] / [`OutputSink`] and [`DspType`] / [`Dsp`]
//! and lists the types in one `export_plugin!` invocation in a `cdylib` crate:
//!
//! ```ignore
//! stellatune_plugin_sdk::export_plugin! {
//!     id: "my-plugin",
//!     version: "0.1.0",
//!     sinks: [MySinkType],
//!     dsps: [GainType],
//!     shutdown: my_shutdown,            // optional: fn() or fn() -> sdk::Result<()>
//!     abi_major_override: test_hook,    // optional, for tests: fn() -> Option<u32>
//!     abi_minor_override: test_hook2,   // optional, for tests: fn() -> Option<u32>
//! }
//! ```
//!
//! The macro emits the exported `stellatune_plugin_entry` symbol, a static capability
//! array and one vtable per listed type. Every call from the host goes through a shim that
//!
//! * catches panics (`catch_unwind`) and reports them as [`status::PANICKED`] with the panic
//!   message: nothing unwinds across the C boundary;
//! * rejects NULL instances and out-parameters with [`status::INVALID_ARGUMENT`];
//! * enforces the sink lifecycle: `write`, `flush`, `reset` and `query_status` need an
//!   open instance ([`status::BAD_STATE`] otherwise); `close` on an instance that is not
//!   open is a no-op; `open` on an open instance closes it first; `destroy` closes an open
//!   instance before dropping it (if the host skipped `close`) and frees it exactly once;
//! * hands messages out as `CString::into_raw`, released by the module's `free_string`.
//!
//! An empty config string (`""` or only whitespace) is replaced by the type's
//! `DEFAULT_CONFIG` before it reaches `create` / `list_targets`.
//!
//! A sink type's `TRAITS` fill its vtable's `traits` (ABI 1.2): set
//! [`sink_traits::FADES_ON_RESET`] when the sink's `reset` fades out the queued audio it
//! drops where it is played and fades in what follows (a device ring), so that the engine
//! writes no fade-out of its own after a reset.
//!
//! The host's callbacks are reachable through [`log`], [`emit_event`] and [`metric_add`]
//! once the host has called the entry; before that (e.g. in a plugin's own unit tests) they
//! do nothing. The SDK keeps the host pointer in an `AtomicPtr` and uses no `thread_local!`,
//! so it registers no TLS destructors that could keep the library from unloading.
//!
//! # Rules for plugin code: threads, channels and thread-locals
//!
//! A plugin library carries its own copy of the Rust standard library, and the host
//! loads, unloads and reloads it many times in one process. What that copy's std allocates
//! per process (a pthread key for its thread bookkeeping, a TLS destructor) is never given
//! back when the library unloads: a leaked key per generation aborts the process after
//! about a thousand reloads (`fatal runtime error: out of TLS keys`), and a destructor
//! either pins the library or runs after it is gone. So, in plugin code:
//!
//! * **no `std::thread::spawn` / `std::thread::Builder`**: use [`rt::spawn_thread`], which
//!   borrows a thread from the host (ABI 1.1), and [`rt::Thread::join`] it before the
//!   module's shutdown returns;
//! * **no `std::process::Command::spawn` from arbitrary threads** when the child relies on
//!   a parent-death signal: use [`rt::spawn_process`], or [`rt::spawn_contained`], which also
//!   ties the child's life to the host process (a Job Object on Windows);
//! * **no channels** (`std::sync::mpsc`, crossbeam): they register thread-local
//!   destructors; use [`rt::OneShot`] and [`rt::Queue`] (a mutex and a condvar);
//! * **no `thread_local!` whose type has a destructor** (`Drop`, or containing a `Vec`,
//!   `String`, `Arc`...): keep state in statics behind a `Mutex`;
//! * **no `std::thread::current()`** (nor `thread::park`, nor anything naming the current
//!   thread): on a host thread it makes the plugin's std register its thread handle.
//!
//! `std::thread::sleep`, `Mutex`, `Condvar`, atomics, `Instant` and catching panics are fine.
//! The shutdown `export_plugin!` generates runs the plugin's own shutdown fn and then
//! [`rt::stop`].

#[doc(hidden)]
pub mod __private;
mod host;
pub mod rt;
#[cfg(test)]
mod tests;

use std::fmt;

pub use host::{data_dir, emit_event, log, metric_add, plugin_dir};
/// The raw ABI this SDK targets.
pub use stellatune_plugin_api as api;
pub use stellatune_plugin_api::{log_level, sink_traits, status};

/// A stream format: interleaved f32 at `sample_rate` with `channels` channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Spec {
    pub sample_rate: u32,
    pub channels: u16,
}

impl From<api::StSpec> for Spec {
    fn from(s: api::StSpec) -> Self {
        Spec {
            sample_rate: s.sample_rate,
            channels: s.channels,
        }
    }
}

impl From<Spec> for api::StSpec {
    fn from(s: Spec) -> Self {
        api::StSpec {
            sample_rate: s.sample_rate,
            channels: s.channels,
        }
    }
}

/// What a sink reports about its queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkStatus {
    /// Frames accepted but not yet heard.
    pub queued_frames: u64,
    /// Times the sink ran dry while playing.
    pub underruns: u64,
}

impl From<SinkStatus> for api::StSinkStatus {
    fn from(s: SinkStatus) -> Self {
        api::StSinkStatus {
            queued_frames: s.queued_frames,
            underruns: s.underruns,
        }
    }
}

/// When the consumer behind a sink takes its next frames ([`OutputSink::schedule`], ABI 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkSchedule {
    /// From now until the next take.
    pub next_take_in: std::time::Duration,
    /// Between takes (non-zero).
    pub period: std::time::Duration,
}

impl SinkSchedule {
    /// The ABI's form of a schedule or of none (`period_ns` 0).
    pub(crate) fn to_abi(schedule: Option<SinkSchedule>) -> api::StSinkSchedule {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        match schedule {
            Some(s) if !s.period.is_zero() => api::StSinkSchedule {
                next_take_in_ns: ns(s.next_take_in),
                period_ns: ns(s.period),
            },
            _ => api::StSinkSchedule::default(),
        }
    }
}

/// One place a sink type can play to, as listed by [`OutputSinkType::list_targets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Passed back verbatim to [`OutputSinkType::create`].
    pub id: String,
    /// For people.
    pub name: String,
}

impl Target {
    pub fn new(id: impl Into<String>, name: impl Into<String>) -> Self {
        Target {
            id: id.into(),
            name: name.into(),
        }
    }
}

/// What a plugin returns to the host when a call fails: an ABI [`status`] code and a
/// message. The constructors name the codes ([`Error::invalid_argument`] is
/// [`status::INVALID_ARGUMENT`], and so on); the shims hand both to the host, which turns them
/// into its own error (the plugin host's `PluginError`, a different type on the other side of
/// the ABI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// One of [`status`]'s codes; never [`status::OK`] (the shims turn 0 into
    /// [`status::ERROR`]).
    pub code: i32,
    pub message: String,
}

impl Error {
    /// A status code of the caller's choosing, e.g. one added by a later ABI minor.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }

    /// [`status::ERROR`]: a failure no more specific code names.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(status::ERROR, message)
    }

    /// [`status::INVALID_ARGUMENT`]
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(status::INVALID_ARGUMENT, message)
    }

    /// [`status::UNSUPPORTED`]
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(status::UNSUPPORTED, message)
    }

    /// [`status::BAD_STATE`]
    pub fn bad_state(message: impl Into<String>) -> Self {
        Self::new(status::BAD_STATE, message)
    }

    /// [`status::IO`]
    pub fn io(message: impl Into<String>) -> Self {
        Self::new(status::IO, message)
    }

    /// [`status::DISCONNECTED`]
    pub fn disconnected(message: impl Into<String>) -> Self {
        Self::new(status::DISCONNECTED, message)
    }

    /// [`status::PANICKED`]
    pub fn panicked(message: impl Into<String>) -> Self {
        Self::new(status::PANICKED, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io(e.to_string())
    }
}

/// The result of every fallible plugin call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A live output sink instance. The host calls one method at a time, possibly from
/// different threads over the instance's life (hence `Send`).
pub trait OutputSink: Send + 'static {
    /// The spec this sink will take, given the spec the music has.
    fn negotiate(&mut self, preferred: Spec) -> Result<Spec> {
        Ok(preferred)
    }

    /// Starts the sink with `spec` (channels and rate are non-zero).
    fn open(&mut self, spec: Spec) -> Result<()>;

    /// Takes up to `interleaved.len() / channels` frames and returns how many it took.
    /// Never blocks: a paced sink takes fewer frames when its buffer is full. Only called
    /// while open, with a whole number of frames.
    fn write(&mut self, interleaved: &[f32]) -> Result<usize>;

    fn status(&self) -> SinkStatus {
        SinkStatus::default()
    }

    /// When the consumer behind this sink (a device, another process reading a ring) takes its
    /// next frames, if the sink knows: the host then refills just after a take. Never blocks.
    fn schedule(&self) -> Option<SinkSchedule> {
        None
    }

    /// Pushes buffered output towards the medium.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Drops queued audio at once; the sink stays open and usable.
    fn reset(&mut self) -> Result<()>;

    /// Releases every external resource; `open` may follow. Only called while open.
    fn close(&mut self) -> Result<()>;
}

/// An output sink type: what a module lists as an [`api::capability_kind::OUTPUT_SINK`].
pub trait OutputSinkType: 'static {
    /// Unique within the module, e.g. `asio`.
    const TYPE_ID: &'static str;
    const DISPLAY_NAME: &'static str;
    /// JSON schema of the config, or empty.
    const CONFIG_SCHEMA: &'static str = "";
    /// The config used when the host passes none.
    const DEFAULT_CONFIG: &'static str = "{}";
    /// Bits of [`api::sink_traits`] that hold for every instance, e.g.
    /// [`api::sink_traits::FADES_ON_RESET`] for a sink whose `reset` fades out the audio it
    /// drops where it is played. None by default.
    const TRAITS: u32 = 0;

    type Instance: OutputSink;

    fn list_targets(config_json: &str) -> Result<Vec<Target>>;

    fn create(config_json: &str, target: &str) -> Result<Self::Instance>;
}

/// A live DSP instance: transforms interleaved f32 in place.
pub trait Dsp: Send + 'static {
    /// `interleaved` holds a whole number of frames in the spec given to `create`.
    fn process(&mut self, interleaved: &mut [f32]) -> Result<()>;

    /// Forgets any state carried between blocks (filters, delay lines).
    fn reset(&mut self) -> Result<()>;
}

/// A DSP type: what a module lists as an [`api::capability_kind::DSP`].
pub trait DspType: 'static {
    const TYPE_ID: &'static str;
    const DISPLAY_NAME: &'static str;
    const CONFIG_SCHEMA: &'static str = "";
    const DEFAULT_CONFIG: &'static str = "{}";

    type Instance: Dsp;

    /// `spec` has non-zero channels and rate.
    fn create(config_json: &str, spec: Spec) -> Result<Self::Instance>;
}

/// Exports a plugin module: the `stellatune_plugin_entry` symbol, the capability array and
/// the vtables of the listed types. Use it once, in a `cdylib` crate.
///
/// ```ignore
/// stellatune_plugin_sdk::export_plugin! {
///     id: "test",                      // &'static str
///     version: "0.1.0",                // &'static str
///     sinks: [CaptureSinkType],        // optional, types implementing OutputSinkType
///     dsps: [GainType],                // optional, types implementing DspType
///     shutdown: my_shutdown,           // optional: fn() or fn() -> Result<()>
///     abi_major_override: my_override, // optional: fn() -> Option<u32> (tests only)
///     abi_minor_override: my_minor,    // optional: fn() -> Option<u32> (tests only)
/// }
/// ```
///
/// The keys go in this order. `shutdown` runs (panic-guarded) when the host calls the
/// module's `shutdown`, followed by [`rt::stop`] (also when there is no `shutdown` key).
/// `abi_major_override` is a test hook: when it returns `Some(m)` on an
/// entry call, the returned module table reports ABI major `m`, so a host can exercise its
/// refusal path. `abi_minor_override` likewise makes it report ABI minor `n`, so a host can
/// be tested with what looks like a module built for an older minor (the fields that minor
/// lacks are still there; a correct host does not read them).
#[macro_export]
macro_rules! export_plugin {
    (
        id: $id:expr,
        version: $version:expr
        $(, sinks: [$($sink:ty),* $(,)?])?
        $(, dsps: [$($dsp:ty),* $(,)?])?
        $(, shutdown: $shutdown:path)?
        $(, abi_major_override: $abi_major_override:path)?
        $(, abi_minor_override: $abi_minor_override:path)?
        $(,)?
    ) => {
        /// The plugin's entry point (`stellatune_plugin_api::ENTRY_SYMBOL`).
        ///
        /// # Safety
        /// `host` must be NULL or point at a `HostVTable` that stays valid until the library
        /// is unloaded.
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn stellatune_plugin_entry(
            host: *const $crate::api::HostVTable,
        ) -> *const $crate::api::ModuleTable {
            static __STELLATUNE_CAPABILITIES: &[$crate::api::Capability] = &[
                $($($crate::__private::sink_capability::<$sink>(),)*)?
                $($($crate::__private::dsp_capability::<$dsp>(),)*)?
            ];

            extern "C" fn __stellatune_shutdown() -> $crate::api::StStatus {
                $crate::__private::run_shutdown($crate::__export_plugin_shutdown!($($shutdown)?))
            }

            static __STELLATUNE_MODULE: $crate::api::ModuleTable = $crate::__private::module_table(
                $id,
                $version,
                __STELLATUNE_CAPABILITIES,
                __stellatune_shutdown,
            );

            // SAFETY: forwarded from this function's contract: `host` is NULL or valid
            // until the library is unloaded.
            unsafe {
                $crate::__private::entry(
                    host,
                    &__STELLATUNE_MODULE,
                    $crate::__export_plugin_override!($($abi_major_override)?),
                    $crate::__export_plugin_override!($($abi_minor_override)?),
                )
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_shutdown {
    () => {
        ::core::option::Option::None
    };
    ($f:path) => {
        ::core::option::Option::Some(
            (|| $crate::__private::IntoPluginResult::into_plugin_result($f()))
                as fn() -> $crate::Result<()>,
        )
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_override {
    () => {
        ::core::option::Option::None
    };
    ($f:path) => {
        ::core::option::Option::Some($f as fn() -> ::core::option::Option<u32>)
    };
}
