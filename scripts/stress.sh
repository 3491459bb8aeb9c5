#!/usr/bin/env bash
# The hot-restart stress gate of the design (apps/hot-restart-stress): builds the release
# cdylib, the gate and the packaged ASIO plugin, then runs 50 simulated hot restarts on the
# ASIO sidecar route (plugin:asio@null), alternating with and without prepare_hot_restart,
# on the runtime's default lease, with plugin churn: every cycle installs the plugin again
# and reloads (a new generation while it plays), every 3rd cycle also uninstalls and
# re-installs it (alternately while it plays and after the route was cleared).
# Exit code 0 = pass. Extra arguments go to the gate and override these, e.g.
#   bash scripts/stress.sh --cycles 200
#   bash scripts/stress.sh --duration 30m --seek --pause       # soak
#   bash scripts/stress.sh --route null                         # without the sidecar
# The report lands in target/hot-restart-stress/<timestamp>/ (summary.md, summary.json,
# samples.csv, trend.svg, child.log).
set -euo pipefail
cd "$(dirname "$0")/.."
# package-plugins.sh lays out every plugin, the test plugins' too.
cargo build --release -p stellatune-ffi -p hot-restart-stress \
  -p stellatune-plugin-asio -p stellatune-sidecar-host -p stellatune-test-plugins
bash scripts/package-plugins.sh release >/dev/null
plugin=target/release/plugins/asio
# A soak (--duration) runs until its time is up, not 50 cycles.
cycles=(--cycles 50)
for arg in "$@"; do
  case "$arg" in --duration|--duration=*) cycles=() ;; esac
done
exec target/release/hot-restart-stress "${cycles[@]}" --mode both \
  --route plugin:asio@null \
  --install-plugin "$plugin" \
  --plugin-churn "$plugin" --churn-uninstall-every 3 \
  "$@"
