import 'dart:convert';

/// The playback state of the engine.
enum PlaybackState { stopped, playing, paused }

/// One event of a player, parsed from the JSON the runtime posts to the player's port (the
/// same text `stellatune_player_poll_event` returns; the event list is in docs/ffi.md,
/// "Events"). An event this version does not know, or cannot read,
/// arrives as [UnknownEvent] with its JSON.
sealed class PlayerEvent {
  const PlayerEvent(this.json);

  /// The event as the runtime sent it.
  final Map<String, Object?> json;

  /// The `type` field, e.g. `track_started`.
  String get type => json['type'] as String? ?? '';

  /// Parses one event object.
  factory PlayerEvent.fromJson(Map<String, Object?> json) {
    try {
      return _parse(json);
    } on TypeError {
      return UnknownEvent(json);
    } on ArgumentError {
      return UnknownEvent(json);
    }
  }

  /// Parses the text of one event.
  factory PlayerEvent.parse(String text) =>
      PlayerEvent.fromJson(jsonDecode(text) as Map<String, Object?>);

  @override
  String toString() => jsonEncode(json);
}

PlayerEvent _parse(Map<String, Object?> j) => switch (j['type']) {
      'state_changed' => StateChanged(j, PlaybackState.values.byName(j['state'] as String)),
      'track_started' => TrackStarted(
          j,
          trackId: _int(j['track_id']),
          track: TrackInfo.fromJson(j),
        ),
      'position' => PositionChanged(
          j,
          trackId: _int(j['track_id']),
          position: Duration(milliseconds: _int(j['position_ms'])),
          duration: _msOrNull(j['duration_ms']),
        ),
      'track_ended' => TrackEnded(j, trackId: _int(j['track_id'])),
      'route_changed' => RouteChanged(j, route: j['route'] as String?),
      'error' => PlaybackError(
          j,
          message: j['message'] as String,
          trackId: _intOrNull(j['track_id']),
        ),
      'output_starting' => OutputStarting(j, route: j['route'] as String),
      'underrun' => Underrun(j, count: _int(j['count'])),
      'output_lost' => OutputLost(
          j,
          route: j['route'] as String,
          message: j['message'] as String,
        ),
      'output_changed' => OutputChanged(j, route: j['route'] as String),
      'client_evicted' => ClientEvicted(
          j,
          clientId: _int(j['client_id']),
          reason: j['reason'] as String,
        ),
      'engine_restarted' => EngineRestarted(j, reason: j['reason'] as String),
      'plugin_installed' => PluginInstalled(
          j,
          pluginId: j['plugin_id'] as String,
          generation: _intOrNull(j['generation']),
        ),
      'plugin_uninstalled' => PluginUninstalled(j, pluginId: j['plugin_id'] as String),
      'plugins_reloaded' => PluginsReloaded(
          j,
          loaded: _strings(j['loaded']),
          reloaded: _strings(j['reloaded']),
          removed: _strings(j['removed']),
          failed: _strings(j['failed']),
        ),
      'plugin_event' => PluginEvent(
          j,
          pluginId: j['plugin_id'] as String,
          kind: j['kind'] as String,
          payload: j['payload'],
        ),
      'lagged' => Lagged(j, dropped: _int(j['dropped'])),
      'heartbeat' => Heartbeat(j),
      _ => UnknownEvent(j),
    };

int _int(Object? value) => (value as num).toInt();
int? _intOrNull(Object? value) => value == null ? null : _int(value);
double? _doubleOrNull(Object? value) => value == null ? null : (value as num).toDouble();
Duration? _msOrNull(Object? value) =>
    value == null ? null : Duration(milliseconds: _int(value));
List<String> _strings(Object? value) => List<String>.from(value as List);

/// A nested object; a missing one (a library older than the field) reads as empty.
Map<String, Object?> _object(Object? value) =>
    value == null ? const {} : value as Map<String, Object?>;

