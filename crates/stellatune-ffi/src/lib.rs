//! The C ABI of stellatune: a thin, panic-proof layer over
//! [`RuntimeHost::global`](stellatune_runtime_host::RuntimeHost::global), built as a `cdylib`
//! for Flutter/Dart (`dart:ffi`) and any other C caller, and as an `rlib` for Rust tests.
//!
//! Conventions shared by every function (the header and `docs/ffi.md` repeat them):
//! - The return value is an `int32_t` status: [`STELLATUNE_OK`] or a negative
//!   `STELLATUNE_ERR_*` code. A failed call leaves a message for
//!   [`stellatune_last_error`] on the calling thread; a successful call leaves the previous
//!   message in place (read it only after a failure).
//! - Argument errors (NULL pointers, non-UTF-8 strings, bad JSON) are reported before state
//!   errors (not initialised, unknown client), and name the offending parameter or field.
//! - Output text is UTF-8, NUL-terminated. When it does not fit, the call returns
//!   [`STELLATUNE_ERR_BUFFER_TOO_SMALL`] and sets `*out_len` to the size needed including the
//!   NUL; on success `*out_len` is the length written excluding the NUL.
//! - Nothing panics or aborts across the boundary: a panic is caught and returned as
//!   [`STELLATUNE_ERR_INTERNAL`].
//! - Every call is thread-safe. Client ids are never reused within a process and 0 is never
//!   a valid id.

use std::ffi::{c_char, c_float};
use std::path::Path;
use std::time::Duration;

use stellatune_runtime_host::{HostConfig, OutputRoute, Polled, RuntimeHost};

mod support;

use support::{
    FfiError, FfiResult, TextOut, copy_truncated, ffi_call, non_empty_str_arg, opt_str_arg,
    str_arg, write_out,
};

/// Version of this C ABI. It changes whenever a signature, a code or an event shape changes
/// incompatibly; compare it with `stellatune_abi_version()` at startup.
pub const STELLATUNE_ABI_VERSION: u32 = 1;

/// Success.
pub const STELLATUNE_OK: i32 = 0;
/// A pointer was NULL, a string was not UTF-8, JSON was malformed or named an unknown key, or
/// a value was out of range. The last error names the parameter or field.
pub const STELLATUNE_ERR_INVALID_ARGUMENT: i32 = -1;
/// The runtime is not running: `stellatune_runtime_init` was never called, or
/// `stellatune_runtime_shutdown` was called since.
pub const STELLATUNE_ERR_NOT_INITIALIZED: i32 = -2;
/// The runtime is shutting down on another thread.
pub const STELLATUNE_ERR_SHUTTING_DOWN: i32 = -3;
/// No client with this id was ever created in this process.
pub const STELLATUNE_ERR_UNKNOWN_CLIENT: i32 = -4;
/// The client was disposed with `stellatune_player_dispose_client`.
pub const STELLATUNE_ERR_CLIENT_DISPOSED: i32 = -5;
/// The client was evicted: its lease ran out, `stellatune_runtime_prepare_hot_restart`
/// started a new generation, or the runtime shut down. Create a new client.
pub const STELLATUNE_ERR_CLIENT_EVICTED: i32 = -6;
/// The output buffer is too small; `*out_len` holds the size needed including the NUL.
pub const STELLATUNE_ERR_BUFFER_TOO_SMALL: i32 = -7;
/// The engine did not answer a command in time (5 s), or shutdown did not join every
/// runtime thread within `shutdown_timeout_ms`.
pub const STELLATUNE_ERR_TIMEOUT: i32 = -8;
/// The path names no file, or something that is not a regular file.
pub const STELLATUNE_ERR_NOT_FOUND: i32 = -9;
/// An unsupported audio format or codec, or a feature this build does not have (the plugin
/// functions return it until the plugin runtime exists).
pub const STELLATUNE_ERR_UNSUPPORTED: i32 = -10;
/// The file is in a supported format but cannot be decoded.
pub const STELLATUNE_ERR_DECODE: i32 = -11;
/// Playback needs an output route: call `stellatune_output_route_apply` first.
pub const STELLATUNE_ERR_NO_ROUTE: i32 = -12;
/// The command needs a current track (pause, resume, seek) and nothing is playing.
pub const STELLATUNE_ERR_NOTHING_PLAYING: i32 = -13;
/// Reading a file failed (permissions, I/O error).
pub const STELLATUNE_ERR_IO: i32 = -14;
/// The output sink failed to open or write (device missing, WAV file not writable, or
/// `{"kind":"device"}` in a build without the `device` feature).
pub const STELLATUNE_ERR_SINK: i32 = -15;
/// A bug: an internal invariant failed or a panic was caught. The message says where.
pub const STELLATUNE_ERR_INTERNAL: i32 = -16;
/// No plugin with that id is installed.
pub const STELLATUNE_ERR_UNKNOWN_PLUGIN: i32 = -17;
/// The plugin was built for another plugin ABI (major differs, or minor is newer); the
/// message names both versions.
pub const STELLATUNE_ERR_PLUGIN_ABI: i32 = -18;
/// A plugin could not be installed or loaded (bad plugin.json, missing library or entry
/// symbol, path traversal in an archive), a call into it failed or panicked, or the plugin
/// directory is unusable. The message says which.
pub const STELLATUNE_ERR_PLUGIN: i32 = -19;

