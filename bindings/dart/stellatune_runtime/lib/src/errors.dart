import 'dart:ffi';

import 'package:ffi/ffi.dart';

import 'bindings.g.dart';

/// A call into the runtime returned a negative status.
final class StellatuneException implements Exception {
  const StellatuneException(this.code, this.name, this.message);

  /// The status, one of the `stellatuneErr*` constants.
  final int code;

  /// Its symbolic name from `stellatune_error_name`, e.g. `STELLATUNE_ERR_NOT_FOUND`.
  final String name;

  /// `stellatune_last_error` right after the failing call: it names the function and the
  /// cause, e.g. `stellatune_player_play: file not found: /music/a.flac`.
  final String message;

  @override
  String toString() => 'StellatuneException($name, $code): $message';
}

/// Throws a [StellatuneException] unless [status] is `STELLATUNE_OK`.
///
/// Call it in the same synchronous block as the failing call (no `await` in between): the
/// last error is per OS thread, and an isolate moves between threads only while it is idle.
void checkStatus(StellatuneBindings bindings, int status) {
  if (status != stellatuneOk) throw exceptionFor(bindings, status);
}

/// The exception for [status], with the name and the last error read now.
StellatuneException exceptionFor(StellatuneBindings bindings, int status) =>
    StellatuneException(status, bindings.errorName(status).toDartString(), lastError(bindings));

/// The message of the last failed call on this thread (cut only past 64 KiB).
String lastError(StellatuneBindings bindings) {
  for (var capacity = 1024;; capacity *= 4) {
    final buf = calloc<Uint8>(capacity);
    try {
      final status = bindings.lastError(buf.cast<Utf8>(), capacity);
      if (status != stellatuneErrBufferTooSmall || capacity >= 65536) {
        return buf.cast<Utf8>().toDartString();
      }
    } finally {
      calloc.free(buf);
    }
  }
}
