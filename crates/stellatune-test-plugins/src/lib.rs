//! Real plugins for host tests, built with `stellatune-plugin-sdk` into one module,
//! `test-plugins`:
//!
//! * DSP `gain`: config `{"gain": f32}` (default 1.0) multiplies every sample.
//! * Output sink `capture`: the target is a file path. Every frame written is appended to
//!   it as little-endian f32 samples, unpaced (it takes everything) unless the config says
//!   `{"realtime_buffer_ms": N}`: then it takes frames in real time, like a device with an
//!   N ms buffer, and reports the rest as queued. Each lifecycle call
//!   (`open`, `flush`, `reset`, `close`, `destroy`; not `write`) is appended as one line to
//!   `<target>.calls`. Adds +1 to the metric `test_capture_open` on open, -1 on close, and
//!   emits a `capture_open` event.
//! * Output sink `capture_fading`: `capture`, but its type declares the sink trait
//!   `FADES_ON_RESET` (ABI 1.2), so the engine writes no fade-out of its own after a reset.
//! * Output sink `misbehave`: config
//!   `{"panic_in": [...], "error_in": [...], "hang_in_open_ms": u64, "hang_in_close_ms": u64,
//!   "threads": u32, "unjoined_thread_ms": u64, "hang_in_shutdown_ms": u64}` (all
//!   optional), with entry point names `create`, `list_targets`, `negotiate`, `open`,
//!   `write`, `status`, `flush`, `reset`, `close`, `destroy`: panics (or returns an error)
//!   in the named entry points and sleeps in `open` and `close`. Otherwise it takes every
//!   frame at once. `threads`: `create` starts that many threads through
//!   `rt::spawn_thread` (lent by the host), joined when the instance is destroyed.
//!   `unjoined_thread_ms`: `create` starts one more that sleeps that long and is never
//!   joined, for the host's unload to wait for. `hang_in_shutdown_ms`: the module's
//!   shutdown sleeps that long (from then on, in this generation).
//!
//! Test hooks read from the environment at the time of the call:
//!
//! * `STELLATUNE_TEST_PLUGIN_ABI_MAJOR=<n>` when the entry is called: the module table
//!   reports ABI major `n`, so a host can test its refusal.
//! * `STELLATUNE_TEST_PLUGIN_ABI_MINOR=<n>` when the entry is called: the module table
//!   reports ABI minor `n`, so a host can be tested with a module of an older minor.
//! * `STELLATUNE_TEST_PLUGIN_SHUTDOWN_PANIC=1` when `shutdown` is called: it panics.
//!
//! `plugin.json` beside this crate is the manifest template. Its `library` names the Linux
//! file, `libstellatune_test_plugins.so`; the same build is `libstellatune_test_plugins.dylib`
//! on macOS and `stellatune_test_plugins.dll` on Windows.

mod capture;
mod gain;
mod misbehave;

use stellatune_plugin_sdk::log_level;

stellatune_plugin_sdk::export_plugin! {
    id: "test-plugins",
    version: "0.1.0",
    sinks: [
        capture::CaptureSinkType,
        capture::FadingCaptureSinkType,
        misbehave::MisbehaveSinkType
    ],
    dsps: [gain::GainType],
    shutdown: shutdown,
    abi_major_override: abi_major_override,
    abi_minor_override: abi_minor_override,
}

/// The environment variable that makes the module table report another ABI major.
const ABI_MAJOR_ENV: &str = "STELLATUNE_TEST_PLUGIN_ABI_MAJOR";
/// The environment variable that makes the module table report another ABI minor.
const ABI_MINOR_ENV: &str = "STELLATUNE_TEST_PLUGIN_ABI_MINOR";
/// The environment variable that makes `shutdown` panic.
const SHUTDOWN_PANIC_ENV: &str = "STELLATUNE_TEST_PLUGIN_SHUTDOWN_PANIC";

fn abi_major_override() -> Option<u32> {
    std::env::var(ABI_MAJOR_ENV).ok()?.trim().parse().ok()
}

fn abi_minor_override() -> Option<u32> {
    std::env::var(ABI_MINOR_ENV).ok()?.trim().parse().ok()
}

fn shutdown() {
    misbehave::hang_in_shutdown();
    if std::env::var(SHUTDOWN_PANIC_ENV).is_ok_and(|v| v == "1") {
        panic!("test-plugins: panic in shutdown ({SHUTDOWN_PANIC_ENV}=1)");
    }
    stellatune_plugin_sdk::log(log_level::INFO, "test-plugins: shutdown");
}