/// The tags of a file (`tags` of `track_started`, of the player status's `track` and of
/// `StellatuneRuntime.probe`); every value the file does not state is `null`.
final class TrackTags {
  const TrackTags({
    this.title,
    this.artist,
    this.album,
    this.albumArtist,
    this.trackNumber,
    this.discNumber,
    this.date,
    this.genre,
  });

  factory TrackTags.fromJson(Map<String, Object?> json) => TrackTags(
        title: json['title'] as String?,
        artist: json['artist'] as String?,
        album: json['album'] as String?,
        albumArtist: json['album_artist'] as String?,
        trackNumber: _intOrNull(json['track_number']),
        discNumber: _intOrNull(json['disc_number']),
        date: json['date'] as String?,
        genre: json['genre'] as String?,
      );

  final String? title;
  final String? artist;
  final String? album;
  final String? albumArtist;

  /// The leading number of a `3/12` style value.
  final int? trackNumber;
  final int? discNumber;

  /// As written in the file: `2024`, `2024-05-01`, ...
  final String? date;
  final String? genre;
}

/// The ReplayGain values a file states (`replaygain` of `track_started`, of the status's
/// `track` and of the probe): gains in dB, peaks linear; `null` when the file has none.
final class ReplayGainInfo {
  const ReplayGainInfo({this.trackGainDb, this.trackPeak, this.albumGainDb, this.albumPeak});

  factory ReplayGainInfo.fromJson(Map<String, Object?> json) => ReplayGainInfo(
        trackGainDb: _doubleOrNull(json['track_gain_db']),
        trackPeak: _doubleOrNull(json['track_peak']),
        albumGainDb: _doubleOrNull(json['album_gain_db']),
        albumPeak: _doubleOrNull(json['album_peak']),
      );

  final double? trackGainDb;
  final double? trackPeak;
  final double? albumGainDb;
  final double? albumPeak;
}

/// A track as the engine opened it: the body of `track_started` and the player status's
/// `track`.
final class TrackInfo {
  const TrackInfo({
    required this.path,
    required this.codec,
    required this.sampleRate,
    required this.channels,
    required this.totalFrames,
    required this.duration,
    this.tags = const TrackTags(),
    this.replayGain = const ReplayGainInfo(),
  });

  factory TrackInfo.fromJson(Map<String, Object?> json) => TrackInfo(
        path: json['path'] as String,
        codec: json['codec'] as String,
        sampleRate: _int(json['sample_rate']),
        channels: _int(json['channels']),
        totalFrames: _intOrNull(json['total_frames']),
        duration: _msOrNull(json['duration_ms']),
        tags: TrackTags.fromJson(_object(json['tags'])),
        replayGain: ReplayGainInfo.fromJson(_object(json['replaygain'])),
      );

  final String path;

  /// symphonia's short name: `flac`, `mp3`, `vorbis`, `aac`, `pcm_s16le`, ...
  final String codec;
  final int sampleRate;
  final int channels;

  /// `null` when the container does not state it.
  final int? totalFrames;

  /// `null` when the container does not state it.
  final Duration? duration;
  final TrackTags tags;
  final ReplayGainInfo replayGain;
}

/// `state_changed`: playback started, paused or stopped.
final class StateChanged extends PlayerEvent {
  const StateChanged(super.json, this.state);
  final PlaybackState state;
}

/// `track_started`: the first audio of a track (also a gapless successor), with its
/// format, tags and ReplayGain values.
final class TrackStarted extends PlayerEvent {
  const TrackStarted(super.json, {required this.trackId, required this.track});
  final int trackId;
  final TrackInfo track;

  String get path => track.path;
  String get codec => track.codec;
  int get sampleRate => track.sampleRate;
  int get channels => track.channels;

  /// `null` when the container does not state it.
  int? get totalFrames => track.totalFrames;

  /// `null` when the container does not state it.
  Duration? get duration => track.duration;

  /// Title, artist, album, ...: every value the file does not state is `null`.
  TrackTags get tags => track.tags;
  ReplayGainInfo get replayGain => track.replayGain;
}