fn host() -> &'static RuntimeHost {
    RuntimeHost::global()
}

/// Returns `STELLATUNE_ABI_VERSION` as compiled into the library. Never fails, never blocks,
/// needs no init.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_abi_version() -> u32 {
    STELLATUNE_ABI_VERSION
}

/// Returns the symbolic name of a status code (e.g. `"STELLATUNE_ERR_NOT_FOUND"`), or
/// `"STELLATUNE_ERR_UNKNOWN_CODE"`. The string is static: never free it. Never fails, never
/// blocks, needs no init.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_error_name(code: i32) -> *const c_char {
    support::error_name(code).as_ptr()
}

/// Copies the message of the last failed call on this thread into `buf` (NUL-terminated,
/// UTF-8; empty if no call on this thread has failed yet).
///
/// Successful calls do not clear the message, so read it only right after a call returned a
/// negative code. This function never changes the stored message, even when it fails itself.
///
/// Returns `STELLATUNE_OK`; `STELLATUNE_ERR_BUFFER_TOO_SMALL` when the message was cut to fit
/// (still NUL-terminated, cut at a UTF-8 character boundary); `STELLATUNE_ERR_INVALID_ARGUMENT`
/// when `buf` is NULL or `cap` is 0. Never blocks, needs no init.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_last_error(buf: *mut c_char, cap: usize) -> i32 {
    let copied = std::panic::catch_unwind(|| {
        if buf.is_null() || cap == 0 {
            return STELLATUNE_ERR_INVALID_ARGUMENT;
        }
        // SAFETY: `buf` is not NULL and `cap >= 1` (checked above); the caller guarantees
        // `buf` is valid for `cap` bytes.
        let complete = unsafe { copy_truncated(&support::last_error(), buf, cap) };
        if complete {
            STELLATUNE_OK
        } else {
            STELLATUNE_ERR_BUFFER_TOO_SMALL
        }
    });
    copied.unwrap_or(STELLATUNE_ERR_INTERNAL)
}

