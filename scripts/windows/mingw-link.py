#!/usr/bin/env python3
"""Linker for x86_64-pc-windows-gnu (scripts/test-windows.sh): mingw's gcc, then a fix of the
image's base relocations.

The Windows build uses native thread-locals (`-Zhas-thread-local=yes`, docs/windows.md): code
reaches a thread-local at `[TLS block + offset]`, the offset being a section-relative
IMAGE_REL_AMD64_SECREL in `.text`. GNU ld (binutils 2.40, pe-dll.c `generate_reloc`) emits a
base relocation for every non-PC-relative 32-bit relocation it sees, SECREL included, so a
DLL loaded anywhere but its preferred base (every second plugin generation; every load under
ASLR) gets each such offset shifted by the load delta and its first thread-local access
faults. A PE32+ image has no other use for 32-bit (HIGHLOW) base relocations, since a 32-bit
absolute address cannot reach an image above 4 GiB, so this turns each of them into padding
(ABSOLUTE), which the loader skips.

Usage: the target's linker (`CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER`), called with gcc's
arguments; `--check IMAGE...` names the images that still have HIGHLOW base relocations
(exit 1 if any).
"""

import struct
import subprocess
import sys

GCC = "x86_64-w64-mingw32-gcc"
IMAGE_REL_BASED_ABSOLUTE = 0
IMAGE_REL_BASED_HIGHLOW = 3
PE32_PLUS = 0x20B
BASE_RELOC_DIRECTORY = 5


def expand(args):
    """The arguments with each `@file` (rustc's response files: one argument a line, `\\`
    escaping) replaced by its contents."""
    out = []
    for arg in args:
        if arg.startswith("@"):
            with open(arg[1:], encoding="utf-8") as f:
                for line in f.read().splitlines():
                    out.append(unescape(line))
        else:
            out.append(arg)
    return out


def unescape(line):
    chars, i = [], 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            i += 1
        chars.append(line[i])
        i += 1
    return "".join(chars)


def output_of(args):
    for i, arg in enumerate(args):
        if arg == "-o" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("-o") and len(arg) > 2:
            return arg[2:]
    return None


def highlow_entries(image):
    """Offsets (in `image`) of the HIGHLOW entries of a PE32+ image's base relocation table;
    None if `image` is not PE32+ or has no table."""
    if image[:2] != b"MZ":
        return None
    pe = struct.unpack_from("<I", image, 0x3C)[0]
    if image[pe : pe + 4] != b"PE\0\0":
        return None
    sections = struct.unpack_from("<H", image, pe + 6)[0]
    optional_size = struct.unpack_from("<H", image, pe + 20)[0]
    optional = pe + 24
    if struct.unpack_from("<H", image, optional)[0] != PE32_PLUS:
        return None
    rva, size = struct.unpack_from("<II", image, optional + 112 + BASE_RELOC_DIRECTORY * 8)
    if not rva or not size:
        return None
    header = optional + optional_size
    offset = None
    for s in range(sections):
        virtual_size, virtual_address, raw_size, raw_pointer = struct.unpack_from(
            "<IIII", image, header + 40 * s + 8
        )
        if virtual_address <= rva < virtual_address + max(virtual_size, raw_size):
            offset = raw_pointer + rva - virtual_address
    if offset is None:
        return None
    found, end = [], offset + size
    while offset + 8 <= end:
        block = struct.unpack_from("<I", image, offset + 4)[0]
        if block < 8:
            break
        for entry in range(offset + 8, offset + block, 2):
            if struct.unpack_from("<H", image, entry)[0] >> 12 == IMAGE_REL_BASED_HIGHLOW:
                found.append(entry)
        offset += block
    return found


def fix(path):
    with open(path, "rb") as f:
        image = bytearray(f.read())
    entries = highlow_entries(image)
    if not entries:
        return 0
    for entry in entries:
        struct.pack_into("<H", image, entry, IMAGE_REL_BASED_ABSOLUTE)
    with open(path, "wb") as f:
        f.write(image)
    return len(entries)


def main():
    if sys.argv[1:2] == ["--check"]:
        bad = 0
        for path in sys.argv[2:]:
            with open(path, "rb") as f:
                count = len(highlow_entries(f.read()) or [])
            if count:
                print(f"{path}: {count} HIGHLOW base relocations left", file=sys.stderr)
            bad += count
        return 1 if bad else 0
    status = subprocess.call([GCC] + sys.argv[1:])
    if status != 0:
        return status
    output = output_of(expand(sys.argv[1:]))
    if output and output.lower().endswith((".dll", ".exe")):
        fix(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
