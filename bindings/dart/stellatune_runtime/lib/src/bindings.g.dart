// GENERATED CODE - DO NOT MODIFY BY HAND.
//
// Generated from crates/stellatune-ffi/include/stellatune.h by
//   cargo run -p stellatune-dart-bindgen
// crates/stellatune-dart-bindgen/tests/bindings.rs fails when this file is out of date.

// ignore_for_file: type=lint

import 'dart:ffi';

import 'package:ffi/ffi.dart';

// Constants (`#define`s).

/// Version of this C ABI. It changes whenever a signature, a code or an event shape changes
/// incompatibly; compare it with `stellatune_abi_version()` at startup.
///
/// `STELLATUNE_ABI_VERSION` in the C header.
const int stellatuneAbiVersion = 1;

/// Success.
///
/// `STELLATUNE_OK` in the C header.
const int stellatuneOk = 0;

/// A pointer was NULL, a string was not UTF-8, JSON was malformed or named an unknown key, or
/// a value was out of range; also an output that refuses its configuration (such as
/// `{"kind":"device"}` in a build without the `device` feature). The last error names the
/// parameter or field.
///
/// What to do: a bug in the caller: log the last error.
///
/// `STELLATUNE_ERR_INVALID_ARGUMENT` in the C header.
const int stellatuneErrInvalidArgument = -1;

/// The runtime is not running: `stellatune_runtime_init` was never called, or
/// `stellatune_runtime_shutdown` was called since.
///
/// What to do: call init.
///
/// `STELLATUNE_ERR_NOT_INITIALIZED` in the C header.
const int stellatuneErrNotInitialized = -2;

/// The runtime is shutting down on another thread.
///
/// What to do: stop using the runtime.
///
/// `STELLATUNE_ERR_SHUTTING_DOWN` in the C header.
const int stellatuneErrShuttingDown = -3;

/// No client with this id was ever created in this process.
///
/// What to do: a bug in the caller.
///
/// `STELLATUNE_ERR_UNKNOWN_CLIENT` in the C header.
const int stellatuneErrUnknownClient = -4;

/// The client was disposed with `stellatune_player_dispose_client`.
///
/// What to do: stop using the id.
///
/// `STELLATUNE_ERR_CLIENT_DISPOSED` in the C header.
const int stellatuneErrClientDisposed = -5;

/// The client was evicted: its lease ran out, `stellatune_runtime_prepare_hot_restart`
/// started a new generation, or the runtime shut down. Create a new client.
///
/// What to do: create a new client (the last error says why it was evicted).
///
/// `STELLATUNE_ERR_CLIENT_EVICTED` in the C header.
const int stellatuneErrClientEvicted = -6;

/// The output buffer is too small; `*out_len` holds the size needed including the NUL.
///
/// What to do: grow the buffer and call again.
///
/// `STELLATUNE_ERR_BUFFER_TOO_SMALL` in the C header.
const int stellatuneErrBufferTooSmall = -7;

/// The engine did not answer a command in time (5 s), shutdown did not join every
/// runtime thread within `shutdown_timeout_ms`, or a plugin call hung and was abandoned.
///
/// What to do: report; retrying rarely helps.
///
/// `STELLATUNE_ERR_TIMEOUT` in the C header.
const int stellatuneErrTimeout = -8;

/// The path names no file, or something that is not a regular file; or
/// (`stellatune_media_cover`) the file has no embedded picture.
///
/// What to do: tell the user.
///
/// `STELLATUNE_ERR_NOT_FOUND` in the C header.
const int stellatuneErrNotFound = -9;

/// An unsupported audio format or codec, or a feature this build does not have.
///
/// What to do: tell the user.
///
/// `STELLATUNE_ERR_UNSUPPORTED` in the C header.
const int stellatuneErrUnsupported = -10;

/// The file is in a supported format but cannot be decoded.
///
/// What to do: tell the user.
///
/// `STELLATUNE_ERR_DECODE` in the C header.
const int stellatuneErrDecode = -11;

/// Playback needs an output route: call `stellatune_output_route_apply` first.
///
/// What to do: apply a route first.
///
/// `STELLATUNE_ERR_NO_ROUTE` in the C header.
const int stellatuneErrNoRoute = -12;

/// The command needs a current track (pause, resume, seek, queue_next) and nothing is
/// playing.
///
/// What to do: ignore, or update the UI.
///
/// `STELLATUNE_ERR_NOTHING_PLAYING` in the C header.
const int stellatuneErrNothingPlaying = -13;

/// Reading a file failed (permissions, I/O error).
///
/// What to do: tell the user.
///
/// `STELLATUNE_ERR_IO` in the C header.
const int stellatuneErrIo = -14;

/// The output failed to open or write: no device, the device went away, the WAV file is
/// not writable.
///
/// What to do: pick another route.
///
/// `STELLATUNE_ERR_SINK` in the C header.
const int stellatuneErrSink = -15;

