#!/usr/bin/env bash
# The whole release gate in one command, on release builds of the cdylib, the stress gate
# and the packaged ASIO plugin:
#   1. the 50-cycle hot-restart gate on the ASIO sidecar route (scripts/stress.sh's run:
#      plugin:asio@null, both modes, plugin install/reload/uninstall churn);
#   2. a soak of the same route (default 30 minutes): both modes, seek and pause each
#      cycle, churn with uninstall;
#   3. the lifecycle hammer (default 60 s): 8 threads calling every C ABI function at random.
# Writes summary.md (date, machine, commit, each part's figures and verdict) into the report
# directory, target/release-gate/<UTC timestamp>/ unless --out says otherwise. Exit code 0
# when every part passed, 1 when one failed, 2 when the build or the arguments did.
#
#   bash scripts/release-gate.sh                      # 30-minute soak, 60 s hammer
#   bash scripts/release-gate.sh --soak 3m --hammer 20s
#   STELLATUNE_GATE_SOAK=2m bash scripts/release-gate.sh
set -uo pipefail
cd "$(dirname "$0")/.."

soak="${STELLATUNE_GATE_SOAK:-30m}"
hammer="${STELLATUNE_GATE_HAMMER:-60s}"
cycles=50
out=""
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --soak) soak="$2"; shift 2 ;;
    --hammer) hammer="$2"; shift 2 ;;
    --cycles) cycles="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "release-gate: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
report="${out:-target/release-gate/$stamp}"
mkdir -p "$report"
report="$(cd "$report" && pwd)"
started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
# What is built and run is the tree as it is now: record it before the (long) run, not after.
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
dirty="$(git status --porcelain 2>/dev/null | wc -l | tr -d ' ')"

# package-plugins.sh lays out every plugin, the test plugins' too.
echo "== build (release): cdylib, gate, ASIO plugin and sidecar"
if ! cargo build --release -p stellatune-ffi -p hot-restart-stress \
    -p stellatune-plugin-asio -p stellatune-sidecar-host -p stellatune-test-plugins; then
  echo "release-gate: build failed" >&2
  exit 2
fi
bash scripts/package-plugins.sh release >/dev/null || exit 2
bin=target/release/hot-restart-stress
plugin=target/release/plugins/asio
route=(--route plugin:asio@null --install-plugin "$plugin"
  --plugin-churn "$plugin" --churn-uninstall-every 3)

names=()
verdicts=()
walls=()
dirs=()
failed=0
# run NAME ARGS...: runs one part with its output in the terminal and in NAME.log.
run() {
  local name="$1"; shift
  echo
  echo "== $name: $bin $*"
  local t0=$SECONDS status
  "$bin" "$@" --out "$report/$name" 2>&1 | tee "$report/$name.log"
  status=${PIPESTATUS[0]}
  names+=("$name")
  walls+=("$((SECONDS - t0)) s")
  dirs+=("$(ls -d "$report/$name"/*/ 2>/dev/null | head -n 1)")
  case "$status" in
    0) verdicts+=("PASS") ;;
    1) verdicts+=("FAIL"); failed=1 ;;
    *) verdicts+=("ERROR (exit $status)"); failed=1 ;;
  esac
}

run asio-gate --cycles "$cycles" --mode both "${route[@]}"
run soak --duration "$soak" --mode both --seek --pause "${route[@]}"
run hammer hammer --duration "$hammer" --threads 8 --install-plugin "$plugin"

verdict=PASS
[ "$failed" -eq 0 ] || verdict=FAIL
memory="$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo 2>/dev/null)"
summary="$report/summary.md"
{
  echo "# Release gate: $verdict"
  echo
  echo "- date: $started (finished $(date -u '+%H:%M:%S UTC'))"
  echo "- machine: \`$(uname -a)\`; $(nproc 2>/dev/null || echo '?') cores, ${memory:-? memory}"
  echo "- commit: \`$commit\`$([ "$dirty" -gt 0 ] && echo " with $dirty uncommitted file(s)")"
  echo "- toolchain: \`$(rustc --version)\`"
  echo "- parts: $cycles-cycle gate and a $soak soak on \`plugin:asio@null\` with plugin churn (uninstall every 3 cycles), then a $hammer hammer with 8 threads"
  echo
  echo "| part | verdict | wall time | report |"
  echo "| --- | --- | --- | --- |"
  for i in "${!names[@]}"; do
    echo "| ${names[$i]} | ${verdicts[$i]} | ${walls[$i]} | \`${dirs[$i]:-none}\` |"
  done
  for i in "${!names[@]}"; do
    echo
    echo "## ${names[$i]}: ${verdicts[$i]}"
    echo
    part_md="${dirs[$i]}summary.md"
    if [ -n "${dirs[$i]}" ] && [ -f "$part_md" ]; then
      # The part's own report, its headings moved two levels down.
      sed -e 's/^## /#### /' -e 's/^# /### /' "$part_md"
    else
      echo "No report; the last lines of its output:"
      echo
      echo '```'
      tail -n 30 "$report/${names[$i]}.log"
      echo '```'
    fi
    closing="$(grep -E '^(verdict: |hammer: (PASS|FAIL)|clients bound: )' "$report/${names[$i]}.log")"
    if [ -n "$closing" ]; then
      echo
      echo '```'
      echo "$closing"
      echo '```'
    fi
  done
} > "$summary"

echo
echo "release gate: $verdict ($(for i in "${!names[@]}"; do printf '%s %s; ' "${names[$i]}" "${verdicts[$i]}"; done | sed 's/; $//'))"
echo "summary: $summary"
exit "$failed"
