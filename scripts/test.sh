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
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace "${features[@]}" --no-fail-fast
else
  cargo test --workspace "${features[@]}" --no-fail-fast
fi