/// A bug: an internal invariant failed or a panic was caught. The message says where.
///
/// What to do: report it with the last error.
///
/// `STELLATUNE_ERR_INTERNAL` in the C header.
const int stellatuneErrInternal = -16;

/// No plugin with that id is installed.
///
/// What to do: refresh the plugin list.
///
/// `STELLATUNE_ERR_UNKNOWN_PLUGIN` in the C header.
const int stellatuneErrUnknownPlugin = -17;

/// The plugin was built for another plugin ABI (major differs, or minor is newer); the
/// message names both versions.
///
/// What to do: install a build of the plugin for this version.
///
/// `STELLATUNE_ERR_PLUGIN_ABI` in the C header.
const int stellatuneErrPluginAbi = -18;

/// A plugin could not be installed or loaded (bad plugin.json, missing library or entry
/// symbol, path traversal in an archive), a call into it failed or panicked (an output
/// sink or a DSP stage alike, at creation, open or while playing), or the plugin
/// directory is unusable. The message says which.
///
/// What to do: tell the user which plugin failed; another route or chain works.
///
/// `STELLATUNE_ERR_PLUGIN` in the C header.
const int stellatuneErrPlugin = -19;

// Function signatures.

/// Native signature of `stellatune_abi_version`.
typedef StellatuneAbiVersionNative = Uint32 Function();
/// Dart signature of `stellatune_abi_version`.
typedef StellatuneAbiVersionDart = int Function();

/// Native signature of `stellatune_error_name`.
typedef StellatuneErrorNameNative = Pointer<Utf8> Function(Int32 code);
/// Dart signature of `stellatune_error_name`.
typedef StellatuneErrorNameDart = Pointer<Utf8> Function(int code);

/// Native signature of `stellatune_last_error`.
typedef StellatuneLastErrorNative = Int32 Function(Pointer<Utf8> buf, Size cap);
/// Dart signature of `stellatune_last_error`.
typedef StellatuneLastErrorDart = int Function(Pointer<Utf8> buf, int cap);

/// Native signature of `stellatune_runtime_init`.
typedef StellatuneRuntimeInitNative = Int32 Function(Pointer<Utf8> configJson);
/// Dart signature of `stellatune_runtime_init`.
typedef StellatuneRuntimeInitDart = int Function(Pointer<Utf8> configJson);

/// Native signature of `stellatune_runtime_prepare_hot_restart`.
typedef StellatuneRuntimePrepareHotRestartNative = Int32 Function();
/// Dart signature of `stellatune_runtime_prepare_hot_restart`.
typedef StellatuneRuntimePrepareHotRestartDart = int Function();

/// Native signature of `stellatune_runtime_shutdown`.
typedef StellatuneRuntimeShutdownNative = Int32 Function();
/// Dart signature of `stellatune_runtime_shutdown`.
typedef StellatuneRuntimeShutdownDart = int Function();

/// Native signature of `stellatune_player_create_client`.
typedef StellatunePlayerCreateClientNative = Int32 Function(Pointer<Uint64> outClient);
/// Dart signature of `stellatune_player_create_client`.
typedef StellatunePlayerCreateClientDart = int Function(Pointer<Uint64> outClient);

/// Native signature of `stellatune_player_dispose_client`.
typedef StellatunePlayerDisposeClientNative = Int32 Function(Uint64 client);
/// Dart signature of `stellatune_player_dispose_client`.
typedef StellatunePlayerDisposeClientDart = int Function(int client);

/// Native signature of `stellatune_player_play`.
typedef StellatunePlayerPlayNative = Int32 Function(Uint64 client, Pointer<Utf8> path);
/// Dart signature of `stellatune_player_play`.
typedef StellatunePlayerPlayDart = int Function(int client, Pointer<Utf8> path);

/// Native signature of `stellatune_player_queue_next`.
typedef StellatunePlayerQueueNextNative = Int32 Function(Uint64 client, Pointer<Utf8> path);
/// Dart signature of `stellatune_player_queue_next`.
typedef StellatunePlayerQueueNextDart = int Function(int client, Pointer<Utf8> path);

/// Native signature of `stellatune_player_pause`.
typedef StellatunePlayerPauseNative = Int32 Function(Uint64 client);
/// Dart signature of `stellatune_player_pause`.
typedef StellatunePlayerPauseDart = int Function(int client);

/// Native signature of `stellatune_player_resume`.
typedef StellatunePlayerResumeNative = Int32 Function(Uint64 client);
/// Dart signature of `stellatune_player_resume`.
typedef StellatunePlayerResumeDart = int Function(int client);

/// Native signature of `stellatune_player_stop`.
typedef StellatunePlayerStopNative = Int32 Function(Uint64 client);
/// Dart signature of `stellatune_player_stop`.
typedef StellatunePlayerStopDart = int Function(int client);

