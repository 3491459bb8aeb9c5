#!/usr/bin/env bash
# Lays out installable plugin directories at target/<profile>/plugins/<id>/ (plugin.json,
# the library, and any sidecar executable the plugin spawns), from an existing build.
# Usage: scripts/package-plugins.sh [debug|release] [--target TRIPLE]   (default: release)
# Honours CARGO_TARGET_DIR; with --target the build is read from <target-dir>/<TRIPLE>/<profile>.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-release}"
triple=""
if [ "${2:-}" = "--target" ]; then triple="${3:?--target needs a triple}"; fi
out="${CARGO_TARGET_DIR:-target}${triple:+/$triple}/$profile"
case "${triple:-$(uname -s)}" in
  *-windows-*|MINGW*|MSYS*|CYGWIN*) prefix=""; ext=dll; exe=".exe" ;;
  *-apple-*|Darwin) prefix=lib; ext=dylib; exe="" ;;
  *) prefix=lib; ext=so; exe="" ;;
esac

package() { # id crate-dir library-stem [extra files...]
  local id="$1" dir="$2" stem="$3"; shift 3
  local dest="$out/plugins/$id"
  rm -rf "$dest"
  mkdir -p "$dest"
  sed "s/lib[a-z_]*\.so/${prefix}${stem}.${ext}/" "$dir/plugin.json" > "$dest/plugin.json"
  cp "$out/${prefix}${stem}.${ext}" "$dest/"
  for extra in "$@"; do cp "$out/$extra" "$dest/"; done
  echo "packaged $dest"
}

package asio crates/stellatune-plugin-asio stellatune_plugin_asio "stellatune-sidecar-host$exe"
package test-plugins crates/stellatune-test-plugins stellatune_test_plugins