/// Starts the process-wide runtime, or does nothing if it runs already (idempotent: call it
/// at every bootstrap, including after a Flutter hot restart). A later call's config is
/// ignored while the runtime runs; shut down first to apply a new one.
///
/// `config_json` is NULL for defaults, or a JSON object whose keys are all optional:
/// `data_dir`, `plugin_dir` (strings), `client_lease_ms` (> 0, default 30000), `log_filter`
/// (e.g. `"info"`), `log_format` (`"text"` or `"json"`), `event_queue_capacity` (> 0, default
/// 256), `shutdown_timeout_ms` (default 5000). Unknown keys are refused.
///
/// Blocks for milliseconds (it starts the runtime threads); if a shutdown is in progress on
/// another thread it first waits for it to finish.
///
/// Errors: `INVALID_ARGUMENT` (non-UTF-8, malformed JSON, unknown key, bad value; the message
/// names the key), `SINK` or `INTERNAL` if a runtime thread cannot start.
///
/// # Safety
/// `config_json` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_runtime_init(config_json: *const c_char) -> i32 {
    ffi_call("stellatune_runtime_init", || {
        // SAFETY: the caller guarantees `config_json` is NULL or NUL-terminated.
        let json = unsafe { opt_str_arg(config_json, "config_json") }?;
        let config = match json {
            Some(json) => HostConfig::from_json(json)?,
            None => HostConfig::default(),
        };
        host().init(config)?;
        Ok(())
    })
}

/// Starts a new client generation for a front end that is about to re-create its clients
/// (Flutter hot restart): every existing client is evicted at once (its calls then return
/// `CLIENT_EVICTED`), playback stops and the output route is cleared. The runtime keeps
/// running; `runtime_host_inits_total` does not change.
///
/// Blocks until the engine has stopped (milliseconds; at most about 10 s if the engine is
/// wedged). Errors: `NOT_INITIALIZED`, `SHUTTING_DOWN`, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_runtime_prepare_hot_restart() -> i32 {
    ffi_call("stellatune_runtime_prepare_hot_restart", || {
        host().prepare_hot_restart()?;
        Ok(())
    })
}

/// Stops playback, evicts every client, joins every runtime thread and returns when they are
/// gone. Without a running runtime it does nothing and returns `STELLATUNE_OK`. After it, every
/// call except init, shutdown, metrics and the error helpers returns `NOT_INITIALIZED`, and
/// `stellatune_runtime_init` starts a fresh runtime.
///
/// Blocks until the threads are joined: milliseconds normally, at most `shutdown_timeout_ms`
/// (+ about 10 s if the engine is wedged). Errors: `TIMEOUT` when threads were still alive at
/// the deadline (the runtime is marked stopped all the same).
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_runtime_shutdown() -> i32 {
    ffi_call("stellatune_runtime_shutdown", || Ok(host().shutdown()?))
}

/// Creates a client session and writes its id to `*out_client` (0 on failure). A client
/// receives every playback event from now on; it must call into the runtime (any call with
/// its id, typically `stellatune_player_poll_event`) at least once per `client_lease_ms`, or it
/// is evicted.
///
/// Never blocks for long (a lock). Errors: `INVALID_ARGUMENT` (`out_client` NULL),
/// `NOT_INITIALIZED`, `SHUTTING_DOWN`.
///
/// # Safety
/// `out_client` must be NULL or valid for writing one `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_create_client(out_client: *mut u64) -> i32 {
    ffi_call("stellatune_player_create_client", || {
        // SAFETY: the caller guarantees `out_client` is NULL or valid for one write.
        unsafe { write_out(out_client, 0, "out_client") }?;
        let session = host().attach_client()?;
        // SAFETY: as above; it was found non-NULL by the first write.
        unsafe { write_out(out_client, session.id, "out_client") }
    })
}

/// Ends a client at its own request: its queued events are freed, and a poll blocked on it
/// returns `CLIENT_DISPOSED`. When the last client goes, playback stops and the route is
/// cleared. Disposing twice returns `CLIENT_DISPOSED`; an evicted client, `CLIENT_EVICTED`.
///
/// Blocks for milliseconds (stopping playback when it was the last client; at most about
/// 10 s if the engine is wedged). Errors: `NOT_INITIALIZED`, `SHUTTING_DOWN`, `UNKNOWN_CLIENT`,
/// `CLIENT_DISPOSED`, `CLIENT_EVICTED`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_dispose_client(client: u64) -> i32 {
    ffi_call("stellatune_player_dispose_client", || {
        Ok(host().detach_client(client)?)
    })
}

