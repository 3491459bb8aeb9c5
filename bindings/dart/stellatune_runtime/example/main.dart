// A minimal Flutter desktop player: a path field, an output device picker, what plays now
// (title, artist, album and cover from the file's tags), play/pause/stop, a seek slider, a
// ReplayGain switch and the event list. Run it with `flutter run -d <windows|linux|macos> -t
// main.dart` from this directory (see the package README for the native library).
//
// The player starts on the system default output (`OutputRoute.device`); the picker lists
// `StellatuneRuntime.outputDevices()` (system devices and plugin targets) and plays on the
// chosen entry's route. An unplugged device shows as `output_lost` / `output_changed`
// events in the list while the runtime moves playback to the default and back.
//
// The ReplayGain switch (off, track, album) sets the engine's loudness normalisation; it
// applies from the track playing on (docs/ffi.md, "Loudness").

import 'dart:async';
import 'dart:ui' show AppExitResponse;

import 'package:flutter/material.dart';
import 'package:stellatune_runtime/stellatune_runtime.dart';

void main() {
  WidgetsFlutterBinding.ensureInitialized();
  // Every start, hot restarts included: starts the runtime or reuses the surviving one.
  StellatuneRuntime.ensureInitialized(const StellatuneConfig(logFilter: 'info'));
  runApp(const PlayerApp());
}

class PlayerApp extends StatelessWidget {
  const PlayerApp({super.key});

  @override
  Widget build(BuildContext context) => MaterialApp(
        title: 'StellaTune',
        theme: ThemeData(useMaterial3: true),
        home: const PlayerScreen(),
      );
}

class PlayerScreen extends StatefulWidget {
  const PlayerScreen({super.key});

  @override
  State<PlayerScreen> createState() => _PlayerScreenState();
}

class _PlayerScreenState extends State<PlayerScreen> {
  final TextEditingController _path = TextEditingController();
  final List<PlayerEvent> _log = [];
  late final Player _player;
  late final StreamSubscription<PlayerEvent> _subscription;
  late final AppLifecycleListener _lifecycle;

  PlaybackState _state = PlaybackState.stopped;
  Duration _position = Duration.zero;
  Duration? _duration;

  /// The track playing (from its `track_started` event) and its embedded cover, if any.
  TrackInfo? _track;
  Uint8List? _cover;

  ReplayGainMode _replayGain = ReplayGainMode.off;

  /// The slider's value while the user drags it (the position events keep coming).
  double? _dragMs;

  /// Every output the runtime can play to now (`StellatuneRuntime.outputDevices`), and the
  /// `id` of the one chosen; the first entry follows the system default.
  List<OutputDevice> _devices = const [];
  String? _deviceId;

  @override
  void initState() {
    super.initState();
    _player = Player.attach();
    _subscription = _player.events.listen(_onEvent, onError: (Object error) {
      _show('Player detached: $error');
    });
    _guard(() => _player.applyRoute(OutputRoute.device));
    // The engine keeps its ReplayGain setting across a hot restart: start it where the
    // switch shows it.
    _guard(() => _player.setReplayGain(ReplayGainSettings(_replayGain)));
    _refreshDevices();
    // The app-exit hook: dispose the player and shut the runtime down before the process
    // ends, so its threads are joined.
    _lifecycle = AppLifecycleListener(onExitRequested: () async {
      StellatuneRuntime.instance.shutdown();
      return AppExitResponse.exit;
    });
  }

  @override
  void dispose() {
    _lifecycle.dispose();
    unawaited(_subscription.cancel());
    _player.dispose();
    _path.dispose();
    super.dispose();
  }

