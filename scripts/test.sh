#!/usr/bin/env bash
# The project's test command (the README's second set-up command).
set -euo pipefail
cd "$(dirname "$0")/.."
# Plugin and sidecar tests load cdylibs and run binaries (the test plugins, the ASIO plugin,
# its sidecar, the CLI) that `cargo test` does not build by itself: build them, and lay out
# the installable plugin directories, first.
cargo build --workspace
bash scripts/package-plugins.sh debug
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