/// Opens the file at `path` (UTF-8) and plays it at once, replacing whatever played. The file
/// is opened and probed on the calling thread, so a bad file fails this call.
///
/// Blocks for the file open and probe (file I/O, typically milliseconds) plus the engine's
/// answer (at most 5 s). Errors: `INVALID_ARGUMENT` (`path` NULL or not UTF-8),
/// `NOT_INITIALIZED`, client errors, `NOT_FOUND`, `IO`, `UNSUPPORTED`, `DECODE`, `NO_ROUTE`,
/// `SINK`, `TIMEOUT`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_play(client: u64, path: *const c_char) -> i32 {
    ffi_call("stellatune_player_play", || {
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { str_arg(path, "path") }?;
        host().play(client, Path::new(path))?;
        Ok(())
    })
}

/// Opens the file at `path` and queues it to follow the current track without a gap. There
/// is one slot: a second call replaces the queued track.
///
/// Blocking and errors as for `stellatune_player_play`, plus `NOTHING_PLAYING`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_queue_next(client: u64, path: *const c_char) -> i32 {
    ffi_call("stellatune_player_queue_next", || {
        // SAFETY: the caller guarantees `path` is NULL or NUL-terminated.
        let path = unsafe { str_arg(path, "path") }?;
        host().queue_next(client, Path::new(path))?;
        Ok(())
    })
}

/// Pauses playback. Blocks for the engine's answer (milliseconds, at most 5 s).
/// Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_pause(client: u64) -> i32 {
    ffi_call("stellatune_player_pause", || Ok(host().pause(client)?))
}

/// Resumes paused playback. Blocks for the engine's answer (milliseconds, at most 5 s).
/// Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_resume(client: u64) -> i32 {
    ffi_call("stellatune_player_resume", || Ok(host().resume(client)?))
}

/// Stops playback and forgets the current and queued tracks; the route stays. Blocks for the
/// engine's answer (milliseconds, at most 5 s). Errors: `NOT_INITIALIZED`, client errors,
/// `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_stop(client: u64) -> i32 {
    ffi_call("stellatune_player_stop", || Ok(host().stop(client)?))
}

/// Seeks the current track to `position_ms`. Blocks for the engine's answer (milliseconds,
/// at most 5 s). Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `DECODE`,
/// `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_seek_ms(client: u64, position_ms: u64) -> i32 {
    ffi_call("stellatune_player_seek_ms", || {
        Ok(host().seek_ms(client, position_ms)?)
    })
}

/// Sets the volume as a linear gain from 0.0 to 2.0 (1.0 = unchanged), smoothed over a few
/// milliseconds. Blocks for the engine's answer (milliseconds, at most 5 s). Errors:
/// `INVALID_ARGUMENT` (out of range or NaN), `NOT_INITIALIZED`, client errors, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_player_set_volume(client: u64, volume: c_float) -> i32 {
    ffi_call("stellatune_player_set_volume", || {
        Ok(host().set_volume(client, volume)?)
    })
}

/// Sets the output route from JSON: `{"kind":"null"}` (discard at real-time pace),
/// `{"kind":"wav","path":"/tmp/out.wav","paced":true}` (32-bit float WAV; `paced` defaults to
/// true), `{"kind":"device"}` (default output device; builds with the `device` feature) or
/// `{"kind":"plugin","plugin_id":"asio","sink":"asio","target":"null","config":{...}}` (an
/// installed plugin's output sink; `sink` may be left out when the plugin has one). The route
/// is global: it applies to the one engine every client shares.
///
/// Blocks while the sink instance is made and the engine opens it (milliseconds; a device or a
/// sidecar can take longer, at most 5 s). Errors: `INVALID_ARGUMENT` (NULL, non-UTF-8,
/// malformed JSON, missing or unknown `kind`, unknown or missing field; the message names it),
/// `NOT_INITIALIZED`, `SHUTTING_DOWN`, client errors, `SINK`, `TIMEOUT`, and for plugin
/// routes `UNKNOWN_PLUGIN` (not installed, or uninstalled meanwhile), `PLUGIN` (the plugin
/// refused the sink or its library is gone) and `PLUGIN_ABI`.
///
/// # Safety
/// `route_json` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_output_route_apply(
    client: u64,
    route_json: *const c_char,
) -> i32 {
    ffi_call("stellatune_output_route_apply", || {
        // SAFETY: the caller guarantees `route_json` is NULL or NUL-terminated.
        let json = unsafe { str_arg(route_json, "route_json") }?;
        let route = OutputRoute::from_json(json)?;
        Ok(host().apply_route(client, route)?)
    })
}