  void _onEvent(PlayerEvent event) {
    setState(() {
      _log.insert(0, event);
      if (_log.length > 200) _log.removeLast();
      switch (event) {
        case StateChanged(:final state):
          _state = state;
          if (state == PlaybackState.stopped) {
            _position = Duration.zero;
            _track = null;
            _cover = null;
          }
        case TrackStarted(:final track):
          _track = track;
          _cover = _readCover(track.path);
          _duration = track.duration;
          _position = Duration.zero;
        case PositionChanged(:final position, :final duration):
          _position = position;
          _duration = duration ?? _duration;
        case PlaybackError(:final message):
          _show(message);
        case OutputLost(:final message):
          _show('Output lost, reconnecting: $message');
        default:
          break;
      }
    });
  }

  /// The embedded cover of the file at [path], or `null` when it has none (or cannot be
  /// read: the track plays all the same).
  static Uint8List? _readCover(String path) {
    try {
      return StellatuneRuntime.instance.cover(path);
    } on StellatuneException {
      return null;
    }
  }

  /// Reads the device list again (it changes as devices come and go).
  void _refreshDevices() {
    _guard(() {
      final devices = StellatuneRuntime.instance.outputDevices();
      setState(() {
        _devices = devices;
        _deviceId ??= devices.isEmpty ? null : devices.first.id;
      });
    });
  }

  /// Plays on the device with this `id`: its entry's `route` is what the runtime takes.
  void _chooseDevice(String? id) {
    final entry = _devices.where((d) => d.id == id).firstOrNull;
    if (entry == null) return;
    _guard(() {
      _player.applyRoute(entry.route);
      setState(() => _deviceId = id);
    });
  }

  /// Switches ReplayGain (for every player: the engine is shared).
  void _setReplayGain(ReplayGainMode mode) {
    _guard(() {
      _player.setReplayGain(ReplayGainSettings(mode));
      setState(() => _replayGain = mode);
    });
  }

  /// Runs a command and shows a failure instead of throwing.
  void _guard(void Function() command) {
    try {
      command();
    } on StellatuneException catch (e) {
      _show('${e.name}: ${e.message}');
    } on StateError catch (e) {
      _show(e.message);
    }
  }

  void _show(String message) {
    WidgetsBinding.instance.addPostFrameCallback((_) {
      if (!mounted) return;
      ScaffoldMessenger.of(context).showSnackBar(SnackBar(content: Text(message)));
    });
  }

