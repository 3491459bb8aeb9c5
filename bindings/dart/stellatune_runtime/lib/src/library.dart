import 'dart:ffi';
import 'dart:io';

/// The file name of the `stellatune_ffi` cdylib on this platform, as Cargo builds it
/// (`crates/stellatune-ffi`, `[lib] name = "stellatune_ffi"`).
String get stellatuneLibraryName {
  if (Platform.isWindows) return 'stellatune_ffi.dll';
  if (Platform.isMacOS) return 'libstellatune_ffi.dylib';
  if (Platform.isLinux) return 'libstellatune_ffi.so';
  throw UnsupportedError(
      'stellatune_runtime runs on Windows, Linux and macOS, not ${Platform.operatingSystem}');
}

/// Opens the native library: [path] when given, else [stellatuneLibraryName] through the
/// platform's search rules (next to the executable on Windows, the bundle's `lib/` on Linux,
/// the app's Frameworks on macOS).
DynamicLibrary openStellatuneLibrary({String? path}) =>
    DynamicLibrary.open(path ?? stellatuneLibraryName);