/// Native signature of `stellatune_player_seek_ms`.
typedef StellatunePlayerSeekMsNative = Int32 Function(Uint64 client, Uint64 positionMs);
/// Dart signature of `stellatune_player_seek_ms`.
typedef StellatunePlayerSeekMsDart = int Function(int client, int positionMs);

/// Native signature of `stellatune_player_set_volume`.
typedef StellatunePlayerSetVolumeNative = Int32 Function(Uint64 client, Float volume);
/// Dart signature of `stellatune_player_set_volume`.
typedef StellatunePlayerSetVolumeDart = int Function(int client, double volume);

/// Native signature of `stellatune_player_set_replaygain`.
typedef StellatunePlayerSetReplaygainNative = Int32 Function(Uint64 client, Pointer<Utf8> json);
/// Dart signature of `stellatune_player_set_replaygain`.
typedef StellatunePlayerSetReplaygainDart = int Function(int client, Pointer<Utf8> json);

/// Native signature of `stellatune_output_route_apply`.
typedef StellatuneOutputRouteApplyNative = Int32 Function(Uint64 client, Pointer<Utf8> routeJson);
/// Dart signature of `stellatune_output_route_apply`.
typedef StellatuneOutputRouteApplyDart = int Function(int client, Pointer<Utf8> routeJson);

/// Native signature of `stellatune_output_route_clear`.
typedef StellatuneOutputRouteClearNative = Int32 Function(Uint64 client);
/// Dart signature of `stellatune_output_route_clear`.
typedef StellatuneOutputRouteClearDart = int Function(int client);

/// Native signature of `stellatune_player_set_dsp_chain`.
typedef StellatunePlayerSetDspChainNative = Int32 Function(Uint64 client, Pointer<Utf8> chainJson);
/// Dart signature of `stellatune_player_set_dsp_chain`.
typedef StellatunePlayerSetDspChainDart = int Function(int client, Pointer<Utf8> chainJson);

