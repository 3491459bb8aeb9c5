part of 'runtime.dart';

/// Where the audio goes (docs/ffi.md, "Output routes"). There is one engine and so one
/// route, shared by every player.
final class OutputRoute {
  const OutputRoute._(this._json);

  final Map<String, Object?> _json;

  /// The system's default output device, followed when the default changes (a library
  /// built with the `device` feature).
  static const OutputRoute device = OutputRoute._({'kind': 'device'});

  /// One output device: an `id` of `StellatuneRuntime.outputDevices`.
  factory OutputRoute.deviceId(String deviceId) =>
      OutputRoute._({'kind': 'device', 'device_id': deviceId});

  /// The `route` of an entry of `StellatuneRuntime.outputDevices`, as it is.
  factory OutputRoute.fromJson(Map<String, Object?> json) =>
      OutputRoute._(Map<String, Object?>.unmodifiable(json));

  /// Discards the audio at real-time pace (tests, headless use).
  static const OutputRoute discard = OutputRoute._({'kind': 'null'});

  /// A 32-bit float WAV file; [paced] `false` renders as fast as possible. [channels]
  /// (1 to 8) and [sampleRate] (8000 to 384000 Hz) fix the file's format, every track
  /// mixed and resampled to it; left out, each follows the first track.
  factory OutputRoute.wav(String path, {bool paced = true, int? channels, int? sampleRate}) =>
      OutputRoute._({
        'kind': 'wav',
        'path': path,
        'paced': paced,
        if (channels != null) 'channels': channels,
        if (sampleRate != null) 'sample_rate': sampleRate,
      });

  /// An installed plugin's output sink.
  factory OutputRoute.plugin(
    String pluginId, {
    String? sink,
    String? target,
    Map<String, Object?>? config,
  }) =>
      OutputRoute._({
        'kind': 'plugin',
        'plugin_id': pluginId,
        if (sink != null) 'sink': sink,
        if (target != null) 'target': target,
        if (config != null) 'config': config,
      });

  /// The JSON object `stellatune_output_route_apply` takes.
  Map<String, Object?> toJson() => _json;

  @override
  String toString() => jsonEncode(_json);
}

/// One entry of [StellatuneRuntime.outputDevices]: a system device, the entry that
/// follows the system default (`id` `default`), or a plugin target.
final class OutputDevice {
  const OutputDevice({
    required this.id,
    required this.name,
    required this.backend,
    required this.isDefault,
    required this.route,
  });

  factory OutputDevice.fromJson(Map<String, Object?> json) => OutputDevice(
        id: json['id'] as String,
        name: json['name'] as String,
        backend: json['backend'] as String,
        isDefault: json['is_default'] as bool,
        route: OutputRoute.fromJson(json['route'] as Map<String, Object?>),
      );

  /// Stable across runs and re-plugging, e.g. `alsa:hw:CARD=USB,DEV=0`.
  final String id;
  final String name;

  /// `alsa`, `jack`, `wasapi`, `asio`, `coreaudio`, or `plugin:<plugin id>`.
  final String backend;

  /// Whether this is the system's default output now.
  final bool isDefault;

  /// What [Player.applyRoute] takes to play here.
  final OutputRoute route;
}

/// Which of a file's ReplayGain values applies (docs/ffi.md, "Loudness").
enum ReplayGainMode {
  /// No ReplayGain: files play at their own level.
  off,

  /// The track's gain (the album's when the track has none).
  track,

  /// The album's gain (the track's when the album has none).
  album,
}

/// How ReplayGain applies: [Player.setReplayGain], or [StellatuneConfig.replayGain] from
/// the start. The setting is global (one engine, every player shares it).
final class ReplayGainSettings {
  const ReplayGainSettings(
    this.mode, {
    this.preampDb = 0.0,
    this.preventClipping = true,
    this.fallbackDb = 0.0,
  });

  /// No ReplayGain.
  static const ReplayGainSettings off = ReplayGainSettings(ReplayGainMode.off);

  final ReplayGainMode mode;

  /// Added to the file's gain, -24 to 24 dB.
  final double preampDb;

  /// Limits the gain so that the file's stated peak stays at full scale.
  final bool preventClipping;

  /// The gain of a file without the value (no preamp), -24 to 24 dB.
  final double fallbackDb;

  /// The JSON object `stellatune_player_set_replaygain` takes.
  Map<String, Object> toJson() => {
        'mode': mode.name,
        'preamp_db': preampDb,
        'prevent_clipping': preventClipping,
        'fallback_db': fallbackDb,
      };
}

/// One stage of the DSP chain: a plugin's transform (docs/plugins.md). [typeId] may be
/// left out when the plugin has one DSP type; [config] is the plugin's own JSON.
final class DspStage {
  const DspStage(this.pluginId, {this.typeId, this.config});

  final String pluginId;
  final String? typeId;
  final Object? config;

