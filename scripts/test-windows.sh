#!/usr/bin/env bash
# Windows from Linux: cross-builds the workspace for x86_64-pc-windows-gnu, lints it (and
# type-checks x86_64-pc-windows-msvc), then runs the whole test suite under Wine.
# Prints one closing line `N passed, N failed` and exits non-zero on any failure.
#
# Honours CARGO_TARGET_DIR (default: target/windows, so that the other compiler used here
# does not invalidate the native build's artifacts in target/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export CARGO_TERM_COLOR=never DEBIAN_FRONTEND=noninteractive

# --- packages -----------------------------------------------------------------------------
# rustup cannot add targets here; Debian's rustc ships with the std sources that -Zbuild-std
# needs (rust-web-src), and mingw links. Wine runs the result.
packages=(rustc-web cargo-web rust-web-src rust-web-clippy binutils-mingw-w64-x86-64
  gcc-mingw-w64-x86-64 wine64 wine python3)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's toolchain first (rustup's shims would pick a toolchain without rust-src);
# RUSTC_BOOTSTRAP lets that stable compiler take -Zbuild-std.
export PATH="/usr/bin:$PATH" RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/windows}"
# Absolute: the tests run in their crate's directory and find the C smoke program through it.
case "$CARGO_TARGET_DIR" in /*) ;; *) CARGO_TARGET_DIR="$root/$CARGO_TARGET_DIR" ;; esac
# Native thread-locals (the PE `.tls` section) instead of std's TlsAlloc keys, which every copy
# of a plugin library took and FreeLibrary never gave back (1088 per process): the loader frees
# a DLL's `.tls` slot when it unloads. The linker is mingw's gcc plus a fix of GNU ld's base
# relocations for thread-local offsets (scripts/windows/mingw-link.py; docs/windows.md).
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS="-Zhas-thread-local=yes ${CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUSTFLAGS:-}"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER="$root/scripts/windows/mingw-link.py"
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$root/scripts/windows/wine-runner.sh"
target=x86_64-pc-windows-gnu
# Plain -Zbuild-std builds panic_unwind too, which the FFI panic guards need.
cargo_win=(-Zbuild-std --target "$target")
# The test build of the C ABI accepts `fault_injection`, as in scripts/test.sh. The sidecar's
# `cpal` feature is linted but not tested: under Wine its device enumeration does not answer
# (and its `asio` feature needs the ASIO SDK, which is not here).
features=(--features stellatune-ffi/fault-injection)

# --- Wine prefix --------------------------------------------------------------------------
# A fresh prefix per run, one persistent wineserver for the whole run (starting one per
# process races at start-up), no debug chatter, no Mono/Gecko installers.
export WINEPREFIX
WINEPREFIX="$(mktemp -d "${TMPDIR:-/tmp}/stellatune-wine.XXXXXX")"
export WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
cleanup() {
  wineserver -k >/dev/null 2>&1 || true
  rm -rf "$WINEPREFIX"
}
trap cleanup EXIT

start=$(date +%s)
echo "== wine prefix $WINEPREFIX"
wineserver -p
wineboot -i >/dev/null 2>&1
# Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8 lacks: without a
# stand-in no Rust program starts (exit 53).
x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c -lbcrypt

echo "== build ($target)"
# Libraries (the cdylibs the tests load), binaries (sidecar, CLI, gate) and test binaries in
# one go, so that the test run below builds nothing and no test needs to run cargo.
cargo build "${cargo_win[@]}" --workspace --lib --bins --tests "${features[@]}"
bash scripts/package-plugins.sh debug --target "$target"
# Every image went through the linker's relocation fix (a plugin DLL without it faults at its
# first thread-local access once it is loaded away from its preferred base).
python3 scripts/windows/mingw-link.py --check "$CARGO_TARGET_DIR/$target/debug"/*.dll \
  "$CARGO_TARGET_DIR/$target/debug"/*.exe
# There is no C compiler inside Wine: the C ABI tests run this build of tests/c/smoke.c and
# tests/c/ports.c (the flags of their Linux counterparts), linked to the DLL the test binary
# was built with.
out="$CARGO_TARGET_DIR/$target/debug"
for program in smoke ports; do
  x86_64-w64-mingw32-gcc -Wall -Wextra -Werror -std=c11 -pedantic -I crates/stellatune-ffi/include \
    "crates/stellatune-ffi/tests/c/$program.c" -o "$out/c-$program.exe" "$out/deps/stellatune_ffi.dll"
done
export STELLATUNE_C_SMOKE_EXE="$out/c-smoke.exe" STELLATUNE_C_PORTS_EXE="$out/c-ports.exe"

echo "== tests under Wine"
# No backtraces: capturing one makes Wine's dbghelp keep a panicking plugin's library loaded,
# which the unload checks would count as a leak.
export RUST_BACKTRACE=0
# 1500 plugin generations, past Windows' 1088 TLS indexes: a leak of one index per copy of a
# plugin library would fail the churn test (5000, the Linux count, takes about 6 minutes
# under Wine).
export STELLATUNE_CHURN_GENERATIONS="${STELLATUNE_CHURN_GENERATIONS:-1500}"
# One process per test, as scripts/test.sh runs them on Linux with nextest: tests that count
# this process's child processes or threads must not see a neighbouring test's. Cargo takes
# -Zbuild-std from the environment here, since nextest passes no -Z flags on.
log="$CARGO_TARGET_DIR/test-windows.log"
set +e
if cargo nextest --version >/dev/null 2>&1; then
  CARGO_UNSTABLE_BUILD_STD=std cargo nextest run --target "$target" --workspace --lib --bins \
    --tests "${features[@]}" --no-fail-fast --failure-output final 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # `Summary [...] N tests run: P passed, F failed, ...` (counts absent when zero).
  summary=$(grep -E '^ *Summary ' "$log" | tail -1)
  passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
  failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
  timed_out=$(sed -nE 's/.* ([0-9]+) timed out.*/\1/p' <<<"$summary")
  passed=${passed:-0}
  failed=$(( ${failed:-0} + ${timed_out:-0} ))
  if [ -z "$summary" ]; then failed=$(( failed + 1 )); fi
