#!/usr/bin/env bash
# Prints the workspace's crate graph: for each workspace crate, the workspace crates it depends
# on (normal dependencies; dev-dependencies left out), as docs/architecture.md shows it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo metadata --format-version 1 --no-deps | jq -r '
  [.packages[].name] as $ws
  | .packages[]
  | [.name, ([.dependencies[] | select(.kind == null) | .name | select(. as $d | $ws | index($d))] | unique)]
  | "\(.[0]) -> \(if (.[1] | length) == 0 then "(none)" else (.[1] | join(", ")) end)"' | sort
