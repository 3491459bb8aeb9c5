import 'dart:convert';
import 'dart:ffi';
import 'dart:typed_data';

import 'package:ffi/ffi.dart';

import 'bindings.g.dart';
import 'errors.dart';

/// The output-buffer protocol of the C ABI, handled in one place: a function writes into
/// `buf` of `cap` bytes and sets `*out_len`; when the output does not fit it returns
/// `STELLATUNE_ERR_BUFFER_TOO_SMALL` with `*out_len` = the size needed, and the buffer grows
/// to that size and the call is repeated.
final class NativeBuffer {
  NativeBuffer([int capacity = 1024])
      : _capacity = capacity,
        _buf = calloc<Uint8>(capacity),
        _outLen = calloc<Size>();

  Pointer<Uint8> _buf;
  int _capacity;
  final Pointer<Size> _outLen;
  bool _freed = false;

  /// Calls [call] with this buffer until the output fits, and returns `*out_len` (bytes
  /// written, without the NUL of text). Throws a [StellatuneException] for any other status.
  int fill(
    StellatuneBindings bindings,
    int Function(Pointer<Uint8> buf, int cap, Pointer<Size> outLen) call,
  ) {
    if (_freed) throw StateError('NativeBuffer used after free()');
    // The size needed can change between two calls (metrics, the plugin list), so a few
    // rounds are allowed before giving up.
    for (var round = 0;; round++) {
      final status = call(_buf, _capacity, _outLen);
      if (status == stellatuneOk) return _outLen.value;
      if (status != stellatuneErrBufferTooSmall || round >= 8) {
        throw exceptionFor(bindings, status);
      }
      _grow(_outLen.value);
    }
  }

  /// The first [length] bytes as UTF-8 text.
  String text(int length) => _buf.cast<Utf8>().toDartString(length: length);

  /// A copy of the first [length] bytes.
  Uint8List bytes(int length) => Uint8List.fromList(_buf.asTypedList(length));

  void _grow(int needed) {
    final capacity = needed > _capacity ? needed : _capacity * 2;
    calloc.free(_buf);
    _buf = calloc<Uint8>(capacity);
    _capacity = capacity;
  }

  /// Releases the native memory; the buffer cannot be used afterwards.
  void free() {
    if (_freed) return;
    _freed = true;
    calloc.free(_buf);
    calloc.free(_outLen);
  }
}

/// Runs a text (`*_json`) function and returns its output.
String readText(
  StellatuneBindings bindings,
  int Function(Pointer<Utf8> buf, int cap, Pointer<Size> outLen) call,
) {
  final buffer = NativeBuffer();
  try {
    final length = buffer.fill(bindings, (buf, cap, outLen) => call(buf.cast<Utf8>(), cap, outLen));
    return buffer.text(length);
  } finally {
    buffer.free();
  }
}

/// Runs a text function and reads its JSON document with [parse], once. A document
/// without the shape [parse] expects is a [FormatException] naming [function].
T readJson<T>(
  StellatuneBindings bindings,
  String function,
  int Function(Pointer<Utf8> buf, int cap, Pointer<Size> outLen) call,
  T Function(Object? json) parse,
) {
  final text = readText(bindings, call);
  try {
    return parse(jsonDecode(text));
  } on TypeError catch (e) {
    throw FormatException('$function wrote JSON of another shape: $e', text);
  } on ArgumentError catch (e) {
    throw FormatException('$function wrote JSON of another shape: $e', text);
  }
}

/// Runs a binary function (`stellatune_media_cover`) and returns a copy of its output.
Uint8List readBytes(
  StellatuneBindings bindings,
  int Function(Pointer<Uint8> buf, int cap, Pointer<Size> outLen) call, {
  int initialCapacity = 64 * 1024,
}) {
  final buffer = NativeBuffer(initialCapacity);
  try {
    return buffer.bytes(buffer.fill(bindings, call));
  } finally {
    buffer.free();
  }
}
