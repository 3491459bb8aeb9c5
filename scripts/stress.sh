#!/usr/bin/env bash
# The hot-restart stress gate (apps/hot-restart-stress): builds the cdylib and the gate in
# release, then runs 50 simulated hot restarts alternating with and without
# prepare_hot_restart. Exit code 0 = pass. Extra arguments go to the gate, e.g.
#   bash scripts/stress.sh --route plugin:asio@null
#   bash scripts/stress.sh --duration 30m            # soak
# The report lands in target/hot-restart-stress/<timestamp>/ (summary.md, summary.json,
# samples.csv, trend.svg, child.log).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p stellatune-ffi -p hot-restart-stress
target/release/hot-restart-stress --cycles 50 --mode both "$@"