  /// One element of the array `stellatune_player_set_dsp_chain` takes.
  Map<String, Object?> toJson() => {
        'plugin_id': pluginId,
        if (typeId != null) 'type_id': typeId,
        if (config != null) 'config': config,
      };
}

/// The output's format: [Player.status]'s `outputSpec`.
final class StreamSpec {
  const StreamSpec({required this.sampleRate, required this.channels});
  final int sampleRate;
  final int channels;
}

/// A snapshot of the engine as a player sees it ([Player.status]).
final class PlayerStatus {
  const PlayerStatus({
    required this.state,
    required this.trackId,
    required this.track,
    required this.position,
    required this.volume,
    required this.route,
    required this.outputSpec,
    required this.queuedNext,
    required this.framesWritten,
  });

  factory PlayerStatus.fromJson(Map<String, Object?> json) {
    final track = json['track'] as Map<String, Object?>?;
    final spec = json['output_spec'] as Map<String, Object?>?;
    return PlayerStatus(
      state: PlaybackState.values.byName(json['state'] as String),
      trackId: (json['track_id'] as num?)?.toInt(),
      track: track == null ? null : TrackInfo.fromJson(track),
      position: Duration(milliseconds: (json['position_ms'] as num).toInt()),
      volume: (json['volume'] as num).toDouble(),
      route: json['route'] as String?,
      outputSpec: spec == null
          ? null
          : StreamSpec(
              sampleRate: (spec['sample_rate'] as num).toInt(),
              channels: (spec['channels'] as num).toInt(),
            ),
      queuedNext: (json['queued_next'] as num?)?.toInt(),
      framesWritten: (json['frames_written'] as num).toInt(),
    );
  }

  final PlaybackState state;

  /// The current track's id (as in [TrackStarted.trackId]); `null` when nothing plays.
  final int? trackId;

  /// The current track, with its tags and ReplayGain values; `null` when nothing plays.
  final TrackInfo? track;
  final Duration position;
  final double volume;

  /// The route as events describe it (`null`, `device`, `wav:/tmp/out.wav`, ...); `null`
  /// when there is none.
  final String? route;

  /// The open output's format; `null` while no output is open.
  final StreamSpec? outputSpec;

  /// The id of the track queued to follow without a gap, if any.
  final int? queuedNext;
  final int framesWritten;
}

/// A client session of the runtime: commands, and the events it receives.
///
/// Events are pushed: the player owns a [ReceivePort] whose native port it hands to
/// `stellatune_player_set_event_port`, and the runtime's event pump thread posts every event
/// to it as a JSON string (`NativeApi.postCObject`, which [StellatuneRuntime.ensureInitialized]
/// handed over). Nothing on this isolate polls or blocks. Each post also renews the player's
/// lease, and an idle port gets a `heartbeat` (not forwarded) at least every 250 ms.
///
/// After a hot restart the old isolate's port is closed: the runtime's next post to it fails
/// and evicts the old player at once, and its playback stops if it was the last one.
final class Player {
  Player._(this._runtime, this.clientId) {
    _port = ReceivePort('stellatune player $clientId');
    _port.listen(_onMessage);
    _watchdog = Timer.periodic(_silenceLimit, (_) => _checkSilence());
  }

  /// Starts a client session on [runtime] (default: [StellatuneRuntime.instance]) whose
  /// events come to this isolate.
  factory Player.attach([StellatuneRuntime? runtime]) {
    final owner = runtime ?? StellatuneRuntime.instance;
    final bindings = owner.bindings;
    final out = calloc<Uint64>();
    final int clientId;
    try {
      checkStatus(bindings, bindings.playerCreateClient(out));
      clientId = out.value;
    } finally {
      calloc.free(out);
    }
    final player = Player._(owner, clientId);
    try {
      checkStatus(bindings,
          bindings.playerSetEventPort(clientId, player._port.sendPort.nativePort));
    } on StellatuneException {
      player._detach();
      bindings.playerDisposeClient(clientId);
      rethrow;
    }
    owner._players.add(player);
    return player;
  }

  /// A live port gets something (an event or a heartbeat) at least every 250 ms. Silence
  /// this long means the runtime dropped the player (shut down, evicted): one call finds out.
  static const Duration _silenceLimit = Duration(seconds: 2);

  /// Statuses that mean the client is gone already: disposing it again is not an error.
  static const Set<int> _gone = {
    stellatuneErrClientDisposed,
    stellatuneErrClientEvicted,
    stellatuneErrNotInitialized,
    stellatuneErrShuttingDown,
  };

  final StellatuneRuntime _runtime;

  /// The runtime's id of this client.
  final int clientId;

  late final ReceivePort _port;
  late final Timer _watchdog;
  DateTime _lastMessage = DateTime.now();
  final StreamController<PlayerEvent> _events = StreamController<PlayerEvent>.broadcast();
  bool _detached = false;

