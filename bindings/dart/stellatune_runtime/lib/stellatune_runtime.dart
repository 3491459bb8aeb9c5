/// The StellaTune native audio runtime for Dart and Flutter desktop apps.
///
/// Call [StellatuneRuntime.ensureInitialized] once at startup (before `runApp`), attach a
/// [Player], listen to [Player.events], and call [StellatuneRuntime.shutdown] when the app
/// exits. The raw `dart:ffi` bindings ([StellatuneBindings], the status constants such as
/// [stellatuneErrNotFound]) are exported too, for anything the typed layer does not cover.
library;

export 'src/bindings.g.dart';
export 'src/buffers.dart' show NativeBuffer;
export 'src/errors.dart' show StellatuneException;
export 'src/events.dart';
export 'src/library.dart' show openStellatuneLibrary, stellatuneLibraryName;
export 'src/runtime.dart' show OutputRoute, Player, StellatuneConfig, StellatuneRuntime;