/// Native signature of `stellatune_player_poll_event`.
typedef StellatunePlayerPollEventNative = Int32 Function(Uint64 client, Uint32 timeoutMs, Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_player_poll_event`.
typedef StellatunePlayerPollEventDart = int Function(int client, int timeoutMs, Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_dart_set_post_cobject`.
typedef StellatuneDartSetPostCobjectNative = Int32 Function(Pointer<Void> postCobject);
/// Dart signature of `stellatune_dart_set_post_cobject`.
typedef StellatuneDartSetPostCobjectDart = int Function(Pointer<Void> postCobject);

/// Native signature of `stellatune_player_set_event_port`.
typedef StellatunePlayerSetEventPortNative = Int32 Function(Uint64 client, Int64 port);
/// Dart signature of `stellatune_player_set_event_port`.
typedef StellatunePlayerSetEventPortDart = int Function(int client, int port);

/// Native signature of `stellatune_player_status_json`.
typedef StellatunePlayerStatusJsonNative = Int32 Function(Uint64 client, Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_player_status_json`.
typedef StellatunePlayerStatusJsonDart = int Function(int client, Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_plugins_install`.
typedef StellatunePluginsInstallNative = Int32 Function(Pointer<Utf8> artifactPath, Pointer<Utf8> outId, Size cap);
/// Dart signature of `stellatune_plugins_install`.
typedef StellatunePluginsInstallDart = int Function(Pointer<Utf8> artifactPath, Pointer<Utf8> outId, int cap);

/// Native signature of `stellatune_plugins_uninstall`.
typedef StellatunePluginsUninstallNative = Int32 Function(Pointer<Utf8> pluginId);
/// Dart signature of `stellatune_plugins_uninstall`.
typedef StellatunePluginsUninstallDart = int Function(Pointer<Utf8> pluginId);

/// Native signature of `stellatune_plugins_reload`.
typedef StellatunePluginsReloadNative = Int32 Function();
/// Dart signature of `stellatune_plugins_reload`.
typedef StellatunePluginsReloadDart = int Function();

/// Native signature of `stellatune_plugins_list_json`.
typedef StellatunePluginsListJsonNative = Int32 Function(Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_plugins_list_json`.
typedef StellatunePluginsListJsonDart = int Function(Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_output_devices_json`.
typedef StellatuneOutputDevicesJsonNative = Int32 Function(Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_output_devices_json`.
typedef StellatuneOutputDevicesJsonDart = int Function(Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_runtime_metrics_json`.
typedef StellatuneRuntimeMetricsJsonNative = Int32 Function(Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_runtime_metrics_json`.
typedef StellatuneRuntimeMetricsJsonDart = int Function(Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_media_probe_json`.
typedef StellatuneMediaProbeJsonNative = Int32 Function(Pointer<Utf8> path, Pointer<Utf8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_media_probe_json`.
typedef StellatuneMediaProbeJsonDart = int Function(Pointer<Utf8> path, Pointer<Utf8> buf, int cap, Pointer<Size> outLen);

/// Native signature of `stellatune_media_cover`.
typedef StellatuneMediaCoverNative = Int32 Function(Pointer<Utf8> path, Pointer<Uint8> buf, Size cap, Pointer<Size> outLen);
/// Dart signature of `stellatune_media_cover`.
typedef StellatuneMediaCoverDart = int Function(Pointer<Utf8> path, Pointer<Uint8> buf, int cap, Pointer<Size> outLen);

/// Every function of the C header, looked up in [library] on first use (a library
/// older than these bindings fails only when a function it lacks is called).
final class StellatuneBindings {
  StellatuneBindings(this.library);

  /// The loaded `stellatune_ffi` library.
  final DynamicLibrary library;

  /// Returns `STELLATUNE_ABI_VERSION` as compiled into the library. Never fails, never blocks,
  /// needs no init.
  ///
  /// `stellatune_abi_version` in the C header.
  late final StellatuneAbiVersionDart abiVersion =
      library.lookupFunction<StellatuneAbiVersionNative, StellatuneAbiVersionDart>('stellatune_abi_version');

  /// Returns the symbolic name of a status code (e.g. `"STELLATUNE_ERR_NOT_FOUND"`), or
  /// `"STELLATUNE_ERR_UNKNOWN_CODE"`. The string is static: never free it. Never fails, never
  /// blocks, needs no init.
  ///
  /// `stellatune_error_name` in the C header.
  late final StellatuneErrorNameDart errorName =
      library.lookupFunction<StellatuneErrorNameNative, StellatuneErrorNameDart>('stellatune_error_name');

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
  ///
  /// `stellatune_last_error` in the C header.
  late final StellatuneLastErrorDart lastError =
      library.lookupFunction<StellatuneLastErrorNative, StellatuneLastErrorDart>('stellatune_last_error');

  /// Starts the process-wide runtime, or does nothing if it runs already (idempotent: call it
  /// at every bootstrap, including after a Flutter hot restart). A later call's config is
  /// ignored while the runtime runs; shut down first to apply a new one.
  ///
  /// `config_json` is NULL for defaults, or a JSON object whose keys are all optional:
  /// `data_dir`, `plugin_dir` (strings), `client_lease_ms` (> 0, default 30000), `log_filter`
  /// (e.g. `"info"`), `log_format` (`"text"` or `"json"`), `log_max_files` (daily log files kept
  /// in `<data_dir>/logs`, default 7, 0 for none), `event_queue_capacity` (> 0, default 256),
  /// `shutdown_timeout_ms` (default 5000). Unknown keys are refused.
  ///
  /// Blocks for milliseconds (it starts the runtime threads); if a shutdown is in progress on
  /// another thread it first waits for it to finish.
  ///
  /// Errors: `INVALID_ARGUMENT` (non-UTF-8, malformed JSON, unknown key, bad value; the message
  /// names the key), `SINK` or `INTERNAL` if a runtime thread cannot start.
  ///
  /// # Safety
  /// `config_json` must be NULL or a NUL-terminated string.
  ///
  /// `stellatune_runtime_init` in the C header.
  late final StellatuneRuntimeInitDart runtimeInit =
      library.lookupFunction<StellatuneRuntimeInitNative, StellatuneRuntimeInitDart>('stellatune_runtime_init');

  /// Starts a new client generation for a front end that is about to re-create its clients
  /// (Flutter hot restart): every existing client is evicted at once (its calls then return
  /// `CLIENT_EVICTED`), playback stops and the output route is cleared. The runtime keeps
  /// running; `runtime_host_inits_total` does not change.
  ///
  /// Blocks until the engine has stopped (milliseconds; at most about 10 s if the engine is
  /// wedged). Errors: `NOT_INITIALIZED`, `SHUTTING_DOWN`, `TIMEOUT`.
  ///
  /// `stellatune_runtime_prepare_hot_restart` in the C header.
  late final StellatuneRuntimePrepareHotRestartDart runtimePrepareHotRestart =
      library.lookupFunction<StellatuneRuntimePrepareHotRestartNative, StellatuneRuntimePrepareHotRestartDart>('stellatune_runtime_prepare_hot_restart');

  /// Stops playback, evicts every client, joins every runtime thread and returns when they are
  /// gone. Without a running runtime it does nothing and returns `STELLATUNE_OK`. After it, every
  /// call except init, shutdown, metrics and the error helpers returns `NOT_INITIALIZED`, and
  /// `stellatune_runtime_init` starts a fresh runtime.
  ///
  /// Blocks until the threads are joined: milliseconds normally, at most `shutdown_timeout_ms`
  /// (+ about 10 s if the engine is wedged). Errors: `TIMEOUT` when threads were still alive at
  /// the deadline (the runtime is marked stopped all the same).
  ///
  /// `stellatune_runtime_shutdown` in the C header.
  late final StellatuneRuntimeShutdownDart runtimeShutdown =
      library.lookupFunction<StellatuneRuntimeShutdownNative, StellatuneRuntimeShutdownDart>('stellatune_runtime_shutdown');

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
  ///
  /// `stellatune_player_create_client` in the C header.
  late final StellatunePlayerCreateClientDart playerCreateClient =
      library.lookupFunction<StellatunePlayerCreateClientNative, StellatunePlayerCreateClientDart>('stellatune_player_create_client');

  /// Ends a client at its own request: its queued events are freed, and a poll blocked on it
  /// returns `CLIENT_DISPOSED`. When the last client goes, playback stops and the route is
  /// cleared. Disposing twice returns `CLIENT_DISPOSED`; an evicted client, `CLIENT_EVICTED`.
  ///
  /// Blocks for milliseconds (stopping playback when it was the last client; at most about
  /// 10 s if the engine is wedged). Errors: `NOT_INITIALIZED`, `SHUTTING_DOWN`, `UNKNOWN_CLIENT`,
  /// `CLIENT_DISPOSED`, `CLIENT_EVICTED`.
  ///
  /// `stellatune_player_dispose_client` in the C header.
  late final StellatunePlayerDisposeClientDart playerDisposeClient =
      library.lookupFunction<StellatunePlayerDisposeClientNative, StellatunePlayerDisposeClientDart>('stellatune_player_dispose_client');

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
  ///
  /// `stellatune_player_play` in the C header.
  late final StellatunePlayerPlayDart playerPlay =
      library.lookupFunction<StellatunePlayerPlayNative, StellatunePlayerPlayDart>('stellatune_player_play');

  /// Opens the file at `path` and queues it to follow the current track without a gap. There
  /// is one slot: a second call replaces the queued track.
  ///
  /// Blocking and errors as for `stellatune_player_play`, plus `NOTHING_PLAYING`.
  ///
  /// # Safety
  /// `path` must be NULL or a NUL-terminated string.
  ///
  /// `stellatune_player_queue_next` in the C header.
  late final StellatunePlayerQueueNextDart playerQueueNext =
      library.lookupFunction<StellatunePlayerQueueNextNative, StellatunePlayerQueueNextDart>('stellatune_player_queue_next');

  /// Pauses playback. Blocks for the engine's answer (milliseconds, at most 5 s).
  /// Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `TIMEOUT`.
  ///
  /// `stellatune_player_pause` in the C header.
  late final StellatunePlayerPauseDart playerPause =
      library.lookupFunction<StellatunePlayerPauseNative, StellatunePlayerPauseDart>('stellatune_player_pause');

  /// Resumes paused playback. Blocks for the engine's answer (milliseconds, at most 5 s).
  /// Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `TIMEOUT`.
  ///
  /// `stellatune_player_resume` in the C header.
  late final StellatunePlayerResumeDart playerResume =
      library.lookupFunction<StellatunePlayerResumeNative, StellatunePlayerResumeDart>('stellatune_player_resume');

  /// Stops playback and forgets the current and queued tracks; the route stays. Blocks for the
  /// engine's answer (milliseconds, at most 5 s). Errors: `NOT_INITIALIZED`, client errors,
  /// `TIMEOUT`.
  ///
  /// `stellatune_player_stop` in the C header.
  late final StellatunePlayerStopDart playerStop =
      library.lookupFunction<StellatunePlayerStopNative, StellatunePlayerStopDart>('stellatune_player_stop');

  /// Seeks the current track to `position_ms`. Blocks for the engine's answer (milliseconds,
  /// at most 5 s). Errors: `NOT_INITIALIZED`, client errors, `NOTHING_PLAYING`, `DECODE`,
  /// `TIMEOUT`.
  ///
  /// `stellatune_player_seek_ms` in the C header.
  late final StellatunePlayerSeekMsDart playerSeekMs =
      library.lookupFunction<StellatunePlayerSeekMsNative, StellatunePlayerSeekMsDart>('stellatune_player_seek_ms');

  /// Sets the volume as a linear gain from 0.0 to 2.0 (1.0 = unchanged), smoothed over a few
  /// milliseconds. Blocks for the engine's answer (milliseconds, at most 5 s). Errors:
  /// `INVALID_ARGUMENT` (out of range or NaN), `NOT_INITIALIZED`, client errors, `TIMEOUT`.
  ///
  /// `stellatune_player_set_volume` in the C header.
  late final StellatunePlayerSetVolumeDart playerSetVolume =
      library.lookupFunction<StellatunePlayerSetVolumeNative, StellatunePlayerSetVolumeDart>('stellatune_player_set_volume');

  /// Sets how ReplayGain applies, from JSON:
  /// `{"mode":"track","preamp_db":0.0,"prevent_clipping":true,"fallback_db":0.0}`. `mode` is
  /// `"off"`, `"track"` (the album's gain when the track has none) or `"album"` (the track's
  /// when the album has none); the rest may be left out (defaults as shown). `preamp_db` is
  /// added to the file's gain; `prevent_clipping` limits the gain so that the file's stated
  /// peak stays at full scale; `fallback_db` is the gain of a file without the value (no
  /// preamp). Both gains are -24 to 24 dB. The setting is global (one engine): it ramps in
  /// within the track playing and applies to every later one, switching exactly at a gapless
  /// join. Blocks for the engine's answer (milliseconds, at most 5 s). Errors:
  /// `INVALID_ARGUMENT` (NULL, non-UTF-8, malformed JSON, unknown mode or field, a gain out
  /// of range; the message names it), `NOT_INITIALIZED`, client errors, `TIMEOUT`.
  ///
  /// # Safety
  /// `json` must be NULL or a NUL-terminated string.
  ///
  /// `stellatune_player_set_replaygain` in the C header.
  late final StellatunePlayerSetReplaygainDart playerSetReplaygain =
      library.lookupFunction<StellatunePlayerSetReplaygainNative, StellatunePlayerSetReplaygainDart>('stellatune_player_set_replaygain');

  /// Sets the output route from JSON: `{"kind":"null"}` (discard at real-time pace),
  /// `{"kind":"wav","path":"/tmp/out.wav","paced":true}` (32-bit float WAV; `paced` defaults to
  /// true), `{"kind":"device"}` (the system default output, followed when it changes; builds
  /// with the `device` feature), `{"kind":"device","device_id":"..."}` (one device, an `id` of
  /// `stellatune_output_devices_json`) or
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
  ///
  /// `stellatune_output_route_apply` in the C header.
  late final StellatuneOutputRouteApplyDart outputRouteApply =
      library.lookupFunction<StellatuneOutputRouteApplyNative, StellatuneOutputRouteApplyDart>('stellatune_output_route_apply');

  /// Clears the output route: playback stops and the sink closes. Blocks for the engine's
  /// answer (milliseconds, at most 5 s). Errors: `NOT_INITIALIZED`, client errors, `TIMEOUT`.
  ///
  /// `stellatune_output_route_clear` in the C header.
  late final StellatuneOutputRouteClearDart outputRouteClear =
      library.lookupFunction<StellatuneOutputRouteClearNative, StellatuneOutputRouteClearDart>('stellatune_output_route_clear');

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
  ///
  /// `stellatune_player_set_dsp_chain` in the C header.
  late final StellatunePlayerSetDspChainDart playerSetDspChain =
      library.lookupFunction<StellatunePlayerSetDspChainNative, StellatunePlayerSetDspChainDart>('stellatune_player_set_dsp_chain');

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
  ///
  /// `stellatune_player_poll_event` in the C header.
  late final StellatunePlayerPollEventDart playerPollEvent =
      library.lookupFunction<StellatunePlayerPollEventNative, StellatunePlayerPollEventDart>('stellatune_player_poll_event');

  /// Hands the library Dart's `NativeApi.postCObject` (pass `NativeApi.postCObject.address`),
  /// the function every event port post goes through. Call it before the first
  /// `stellatune_player_set_event_port`; calling it again (after a hot restart, with the same
  /// pointer) replaces it. Works before and after `stellatune_runtime_init` and survives
  /// shutdown.
  ///
  /// Never blocks. Errors: `INVALID_ARGUMENT` (`post_cobject` NULL).
  ///
  /// # Safety
  /// `post_cobject` must be NULL or a function with the signature of `Dart_PostCObject`,
  /// `bool (*)(int64_t port, Dart_CObject *message)`, callable from any thread for as long as
  /// the library is loaded.
  ///
  /// `stellatune_dart_set_post_cobject` in the C header.
  late final StellatuneDartSetPostCobjectDart dartSetPostCobject =
      library.lookupFunction<StellatuneDartSetPostCobjectNative, StellatuneDartSetPostCobjectDart>('stellatune_dart_set_post_cobject');

  /// From now on the client's events are posted to the Dart native port `port` (a
  /// `ReceivePort`'s `sendPort.nativePort`) instead of being queued for polling; `0` switches
  /// back to polling. Each event is one `Dart_CObject` of type `Dart_CObject_kString` whose
  /// string is the JSON `stellatune_player_poll_event` would return; events already queued are
  /// posted first, in order.
  ///
  /// Posts come from one runtime thread (the event pump), never from a thread that holds a
  /// lock this ABI's calls need. While the client has a port:
  /// - its polls are refused (`INVALID_ARGUMENT`);
  /// - a port that got nothing for 250 ms gets `{"type":"heartbeat"}` (so at least one post a
  ///   second);
  /// - every successful post renews the client's lease: a listener that never calls in is
  ///   not evicted;
  /// - a post that fails (the port is closed: its isolate died, e.g. in a hot restart) evicts
  ///   the client at once with the reason `event port closed`, as any eviction (counted in
  ///   `clients_evicted_total`, playback stops when it was the last client).
  ///
  /// Never blocks for long (a lock). Errors: `INVALID_ARGUMENT` (no post function set yet by
  /// `stellatune_dart_set_post_cobject`), `NOT_INITIALIZED`, `SHUTTING_DOWN`, client errors.
  ///
  /// `stellatune_player_set_event_port` in the C header.
  late final StellatunePlayerSetEventPortDart playerSetEventPort =
      library.lookupFunction<StellatunePlayerSetEventPortNative, StellatunePlayerSetEventPortDart>('stellatune_player_set_event_port');

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
  ///
  /// `stellatune_player_status_json` in the C header.
  late final StellatunePlayerStatusJsonDart playerStatusJson =
      library.lookupFunction<StellatunePlayerStatusJsonNative, StellatunePlayerStatusJsonDart>('stellatune_player_status_json');

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
  ///
  /// `stellatune_plugins_install` in the C header.
  late final StellatunePluginsInstallDart pluginsInstall =
      library.lookupFunction<StellatunePluginsInstallNative, StellatunePluginsInstallDart>('stellatune_plugins_install');

  /// Uninstalls the plugin `plugin_id`: its files are removed and its generation drains. A
  /// route playing through it keeps playing until cleared; then the generation unloads.
  ///
  /// Blocks for the file removal. Errors: `INVALID_ARGUMENT` (NULL, non-UTF-8 or empty id),
  /// `NOT_INITIALIZED`, `UNKNOWN_PLUGIN`, `PLUGIN`.
  ///
  /// # Safety
  /// `plugin_id` must be NULL or NUL-terminated.
  ///
  /// `stellatune_plugins_uninstall` in the C header.
  late final StellatunePluginsUninstallDart pluginsUninstall =
      library.lookupFunction<StellatunePluginsUninstallNative, StellatunePluginsUninstallDart>('stellatune_plugins_uninstall');

  /// Re-reads the plugin directory: new plugins load, changed ones (by content) get a new
  /// generation and a route through them moves over, unchanged ones are left alone, removed
  /// ones drain. Per-plugin failures do not fail the call: they are reported in a
  /// `plugins_reloaded` event and in `stellatune_plugins_list_json` (`load_error`).
  ///
  /// Blocks for the loads. Errors: `NOT_INITIALIZED`, `PLUGIN` (plugin directory unusable).
  ///
  /// `stellatune_plugins_reload` in the C header.
  late final StellatunePluginsReloadDart pluginsReload =
      library.lookupFunction<StellatunePluginsReloadNative, StellatunePluginsReloadDart>('stellatune_plugins_reload');

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
  ///
  /// `stellatune_plugins_list_json` in the C header.
  late final StellatunePluginsListJsonDart pluginsListJson =
      library.lookupFunction<StellatunePluginsListJsonNative, StellatunePluginsListJsonDart>('stellatune_plugins_list_json');

  /// Writes every output the runtime can play to now as a JSON array, one object per output:
  /// `{"id", "name", "backend", "is_default", "route"}`. `route` is exactly the JSON
  /// `stellatune_output_route_apply` takes to play there. The list starts with the system's
  /// devices (builds with device output): first `{"id":"default","name":"System default",...,
  /// "route":{"kind":"device"}}`, which follows the system default, then every device of every
  /// audio backend the build has (`backend` `"alsa"`, `"jack"`, `"wasapi"`, `"asio"`; route
  /// `{"kind":"device","device_id":ID}`); `is_default` marks the current default. Then every
  /// target of every output sink of every loaded plugin (`backend` `"plugin:<plugin id>"`,
  /// route `{"kind":"plugin","plugin_id",...,"sink",...,"target",...}`). A build without the
  /// `device` feature lists no system devices; a plugin whose listing fails is left out (and
  /// logged).
  ///
  /// Read fresh on each call (a plugin may reuse its own list for a couple of seconds): a
  /// device plugged in is listed by the next call. Blocks while the backends and plugins are
  /// asked (milliseconds; the audio backends at most 3 s, after which the list comes without
  /// system devices; a plugin that asks a helper process, a few seconds); it never waits on
  /// the engine, and playback goes on meanwhile. Errors: `INVALID_ARGUMENT` (`buf` or
  /// `out_len` NULL), `BUFFER_TOO_SMALL` (`*out_len` = size needed), `NOT_INITIALIZED`,
  /// `SHUTTING_DOWN`, `SINK` (the system's device list could not be read).
  ///
  /// # Safety
  /// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
  /// one `size_t`.
  ///
  /// `stellatune_output_devices_json` in the C header.
  late final StellatuneOutputDevicesJsonDart outputDevicesJson =
      library.lookupFunction<StellatuneOutputDevicesJsonNative, StellatuneOutputDevicesJsonDart>('stellatune_output_devices_json');

  /// Writes the runtime's counters as one JSON object: `state` ("uninit", "running",
  /// "shutting_down", "stopped"), `runtime_host_inits_total`, `player_clients_active`,
  /// `client_generation`, `clients_evicted_total`, `client_events_queued`, `runtime_threads`,
  /// `engine_restarts_total`, `plugin_generations_active`, `plugin_generations_draining`,
  /// `plugin_shadow_copies`, `plugin_helper_threads`, `audio_underruns_total` (the engine's and every
  /// sink's, a sidecar's included), then every counter plugins report, under
  /// the plugin's own name (e.g. the ASIO plugin's `asio_sidecar_spawns_total`,
  /// `asio_sidecar_running`, `ring_files`); a counter no plugin reported is absent (read it as 0).
  ///
  /// Works in every state, including before init and after shutdown (so a caller can check that
  /// shutdown left no thread behind). Never blocks for long (a few locks). Errors:
  /// `INVALID_ARGUMENT` (`buf` or `out_len` NULL), `BUFFER_TOO_SMALL` (`*out_len` = size needed).
  ///
  /// # Safety
  /// `buf` must be NULL or valid for writes of `cap` bytes; `out_len` NULL or valid for writing
  /// one `size_t`.
  ///
  /// `stellatune_runtime_metrics_json` in the C header.
  late final StellatuneRuntimeMetricsJsonDart runtimeMetricsJson =
      library.lookupFunction<StellatuneRuntimeMetricsJsonNative, StellatuneRuntimeMetricsJsonDart>('stellatune_runtime_metrics_json');

  /// Writes what the file at `path` (UTF-8) holds as one JSON object, read without decoding
  /// any audio: `{"path", "codec", "sample_rate", "channels", "bits_per_sample", "total_frames",
  /// "duration_ms", "tags": {"title", "artist", "album", "album_artist", "track_number",
  /// "disc_number", "date", "genre"}, "replaygain": {"track_gain_db", "track_peak",
  /// "album_gain_db", "album_peak"}, "cover": {"mime", "bytes"}}`; every value the file does
  /// not state is `null` (`bits_per_sample` for codecs without a fixed depth such as MP3, AAC
  /// and Vorbis; `cover` when there is no embedded picture). docs/ffi.md has examples.
  ///
  /// Needs no runtime: it works before `stellatune_runtime_init` and after shutdown, and
  /// starts no playback. Blocks for the file reads (typically milliseconds). Errors:
  /// `INVALID_ARGUMENT` (`path`, `buf` or `out_len` NULL, `path` not UTF-8), `NOT_FOUND` (no
  /// such file, or not a regular file), `IO`, `UNSUPPORTED` (no known format, no audio track,
  /// or a codec this build does not decode), `DECODE` (a damaged file), `BUFFER_TOO_SMALL`
  /// (`*out_len` = size needed including the NUL).
  ///
  /// # Safety
  /// `path` must be NULL or NUL-terminated; `buf` NULL or valid for writes of `cap` bytes;
  /// `out_len` NULL or valid for writing one `size_t`.
  ///
  /// `stellatune_media_probe_json` in the C header.
  late final StellatuneMediaProbeJsonDart mediaProbeJson =
      library.lookupFunction<StellatuneMediaProbeJsonNative, StellatuneMediaProbeJsonDart>('stellatune_media_probe_json');

  /// Copies the embedded cover of the file at `path` (UTF-8) into `buf`: the front cover, else
  /// the first picture, with its bytes exactly as stored (a PNG or JPEG file's contents; its
  /// type is the `cover.mime` of `stellatune_media_probe_json`). `*out_len` = the number of
  /// bytes written. No NUL is added.
  ///
  /// When the cover does not fit in `cap` bytes the call returns `BUFFER_TOO_SMALL` with
  /// `*out_len` = the size needed; `cap` may be 0 to learn the size (`cover.bytes` of the probe
  /// JSON is the same number).
  ///
  /// Needs no runtime, starts no playback. Blocks for the file reads. Errors:
  /// `INVALID_ARGUMENT` (`path`, `buf` or `out_len` NULL, `path` not UTF-8), `NOT_FOUND` (no
  /// such file, not a regular file, or the file has no embedded picture), `IO`, `UNSUPPORTED`,
  /// `DECODE`, `BUFFER_TOO_SMALL`.
  ///
  /// # Safety
  /// `path` must be NULL or NUL-terminated; `buf` NULL or valid for writes of `cap` bytes;
  /// `out_len` NULL or valid for writing one `size_t`.
  ///
  /// `stellatune_media_cover` in the C header.
  late final StellatuneMediaCoverDart mediaCover =
      library.lookupFunction<StellatuneMediaCoverNative, StellatuneMediaCoverDart>('stellatune_media_cover');
}