  /// The events of this player, in order. A broadcast stream: events that arrive while
  /// nobody listens are dropped. When the player is evicted or the runtime shuts down, the
  /// stream reports a [StellatuneException] and closes.
  Stream<PlayerEvent> get events => _events.stream;

  /// Whether [dispose] was called or the runtime dropped this player.
  bool get isDetached => _detached;

  StellatuneBindings get _bindings => _runtime.bindings;

  void _onMessage(Object? message) {
    _lastMessage = DateTime.now();
    if (_detached || message is! String) return;
    final event = PlayerEvent.parse(message);
    if (event is Heartbeat) return; // the runtime probing the port
    _events.add(event);
  }

  /// No post for [_silenceLimit]: ask the runtime whether this player still exists.
  void _checkSilence() {
    if (_detached || DateTime.now().difference(_lastMessage) < _silenceLimit) return;
    final bindings = _bindings;
    final status = bindings.playerSetEventPort(clientId, _port.sendPort.nativePort);
    if (status == stellatuneOk) return;
    final error = exceptionFor(bindings, status);
    _detach();
    _events.addError(error);
    unawaited(_events.close());
  }

  void _detach() {
    if (_detached) return;
    _detached = true;
    _watchdog.cancel();
    _port.close();
    _runtime._players.remove(this);
  }

  void _call(int Function(StellatuneBindings bindings) call) {
    if (_detached) throw StateError('the player is detached');
    final bindings = _bindings;
    checkStatus(bindings, call(bindings));
  }

  void _callWithText(String text, int Function(StellatuneBindings bindings, Pointer<Utf8> text) call) {
    if (_detached) throw StateError('the player is detached');
    final bindings = _bindings;
    using((arena) {
      checkStatus(bindings, call(bindings, text.toNativeUtf8(allocator: arena)));
    });
  }

  /// Opens the file at [path] and plays it at once, replacing whatever played. The file is
  /// opened on this thread (milliseconds on a local disk).
  void play(String path) => _callWithText(path, (b, p) => b.playerPlay(clientId, p));

  /// Queues the file at [path] to follow the current track without a gap.
  void queueNext(String path) => _callWithText(path, (b, p) => b.playerQueueNext(clientId, p));

  void pause() => _call((b) => b.playerPause(clientId));

  void resume() => _call((b) => b.playerResume(clientId));

  /// Stops and forgets the current and queued tracks; the route stays.
  void stop() => _call((b) => b.playerStop(clientId));

  void seek(Duration position) => _call((b) => b.playerSeekMs(clientId, position.inMilliseconds));

  /// A linear gain from 0.0 to 2.0 (1.0 = unchanged).
  void setVolume(double volume) => _call((b) => b.playerSetVolume(clientId, volume));

  /// Sets how ReplayGain applies, for every player (one engine): it ramps in within the
  /// track playing and switches exactly at a gapless join. A gain outside ±24 dB is a
  /// [StellatuneException] with [stellatuneErrInvalidArgument].
  void setReplayGain(ReplayGainSettings settings) => _callWithText(
      jsonEncode(settings.toJson()), (b, json) => b.playerSetReplaygain(clientId, json));

  void applyRoute(OutputRoute route) => _callWithText(
      jsonEncode(route.toJson()), (b, json) => b.outputRouteApply(clientId, json));

  void clearRoute() => _call((b) => b.outputRouteClear(clientId));

  /// Sets the DSP chain (docs/plugins.md), applied in order between the decoder and the
  /// output; an empty list removes it. A stage that fails later while playing is removed
  /// with a [PlaybackError] event, and the music goes on.
  void setDspChain(List<DspStage> chain) => _callWithText(
      jsonEncode([for (final stage in chain) stage.toJson()]),
      (b, json) => b.playerSetDspChain(clientId, json));

  /// A snapshot of the engine as this player sees it: state, current track (with its tags),
  /// position, volume, route and output format.
  PlayerStatus status() {
    if (_detached) throw StateError('the player is detached');
    final bindings = _bindings;
    return readJson(
      bindings,
      'stellatune_player_status_json',
      (buf, cap, outLen) => bindings.playerStatusJson(clientId, buf, cap, outLen),
      (json) => PlayerStatus.fromJson(json as Map<String, Object?>),
    );
  }

  /// Ends the session: the runtime forgets the client (stopping playback if it was the last
  /// one), then the port closes and [events] closes. A player the runtime dropped already
  /// (evicted, shut down) is disposed without an error. Idempotent.
  void dispose() {
    if (_detached) {
      if (!_events.isClosed) unawaited(_events.close());
      return;
    }
    final bindings = _bindings;
    // Native side first: the port closing first would make the next post evict the client.
    final status = bindings.playerDisposeClient(clientId);
    _detach();
    final error =
        status == stellatuneOk || _gone.contains(status) ? null : exceptionFor(bindings, status);
    unawaited(_events.close());
    if (error != null) throw error;
  }
}