else
  # Without nextest: one test at a time in each binary, for the same reason.
  cargo test "${cargo_win[@]}" --workspace --lib --bins --tests "${features[@]}" --no-fail-fast \
    -- --test-threads 1 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  # One line per test binary (`test result: ... N passed; M failed; ...`); a binary that died
  # without one (a crash) counts as one failure.
  read -r passed failed < <(awk '
    /^ *Running / { if (open) crashed++; open = 1 }
    /^test result:/ {
      open = 0
      for (i = 1; i <= NF; i++) {
        if ($(i + 1) ~ /^passed;?$/) p += $i
        if ($(i + 1) ~ /^failed;?$/) f += $i
      }
    }
    END { if (open) crashed++; print p + 0, f + crashed }' "$log")
fi
set -e

# Lints and the msvc type-check run after the tests, so one run reports everything; any
# failure still fails the script.
lint_failed=()
echo "== clippy ($target, all targets)"
cargo clippy "${cargo_win[@]}" --workspace --all-targets "${features[@]}" \
  --features stellatune-ffi/device,stellatune-cli/device,stellatune-sidecar-host/cpal \
  -- -D warnings || lint_failed+=(clippy)

# The msvc type-check builds a second std and the workspace once more (about 4 minutes cold
# on 2 cores); CI leaves it out to stay within its time budget (STELLATUNE_MSVC_CHECK=0).
if [ "${STELLATUNE_MSVC_CHECK:-1}" = 1 ]; then
  echo "== check (x86_64-pc-windows-msvc)"
  cargo check -Zbuild-std --target x86_64-pc-windows-msvc --workspace --all-targets \
    "${features[@]}" --features stellatune-sidecar-host/cpal || lint_failed+=("msvc check")
fi

echo "windows: $(( $(date +%s) - start )) s"
# The lints' output came after the tests': repeat why each failing test failed, so that the
# last lines of a failed run (all a CI report may keep) say it.
if [ "$failed" -ne 0 ]; then
  echo "== why the failing tests failed (from $log)"
  grep -E "^ +(FAIL|TIMEOUT|SIG[A-Z]+) \[" "$log" | sort -u || true
  grep -A8 "panicked at" "$log" | tail -80 || true
fi
if [ ${#lint_failed[@]} -gt 0 ]; then echo "FAILED: ${lint_failed[*]}"; fi
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ ${#lint_failed[@]} -gt 0 ]; then
  exit 1
fi
