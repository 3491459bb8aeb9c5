#!/usr/bin/env bash
# The project's test command (the README's second set-up command).
set -euo pipefail
cd "$(dirname "$0")/.."
# Plugin and sidecar tests load cdylibs and run binaries (the test plugins, the ASIO plugin,
# its sidecar, the CLI) that `cargo test` does not build by itself: build them, and lay out
# the installable plugin directories, first.
# The test build of the C ABI accepts `fault_injection` (the stress gate's self-tests prove
# it fails when it should); release artifacts are built without that feature. Build and tests
# use the same features, so the tests do not rebuild the cdylib without it.
features=(--features stellatune-ffi/fault-injection)
cargo build --workspace "${features[@]}"
bash scripts/package-plugins.sh debug
# The `device` feature (cpal) is off in the run above. A second, small run builds it for the
# engine and the C ABI and runs the tests that need it: real ALSA through cpal with the PCMs
# the tests define (`alsa`), and the device list through the C ABI with system devices in it
# (`devices`). It needs the ALSA headers (`.ci/run` installs libasound2-dev).
device_features=(--features stellatune-audio/device,stellatune-ffi/device,stellatune-ffi/fault-injection)
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${features[@]}" --no-fail-fast
  cargo nextest run -p stellatune-audio -p stellatune-ffi "${device_features[@]}" \
    -E 'binary(alsa) | binary(devices)' --no-fail-fast
else
  cargo test --workspace "${features[@]}" --no-fail-fast
  cargo test -p stellatune-audio -p stellatune-ffi "${device_features[@]}" \
    --test alsa --test devices --no-fail-fast
fi
