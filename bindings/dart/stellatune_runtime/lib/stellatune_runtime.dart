/// The StellaTune native audio runtime for Dart and Flutter desktop apps.
///
/// Call [StellatuneRuntime.ensureInitialized] once at startup (before `runApp`), attach a
/// [Player], listen to [Player.events], and call [StellatuneRuntime.shutdown] when the app
/// exits. The raw `dart:ffi` bindings ([StellatuneBindings], the status constants such as
/// [stellatuneErrNotFound]) are exported too; the typed layer calls every function of the C
/// ABI except `stellatune_player_poll_event` (a [Player] gets its events on a port).
library;

export 'src/bindings.g.dart';
export 'src/buffers.dart' show NativeBuffer;
export 'src/errors.dart' show StellatuneException;
export 'src/events.dart';
export 'src/info.dart';
export 'src/library.dart' show openStellatuneLibrary, stellatuneLibraryName;
export 'src/runtime.dart'
    show
        DspStage,
        OutputDevice,
        OutputRoute,
        Player,
        PlayerStatus,
        ReplayGainMode,
        ReplayGainSettings,
        StellatuneConfig,
        StellatuneRuntime,
        StreamSpec;