/// Clears the output route: playback stops and the sink closes. Blocks for the engine's
/// answer (milliseconds, at most 5 s). Errors: `NOT_INITIALIZED`, client errors, `TIMEOUT`.
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_output_route_clear(client: u64) -> i32 {
    ffi_call("stellatune_output_route_clear", || {
        Ok(host().clear_route(client)?)
    })
}

/// Sets the DSP chain: a JSON array of plugin transforms applied in order between the
/// decoder and the output, e.g. `[{"plugin_id":"eq","type_id":"gain","config":{"gain":0.5}}]`
/// (`type_id` may be left out when the plugin has one DSP type); `[]` removes the chain. A
/// stage that fails while playing is removed with an `error` event; the music goes on.
///
/// Blocks for the engine's answer (milliseconds, at most 5 s). Errors: `INVALID_ARGUMENT`
/// (NULL, non-UTF-8, malformed JSON; the message names the field), `NOT_INITIALIZED`, client
/// errors, `UNKNOWN_PLUGIN`, `PLUGIN`, `TIMEOUT`.
///
/// # Safety
/// `chain_json` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_set_dsp_chain(
    client: u64,
    chain_json: *const c_char,
) -> i32 {
    ffi_call("stellatune_player_set_dsp_chain", || {
        // SAFETY: the caller guarantees `chain_json` is NULL or NUL-terminated.
        let json = unsafe { str_arg(chain_json, "chain_json") }?;
        let chain = stellatune_runtime_host::DspSpec::chain_from_json(json)?;
        Ok(host().set_dsp_chain(client, chain)?)
    })
}

/// Waits up to `timeout_ms` for the client's next event and writes it to `buf` as one JSON
/// object with a `"type"` field (see docs/ffi.md for every type). Renews the client's lease,
/// also while it waits, so a client that keeps polling is never evicted for silence.
///
/// - An event arrived: returns `STELLATUNE_OK`, `*out_len` = its length (excluding the NUL).
/// - No event within `timeout_ms`: returns `STELLATUNE_OK` with `*out_len` = 0 and `buf` = "".
/// - The event does not fit in `cap` bytes: returns `STELLATUNE_ERR_BUFFER_TOO_SMALL` with
///   `*out_len` = the size needed including the NUL; the event stays queued, so the next call
///   with a big enough buffer returns it. `cap` may be 0 to learn the size.
///
/// Blocks at most `timeout_ms` (0 = do not wait). Errors: `INVALID_ARGUMENT` (`buf` or
/// `out_len` NULL), `NOT_INITIALIZED`, `UNKNOWN_CLIENT`, `CLIENT_DISPOSED`, `CLIENT_EVICTED`
/// (also when the client is disposed or evicted while this call waits).
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
/// one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_poll_event(
    client: u64,
    timeout_ms: u32,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_call("stellatune_player_poll_event", || {
        // SAFETY: the caller guarantees `buf` is valid for `cap` bytes and `out_len` for one
        // write, or NULL (which `new` refuses).
        let out = unsafe { TextOut::new(buf, cap, out_len, "buf", "out_len") }?;
        poll_event(client, Duration::from_millis(u64::from(timeout_ms)), &out)
    })
}

