import 'events.dart';

// The documents the runtime's `*_json` functions write, each read once into a typed object
// (docs/ffi.md has every shape). A document that does not have its shape is reported as a
// `FormatException` by the function that read it.

int _int(Object? value) => (value as num).toInt();
int? _intOrNull(Object? value) => value == null ? null : _int(value);

/// What `StellatuneRuntime.probe` reads from an audio file without playing it (docs/ffi.md,
/// "Media info"). Every value the file does not state is `null`.
final class MediaInfo {
  const MediaInfo({
    required this.path,
    required this.codec,
    required this.sampleRate,
    required this.channels,
    required this.bitsPerSample,
    required this.totalFrames,
    required this.duration,
    required this.tags,
    required this.replayGain,
    required this.cover,
  });

  factory MediaInfo.fromJson(Map<String, Object?> json) {
    final cover = json['cover'] as Map<String, Object?>?;
    return MediaInfo(
      path: json['path'] as String,
      codec: json['codec'] as String,
      sampleRate: _intOrNull(json['sample_rate']),
      channels: _intOrNull(json['channels']),
      bitsPerSample: _intOrNull(json['bits_per_sample']),
      totalFrames: _intOrNull(json['total_frames']),
      duration: json['duration_ms'] == null
          ? null
          : Duration(milliseconds: _int(json['duration_ms'])),
      tags: TrackTags.fromJson(json['tags'] as Map<String, Object?>),
      replayGain: ReplayGainInfo.fromJson(json['replaygain'] as Map<String, Object?>),
      cover: cover == null
          ? null
          : CoverInfo(mime: cover['mime'] as String, bytes: _int(cover['bytes'])),
    );
  }

  final String path;

  /// symphonia's short name: `flac`, `mp3`, `vorbis`, `aac`, `alac`, `pcm_s16le`, ...
  final String codec;
  final int? sampleRate;
  final int? channels;

  /// `null` for codecs without a fixed depth (MP3, AAC, Vorbis) and for ADPCM.
  final int? bitsPerSample;
  final int? totalFrames;
  final Duration? duration;
  final TrackTags tags;
  final ReplayGainInfo replayGain;

  /// The embedded picture `StellatuneRuntime.cover` returns; `null` when there is none.
  final CoverInfo? cover;
}

/// The embedded cover of a file: its media type (`image/png`, `image/jpeg`) and size.
final class CoverInfo {
  const CoverInfo({required this.mime, required this.bytes});
  final String mime;
  final int bytes;
}

/// One installed plugin (`StellatuneRuntime.plugins`, docs/plugins.md).
final class PluginInfo {
  const PluginInfo({
    required this.id,
    required this.name,
    required this.version,
    required this.apiVersion,
    required this.generation,
    required this.capabilities,
    required this.loadError,
  });

  factory PluginInfo.fromJson(Map<String, Object?> json) => PluginInfo(
        id: json['id'] as String,
        name: json['name'] as String,
        version: json['version'] as String,
        apiVersion: json['api_version'] as String,
        generation: _intOrNull(json['generation']),
        capabilities: [
          for (final c in json['capabilities'] as List)
            PluginCapability.fromJson(c as Map<String, Object?>),
        ],
        loadError: json['load_error'] as String?,
      );

  final String id;
  final String name;
  final String version;

  /// The plugin ABI it was built for, `MAJOR.MINOR`.
  final String apiVersion;

  /// The loaded generation; `null` when the plugin is not loaded ([loadError] says why).
  final int? generation;
  final List<PluginCapability> capabilities;
  final String? loadError;
}

/// What a plugin offers: an output sink (`kind` `output_sink`, used by
/// `OutputRoute.plugin`) or a DSP stage (`kind` `dsp`, used by `DspStage`).
final class PluginCapability {
  const PluginCapability({
    required this.kind,
    required this.typeId,
    required this.displayName,
    required this.defaultConfig,
  });

  factory PluginCapability.fromJson(Map<String, Object?> json) => PluginCapability(
        kind: json['kind'] as String,
        typeId: json['type_id'] as String,
        displayName: json['display_name'] as String,
        defaultConfig: json['default_config'] as String,
      );

  /// `output_sink` or `dsp`.
  final String kind;
  final String typeId;
  final String displayName;

  /// The plugin's default config, as the JSON text the plugin gave.
  final String defaultConfig;
}

/// The lifecycle state of the process-wide runtime.
enum RuntimeState {
  uninit('uninit'),
  running('running'),
  shuttingDown('shutting_down'),
  stopped('stopped');

  const RuntimeState(this.wire);

  /// The name in the metrics JSON.
  final String wire;

  static RuntimeState fromWire(String wire) => values.firstWhere(
        (s) => s.wire == wire,
        orElse: () => throw ArgumentError.value(wire, 'state'),
      );
}

/// The runtime's counters (`StellatuneRuntime.metrics`, docs/ffi.md "Metrics"). Counters
/// plugins report are read by name with `[]`; a counter nobody reported reads as 0.
final class RuntimeMetrics {
  RuntimeMetrics.fromJson(Map<String, Object?> json)
      : state = RuntimeState.fromWire(json['state'] as String),
        counters = Map.unmodifiable({
          for (final entry in json.entries)
            if (entry.value is num) entry.key: (entry.value as num).toInt(),
        });

  final RuntimeState state;

  /// Every counter of the document, the runtime's and the plugins' alike.
  final Map<String, int> counters;

  /// The counter [name], or 0 when it is absent (no plugin reported it yet).
  int operator [](String name) => counters[name] ?? 0;

  /// Real engine starts in this process (many inits give 1; init after shutdown, 2).
  int get runtimeHostInitsTotal => this['runtime_host_inits_total'];
  int get playerClientsActive => this['player_clients_active'];
  int get clientGeneration => this['client_generation'];
  int get clientsEvictedTotal => this['clients_evicted_total'];
  int get clientEventsQueued => this['client_events_queued'];

  /// Runtime threads alive now; 0 after a clean shutdown.
  int get runtimeThreads => this['runtime_threads'];
  int get engineRestartsTotal => this['engine_restarts_total'];
  int get audioUnderrunsTotal => this['audio_underruns_total'];
  int get pluginGenerationsActive => this['plugin_generations_active'];
  int get pluginGenerationsDraining => this['plugin_generations_draining'];
  int get pluginShadowCopies => this['plugin_shadow_copies'];
  int get pluginHelperThreads => this['plugin_helper_threads'];
}
