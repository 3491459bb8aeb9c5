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
import 'info.dart';
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
    this.replayGain,
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

  /// ReplayGain from the start (default off); [Player.setReplayGain] changes it later.
  final ReplayGainSettings? replayGain;

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
        if (replayGain != null) 'replaygain': replayGain!.toJson(),
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

  /// The runtime's counters (docs/ffi.md, "Metrics"). Works in every state, also after
  /// [shutdown] (`runtimeThreads` is then 0).
  RuntimeMetrics metrics() => readJson(
        bindings,
        'stellatune_runtime_metrics_json',
        (buf, cap, outLen) => bindings.runtimeMetricsJson(buf, cap, outLen),
        (json) => RuntimeMetrics.fromJson(json as Map<String, Object?>),
      );

  /// What the audio file at [path] holds (format, tags, ReplayGain, cover size), read
  /// without playing it (docs/ffi.md, "Media info"). Needs no running runtime.
  MediaInfo probe(String path) => using((arena) {
        final nativePath = path.toNativeUtf8(allocator: arena);
        return readJson(
          bindings,
          'stellatune_media_probe_json',
          (buf, cap, outLen) => bindings.mediaProbeJson(nativePath, buf, cap, outLen),
          (json) => MediaInfo.fromJson(json as Map<String, Object?>),
        );
      });

  /// The embedded cover of the file at [path], as stored (PNG or JPEG bytes; the type is
  /// the probe's `cover.mime`). Throws a [StellatuneException] with
  /// [stellatuneErrNotFound] when the file has none.
  Uint8List cover(String path) => using((arena) {
        final nativePath = path.toNativeUtf8(allocator: arena);
        return readBytes(
          bindings,
          (buf, cap, outLen) => bindings.mediaCover(nativePath, buf, cap, outLen),
        );
      });

  /// Every output the runtime can play to now, for a device picker: the system default
  /// first, then every system device and every plugin target; play on one with
  /// `player.applyRoute(device.route)` (docs/ffi.md, "Output devices"). Read fresh on each
  /// call: a device plugged in shows up in the next list.
  List<OutputDevice> outputDevices() => readJson(
        bindings,
        'stellatune_output_devices_json',
        (buf, cap, outLen) => bindings.outputDevicesJson(buf, cap, outLen),
        (json) => [
          for (final entry in json as List) OutputDevice.fromJson(entry as Map<String, Object?>),
        ],
      );

  /// The installed plugins (docs/plugins.md), including those that failed to load
  /// ([PluginInfo.loadError]).
  List<PluginInfo> plugins() => readJson(
        bindings,
        'stellatune_plugins_list_json',
        (buf, cap, outLen) => bindings.pluginsListJson(buf, cap, outLen),
        (json) => [
          for (final entry in json as List) PluginInfo.fromJson(entry as Map<String, Object?>),
        ],
      );

  /// Installs the plugin in the directory or `.zip` at [artifactPath] and loads it; returns
  /// its id. Replacing an installed plugin moves a route playing through it to the new
  /// version. Players get a [PluginInstalled] event.
  String installPlugin(String artifactPath) => using((arena) {
        final nativePath = artifactPath.toNativeUtf8(allocator: arena);
        // Plugin ids are at most 64 bytes; a buffer too small would still have installed
        // the plugin (BUFFER_TOO_SMALL then names the id in the last error).
        const capacity = 256;
        final id = arena<Uint8>(capacity).cast<Utf8>();
        checkStatus(bindings, bindings.pluginsInstall(nativePath, id, capacity));
        return id.toDartString();
      });

  /// Uninstalls the plugin [pluginId]. A route playing through it plays on until it is
  /// cleared. Players get a [PluginUninstalled] event.
  void uninstallPlugin(String pluginId) => using((arena) {
        checkStatus(
            bindings, bindings.pluginsUninstall(pluginId.toNativeUtf8(allocator: arena)));
      });

  /// Re-reads the plugin directory: new plugins load, changed ones get a new generation,
  /// removed ones drain. Plugins that fail do not fail the call: players get a
  /// [PluginsReloaded] event listing them, and [plugins] shows their `loadError`.
  void reloadPlugins() => checkStatus(bindings, bindings.pluginsReload());

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