fn poll_event(client: u64, timeout: Duration, out: &TextOut) -> FfiResult {
    // The host renews the lease while the poll waits, however long `timeout` is.
    let polled = host().poll_event_with(client, timeout, |event| {
        let json = event.to_json();
        let fits = out.fits(&json);
        (json, fits)
    })?;
    match polled {
        // A declined event did not fit: `write` reports the size it needs.
        Polled::Taken(json) | Polled::Declined(json) => out.write(&json),
        Polled::TimedOut => Ok(()),
        Polled::Closed(why) => Err(FfiError::new(
            STELLATUNE_ERR_CLIENT_EVICTED,
            format!("client {client} closed while polling: {why:?}"),
        )),
    }
}

/// Writes a JSON snapshot of the engine as this client sees it: `{"state":"playing",
/// "track_id":1,"track":{...}|null,"position_ms":0,"volume":1.0,"route":"null"|null,
/// "output_spec":{"sample_rate":44100,"channels":2}|null,"queued_next":null,
/// "frames_written":0}`. Renews the lease.
///
/// Blocks for the engine's answer (milliseconds, at most 5 s). Errors: `INVALID_ARGUMENT`,
/// `BUFFER_TOO_SMALL` (`*out_len` = size needed), `NOT_INITIALIZED`, client errors, `TIMEOUT`.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
/// one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_player_status_json(
    client: u64,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_call("stellatune_player_status_json", || {
        // SAFETY: the caller guarantees `buf` is valid for `cap` bytes and `out_len` for one
        // write, or NULL (which `new` refuses).
        let out = unsafe { TextOut::new(buf, cap, out_len, "buf", "out_len") }?;
        let status = host().status(client)?;
        let json = serde_json::to_string(&status).map_err(|e| {
            FfiError::new(
                STELLATUNE_ERR_INTERNAL,
                format!("status not serialisable: {e}"),
            )
        })?;
        out.write(&json)
    })
}

/// Installs a plugin from a directory (holding `plugin.json` and the library) or a `.zip` of
/// one into `<data_dir>/plugins/<id>/`, loads it as a new generation and writes its id
/// (NUL-terminated) into `out_id`. Replacing an installed plugin drains the old generation;
/// a route playing through it moves to the new one.
///
/// Blocks for the copy and the load (milliseconds for a small plugin). Errors:
/// `INVALID_ARGUMENT` (NULL, non-UTF-8 or empty `artifact_path`, NULL `out_id`, `cap` 0),
/// `NOT_INITIALIZED`, `PLUGIN` (not a plugin, bad plugin.json, traversal in an archive,
/// load failure), `PLUGIN_ABI`, `BUFFER_TOO_SMALL` (installed, but the id did not fit: the id
/// is in `stellatune_plugins_list_json`).
///
/// # Safety
/// `artifact_path` must be NULL or NUL-terminated; `out_id` NULL or valid for `cap` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_plugins_install(
    artifact_path: *const c_char,
    out_id: *mut c_char,
    cap: usize,
) -> i32 {
    ffi_call("stellatune_plugins_install", || {
        // SAFETY: the caller guarantees `artifact_path` is NULL or NUL-terminated.
        let path = unsafe { non_empty_str_arg(artifact_path, "artifact_path") }?;
        if out_id.is_null() {
            return Err(FfiError::invalid("`out_id` is NULL"));
        }
        if cap == 0 {
            return Err(FfiError::invalid("`cap` is 0"));
        }
        // SAFETY: `out_id` is not NULL and `cap >= 1` (checked above); the caller guarantees
        // it is valid for `cap` bytes.
        unsafe { out_id.write(0) };
        let id = host().plugins_install(std::path::Path::new(path))?;
        // SAFETY: as above: valid for `cap` bytes.
        if unsafe { copy_truncated(&id, out_id, cap) } {
            Ok(())
        } else {
            Err(FfiError::new(
                STELLATUNE_ERR_BUFFER_TOO_SMALL,
                format!(
                    "plugin `{id}` installed, but its id needs {} bytes",
                    id.len() + 1
                ),
            ))
        }
    })
}