  @override
  Widget build(BuildContext context) {
    final totalMs = (_duration?.inMilliseconds ?? 0).toDouble();
    final positionMs = (_dragMs ?? _position.inMilliseconds.toDouble()).clamp(0.0, totalMs).toDouble();
    return Scaffold(
      appBar: AppBar(title: const Text('StellaTune')),
      body: Padding(
        padding: const EdgeInsets.all(16),
        child: Column(
          crossAxisAlignment: CrossAxisAlignment.stretch,
          children: [
            Row(children: [
              Expanded(
                child: TextField(
                  controller: _path,
                  decoration: const InputDecoration(labelText: 'Audio file path'),
                  onSubmitted: (path) => _guard(() => _player.play(path)),
                ),
              ),
              const SizedBox(width: 8),
              FilledButton(
                onPressed: () => _guard(() => _player.play(_path.text)),
                child: const Text('Play'),
              ),
            ]),
            const SizedBox(height: 16),
            Row(children: [
              const Text('Output: '),
              Expanded(
                child: DropdownButton<String>(
                  isExpanded: true,
                  value: _deviceId,
                  items: [
                    for (final d in _devices)
                      DropdownMenuItem(
                        value: d.id,
                        child: Text('${d.name} (${d.backend})${d.isDefault ? ' *' : ''}'),
                      ),
                  ],
                  onChanged: _chooseDevice,
                ),
              ),
              IconButton(
                tooltip: 'Refresh the device list',
                icon: const Icon(Icons.refresh),
                onPressed: _refreshDevices,
              ),
            ]),
            const SizedBox(height: 8),
            _NowPlaying(track: _track, cover: _cover),
            const SizedBox(height: 8),
            Row(children: [
              const Text('ReplayGain: '),
              SegmentedButton<ReplayGainMode>(
                segments: const [
                  ButtonSegment(value: ReplayGainMode.off, label: Text('Off')),
                  ButtonSegment(value: ReplayGainMode.track, label: Text('Track')),
                  ButtonSegment(value: ReplayGainMode.album, label: Text('Album')),
                ],
                selected: {_replayGain},
                onSelectionChanged: (selection) => _setReplayGain(selection.single),
              ),
              if (_track?.replayGain case ReplayGainInfo(:final trackGainDb?))
                Padding(
                  padding: const EdgeInsets.only(left: 8),
                  child: Text('track gain ${trackGainDb.toStringAsFixed(2)} dB'),
                ),
            ]),
            Row(children: [
              IconButton(
                tooltip: _state == PlaybackState.playing ? 'Pause' : 'Resume',
                icon: Icon(_state == PlaybackState.playing ? Icons.pause : Icons.play_arrow),
                onPressed: _state == PlaybackState.stopped
                    ? null
                    : () => _guard(_state == PlaybackState.playing ? _player.pause : _player.resume),
              ),
              IconButton(
                tooltip: 'Stop',
                icon: const Icon(Icons.stop),
                onPressed: () => _guard(_player.stop),
              ),
              Expanded(
                child: Slider(
                  max: totalMs > 0 ? totalMs : 1,
                  value: totalMs > 0 ? positionMs : 0,
                  onChanged: totalMs > 0 ? (v) => setState(() => _dragMs = v) : null,
                  onChangeEnd: (v) {
                    setState(() => _dragMs = null);
                    _guard(() => _player.seek(Duration(milliseconds: v.round())));
                  },
                ),
              ),
              Text('${_format(Duration(milliseconds: positionMs.round()))} / '
                  '${_duration == null ? '--:--' : _format(_duration!)}'),
            ]),
            const Divider(),
            Text('Events', style: Theme.of(context).textTheme.titleMedium),
            Expanded(
              child: ListView.builder(
                itemCount: _log.length,
                itemBuilder: (context, i) => Text(
                  _log[i].toString(),
                  style: const TextStyle(fontFamily: 'monospace', fontSize: 12),
                ),
              ),
            ),
          ],
        ),
      ),
    );
  }

  static String _format(Duration d) {
    final minutes = d.inMinutes.toString().padLeft(2, '0');
    final seconds = (d.inSeconds % 60).toString().padLeft(2, '0');
    return '$minutes:$seconds';
  }
}

/// Title, artist and album of the track playing (the file name when it has no title), and
/// its cover.
class _NowPlaying extends StatelessWidget {
  const _NowPlaying({required this.track, required this.cover});

  final TrackInfo? track;
  final Uint8List? cover;

  @override
  Widget build(BuildContext context) {
    final track = this.track;
    if (track == null) return const Text('Nothing playing');
    final tags = track.tags;
    final title = tags.title ?? track.path.split(RegExp(r'[/\\]')).last;
    final details = [
      tags.artist ?? tags.albumArtist,
      tags.album,
      if (tags.date != null) tags.date,
    ].whereType<String>().join(' · ');
    final cover = this.cover;
    return Row(children: [
      SizedBox.square(
        dimension: 64,
        child: cover == null
            ? const Icon(Icons.album, size: 48)
            : Image.memory(cover, fit: BoxFit.cover, gaplessPlayback: true),
      ),
      const SizedBox(width: 12),
      Expanded(
        child: Column(crossAxisAlignment: CrossAxisAlignment.start, children: [
          Text(title, style: Theme.of(context).textTheme.titleMedium),
          if (details.isNotEmpty) Text(details),
          Text('${track.codec}, ${track.sampleRate} Hz, ${track.channels} ch',
              style: Theme.of(context).textTheme.bodySmall),
        ]),
      ),
    ]);
  }
}