/// `position`: at most every 250 ms while playing, and after a seek.
final class PositionChanged extends PlayerEvent {
  const PositionChanged(
    super.json, {
    required this.trackId,
    required this.position,
    required this.duration,
  });
  final int trackId;
  final Duration position;
  final Duration? duration;
}

/// `track_ended`: the track finished, or was replaced or stopped after it started.
final class TrackEnded extends PlayerEvent {
  const TrackEnded(super.json, {required this.trackId});
  final int trackId;
}

/// `route_changed`: a route was applied ([route] describes it) or cleared ([route] `null`).
final class RouteChanged extends PlayerEvent {
  const RouteChanged(super.json, {required this.route});
  final String? route;
}

/// `error`: playback failed after the command that started it returned; playback stopped.
final class PlaybackError extends PlayerEvent {
  const PlaybackError(super.json, {required this.message, required this.trackId});
  final String message;
  final int? trackId;
}

/// `output_starting`: the engine is opening the route's output.
final class OutputStarting extends PlayerEvent {
  const OutputStarting(super.json, {required this.route});
  final String route;
}

/// `underrun`: the output ran dry; [count] is the engine's total so far.
final class Underrun extends PlayerEvent {
  const Underrun(super.json, {required this.count});
  final int count;
}

/// `output_lost`: the output went away while in use (unplugged, reset, the default moved);
/// the engine re-opens it and goes on from the position heard last.
final class OutputLost extends PlayerEvent {
  const OutputLost(super.json, {required this.route, required this.message});
  final String route;
  final String message;
}

/// `output_changed`: after [OutputLost], the output plays again, on [route].
final class OutputChanged extends PlayerEvent {
  const OutputChanged(super.json, {required this.route});
  final String route;
}

/// `client_evicted`: another client's lease ran out.
final class ClientEvicted extends PlayerEvent {
  const ClientEvicted(super.json, {required this.clientId, required this.reason});
  final int clientId;
  final String reason;
}

/// `engine_restarted`: the engine died and a fresh one took its place; playback stopped.
final class EngineRestarted extends PlayerEvent {
  const EngineRestarted(super.json, {required this.reason});
  final String reason;
}

/// `plugin_installed`: a plugin was installed or replaced.
final class PluginInstalled extends PlayerEvent {
  const PluginInstalled(super.json, {required this.pluginId, required this.generation});
  final String pluginId;
  final int? generation;
}

/// `plugin_uninstalled`: a plugin was uninstalled.
final class PluginUninstalled extends PlayerEvent {
  const PluginUninstalled(super.json, {required this.pluginId});
  final String pluginId;
}

/// `plugins_reloaded`: the plugin directory was re-read.
final class PluginsReloaded extends PlayerEvent {
  const PluginsReloaded(
    super.json, {
    required this.loaded,
    required this.reloaded,
    required this.removed,
    required this.failed,
  });
  final List<String> loaded;
  final List<String> reloaded;
  final List<String> removed;

  /// `"<plugin>: <why>"` per plugin that failed to load.
  final List<String> failed;
}

/// `plugin_event`: a plugin emitted an event of its own.
final class PluginEvent extends PlayerEvent {
  const PluginEvent(
    super.json, {
    required this.pluginId,
    required this.kind,
    required this.payload,
  });
  final String pluginId;
  final String kind;

  /// The plugin's JSON payload, decoded.
  final Object? payload;
}

/// `lagged`: this player's queue overflowed and [dropped] oldest events were lost.
final class Lagged extends PlayerEvent {
  const Lagged(super.json, {required this.dropped});
  final int dropped;
}

/// The runtime probing an idle event port (`{"type":"heartbeat"}`); [Player.events] never
/// shows it.
final class Heartbeat extends PlayerEvent {
  const Heartbeat(super.json);
}

/// An event of a type this version of the package does not know (or could not read).
final class UnknownEvent extends PlayerEvent {
  const UnknownEvent(super.json);
}