/// Uninstalls the plugin `plugin_id`: its files are removed and its generation drains. A
/// route playing through it keeps playing until cleared; then the generation unloads.
///
/// Blocks for the file removal. Errors: `INVALID_ARGUMENT` (NULL, non-UTF-8 or empty id),
/// `NOT_INITIALIZED`, `UNKNOWN_PLUGIN`, `PLUGIN`.
///
/// # Safety
/// `plugin_id` must be NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_plugins_uninstall(plugin_id: *const c_char) -> i32 {
    ffi_call("stellatune_plugins_uninstall", || {
        // SAFETY: the caller guarantees `plugin_id` is NULL or NUL-terminated.
        let id = unsafe { non_empty_str_arg(plugin_id, "plugin_id") }?;
        Ok(host().plugins_uninstall(id)?)
    })
}

/// Re-reads the plugin directory: new plugins load, changed ones (by content) get a new
/// generation and a route through them moves over, unchanged ones are left alone, removed
/// ones drain. Per-plugin failures do not fail the call: they are reported in a
/// `plugins_reloaded` event and in `stellatune_plugins_list_json` (`load_error`).
///
/// Blocks for the loads. Errors: `NOT_INITIALIZED`, `PLUGIN` (plugin directory unusable).
#[unsafe(no_mangle)]
pub extern "C" fn stellatune_plugins_reload() -> i32 {
    ffi_call("stellatune_plugins_reload", || {
        host().plugins_reload()?;
        Ok(())
    })
}

/// Writes the installed plugins as a JSON array of `{"id", "name", "version",
/// "api_version", "generation", "capabilities": [{"kind", "type_id", "display_name",
/// "default_config"}], "load_error"}`.
///
/// Never blocks for long. Errors: `INVALID_ARGUMENT` (`buf` or `out_len` NULL),
/// `BUFFER_TOO_SMALL` (`*out_len` = size needed), `NOT_INITIALIZED`, `PLUGIN`.
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
/// one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_plugins_list_json(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_call("stellatune_plugins_list_json", || {
        // SAFETY: the caller guarantees `buf` is valid for `cap` bytes and `out_len` for one
        // write, or NULL (which `new` refuses).
        let out = unsafe { TextOut::new(buf, cap, out_len, "buf", "out_len") }?;
        let list = host().plugins_list()?;
        let json = serde_json::to_string(&list)
            .map_err(|e| FfiError::new(STELLATUNE_ERR_INTERNAL, e.to_string()))?;
        out.write(&json)
    })
}

/// Writes the runtime's counters as one JSON object: `state` ("uninit", "running",
/// "shutting_down", "stopped"), `runtime_host_inits_total`, `player_clients_active`,
/// `client_generation`, `clients_evicted_total`, `client_events_queued`, `runtime_threads`,
/// `plugin_generations_active`, `plugin_generations_draining`, `asio_sidecar_spawns_total`,
/// `asio_sidecar_running`, `ring_files`.
///
/// Works in every state, including before init and after shutdown (so a caller can check that
/// shutdown left no thread behind). Never blocks for long (a few locks). Errors:
/// `INVALID_ARGUMENT` (`buf` or `out_len` NULL), `BUFFER_TOO_SMALL` (`*out_len` = size needed).
///
/// # Safety
/// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
/// one `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn stellatune_runtime_metrics_json(
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> i32 {
    ffi_call("stellatune_runtime_metrics_json", || {
        // SAFETY: the caller guarantees `buf` is valid for `cap` bytes and `out_len` for one
        // write, or NULL (which `new` refuses).
        let out = unsafe { TextOut::new(buf, cap, out_len, "buf", "out_len") }?;
        out.write(&host().metrics().to_json())
    })
}
