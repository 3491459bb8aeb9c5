import 'dart:async';
import 'dart:convert';
import 'dart:ffi';
import 'dart:isolate';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.g.dart';
import 'buffers.dart';
import 'errors.dart';
import 'events.dart';
import 'library.dart';

part 'player.dart';

/// `true` in release and profile builds; hot restart exists only in debug builds.
const bool _isProduct = bool.fromEnvironment('dart.vm.product');

/// The runtime's configuration (docs/ffi.md, "Configuration"). Every field is optional;
/// `null` keeps the runtime's default.
final class StellatuneConfig {
  const StellatuneConfig({
    this.dataDir,
    this.pluginDir,
    this.clientLease,
    this.logFilter,
    this.logFormat,
    this.logMaxFiles,
    this.eventQueueCapacity,
    this.shutdownTimeout,
  });

  final String? dataDir;
  final String? pluginDir;

  /// A player that makes no call for this long is evicted (default 30 s). Every event or
  /// heartbeat the runtime posts to the player's port counts, so a listening player is
  /// never evicted by it.
  final Duration? clientLease;

  /// A `tracing` filter such as `warn` or `stellatune=debug`.
  final String? logFilter;

  /// `text` or `json`.
  final String? logFormat;
  final int? logMaxFiles;
  final int? eventQueueCapacity;
  final Duration? shutdownTimeout;

  /// The JSON object `stellatune_runtime_init` takes.
  Map<String, Object> toJson() => {
        if (dataDir != null) 'data_dir': dataDir!,
        if (pluginDir != null) 'plugin_dir': pluginDir!,
        if (clientLease != null) 'client_lease_ms': clientLease!.inMilliseconds,
        if (logFilter != null) 'log_filter': logFilter!,
        if (logFormat != null) 'log_format': logFormat!,
        if (logMaxFiles != null) 'log_max_files': logMaxFiles!,
        if (eventQueueCapacity != null) 'event_queue_capacity': eventQueueCapacity!,
        if (shutdownTimeout != null) 'shutdown_timeout_ms': shutdownTimeout!.inMilliseconds,
      };
}

/// The process-wide native runtime, as seen from this isolate.
///
/// The native library and its threads outlive a Flutter hot restart; this object does not
/// (it lives on the Dart heap), so [ensureInitialized] runs again after every hot restart.
final class StellatuneRuntime {
  StellatuneRuntime._(this.bindings);

  static StellatuneRuntime? _instance;

  /// The raw bindings, for calls the typed layer does not cover.
  final StellatuneBindings bindings;

  final Set<Player> _players = {};

  /// The runtime [ensureInitialized] started; throws before that and after [shutdown].
  static StellatuneRuntime get instance =>
      _instance ??
      (throw StateError('StellatuneRuntime.ensureInitialized() has not been called'));

  /// Loads the library, checks its ABI version and starts the runtime (or reuses the one
  /// that survived a hot restart). Idempotent: later calls return the same object and
  /// ignore their arguments until [shutdown].
  ///
  /// It first hands the library `NativeApi.postCObject`, through which the runtime posts
  /// each [Player]'s events to its `ReceivePort`. A player of an isolate that a hot restart
  /// replaced is evicted by the runtime at its next post (its port is closed), within about
  /// 250 ms. In debug builds this also calls `stellatune_runtime_prepare_hot_restart`, which
  /// evicts those players at once (and stops their playback); on a cold start that is a
  /// no-op. Call this from the app's main
  /// isolate only: another Flutter engine (a second window) calling it would evict the
  /// first window's players.
  static StellatuneRuntime ensureInitialized([
    StellatuneConfig config = const StellatuneConfig(),
    String? libraryPath,
  ]) {
    final existing = _instance;
    if (existing != null) return existing;

    final bindings = StellatuneBindings(openStellatuneLibrary(path: libraryPath));
    final abi = bindings.abiVersion();
    if (abi != stellatuneAbiVersion) {
      throw StateError('the native library has C ABI version $abi; '
          'this package was generated for version $stellatuneAbiVersion');
    }
    // Events are posted to each player's ReceivePort through the VM's own post function.
    // Handed over at every bootstrap (the same pointer again after a hot restart).
    checkStatus(bindings, bindings.dartSetPostCobject(NativeApi.postCObject.cast<Void>()));
    using((arena) {
      final json = jsonEncode(config.toJson()).toNativeUtf8(allocator: arena);
      checkStatus(bindings, bindings.runtimeInit(json));
    });
    if (!_isProduct) {
      checkStatus(bindings, bindings.runtimePrepareHotRestart());
    }
    return _instance = StellatuneRuntime._(bindings);
  }

  /// The runtime's counters (docs/ffi.md, "Metrics").
  Map<String, Object?> metrics() => jsonDecode(readText(
        bindings,
        (buf, cap, outLen) => bindings.runtimeMetricsJson(buf, cap, outLen),
      )) as Map<String, Object?>;

  /// What the audio file at [path] holds (format, tags, ReplayGain, cover size), read
  /// without playing it (docs/ffi.md, "Media info").
  Map<String, Object?> probe(String path) => using((arena) {
        final nativePath = path.toNativeUtf8(allocator: arena);
        return jsonDecode(readText(
          bindings,
          (buf, cap, outLen) => bindings.mediaProbeJson(nativePath, buf, cap, outLen),
        )) as Map<String, Object?>;
      });

  /// The embedded cover of the file at [path], as stored (PNG or JPEG bytes). Throws a
  /// [StellatuneException] with [stellatuneErrNotFound] when the file has none.
  Uint8List cover(String path) => using((arena) {
        final nativePath = path.toNativeUtf8(allocator: arena);
        return readBytes(
          bindings,
          (buf, cap, outLen) => bindings.mediaCover(nativePath, buf, cap, outLen),
        );
      });

  /// Every output the runtime can play to now, for a device picker: system devices and
  /// plugin targets, each a map with `id`, `name`, `backend`, `is_default` and `route`;
  /// play there with `player.applyRoute(OutputRoute.fromJson(route))` (docs/ffi.md,
  /// "Output devices").
  List<Object?> outputDevices() => jsonDecode(readText(
        bindings,
        (buf, cap, outLen) => bindings.outputDevicesJson(buf, cap, outLen),
      )) as List<Object?>;

  /// The installed plugins (docs/plugins.md).
  List<Object?> plugins() => jsonDecode(readText(
        bindings,
        (buf, cap, outLen) => bindings.pluginsListJson(buf, cap, outLen),
      )) as List<Object?>;

  /// The app-exit hook: disposes every attached [Player], then shuts the runtime down
  /// (joins its threads, at most `shutdownTimeout`). Call it when the app exits, e.g. from
  /// `AppLifecycleListener(onExitRequested: ...)` or after `runApp`'s window closed; the
  /// package does not hook the lifecycle itself. [ensureInitialized] starts a fresh
  /// runtime afterwards.
  void shutdown() {
    for (final player in _players.toList()) {
      try {
        player.dispose();
      } on StellatuneException {
        // The player is detached either way; shutting down matters more.
      }
    }
    if (identical(_instance, this)) _instance = null;
    checkStatus(bindings, bindings.runtimeShutdown());
  }
}
