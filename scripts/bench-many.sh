#!/usr/bin/env bash
# Load benchmark with many live sessions: each request carries another of N logged-in sessions
# (100,000 by default), so the read cache and the unchanged-expiry memo must hold them all to
# help. Loopback only; every server it starts it stops by pid.
#
#   scripts/bench-many.sh [sessions, default 100000] [seconds per run, default 10]
#   OLD_BIN=path/to/older/session-server scripts/bench-many.sh   # adds that build, same run
#
# The sessions are written straight into each setup's folder by examples/populate, which also
# signs one cookie per session with the setup's secret key. Setups: the file store with the read
# cache on and off, and OLD_BIN (with its cache on) when given. Prints requests/s, latency, server
# CPU per request and memory, with ratios to the uncached file store.
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${1:-100000}
DURATION=${2:-10}
CONNS=32
source scripts/lib.sh
cargo build --release --quiet --example populate
POP=$PWD/target/release/examples/populate
RESULTS="$WORK/results.tsv"
: > "$RESULTS"

# run_setup NAME READ_CACHE KEY_PURPOSE [BINARY]
run_setup() {
  local name=$1 dir="$WORK/$1"
  mkdir -p "$dir"
  "$POP" "$dir/sessions" "$SESSIONS" 0 "$dir/cookies" "$dir/secret.key" "$3" 2>/dev/null
  SERVER_BIN=${4:-} start_server "$name" 'type = "filesystem"' "dir = \"$dir/sessions\"
read_cache = $2"
  # One untimed pass first, so that every session has been read once (the process starts cold,
  # and each session is only met every SESSIONS / (req/s) seconds).
  run_wrk /api/session "$dir/cookies" "$DURATION" "$CONNS"
  for path in /api/session /; do
    run_wrk "$path" "$dir/cookies" "$DURATION" "$CONNS"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$path" "$RPS" "$P50" "$P99" "$PER_CPU" "$(rss_mib "$SERVER_PID")" >> "$RESULTS"
  done
  stop_server
}

echo "machine: $(nproc) cores; $SESSIONS sessions, $DURATION s per run, $CONNS connections" >&2
run_setup uncached false session
run_setup cached true session
if [ -n "${OLD_BIN:-}" ]; then run_setup cached-before true master "$OLD_BIN"; fi

awk -F'\t' '
  $1 == "uncached" { base_rps[$2] = $3; base_cpu[$2] = $6 }
  { rows[NR] = $0 }
  END {
    printf "%-16s %-13s %10s %9s %9s %12s %9s %9s %9s\n", "setup", "endpoint", "req/s", "p50", "p99", "req/CPU-s", "RSS MiB", "rps/unc", "cpu/unc"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      printf "%-16s %-13s %10.0f %9s %9s %12s %9s %9.2f %9.2f\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[3] / base_rps[f[2]], base_cpu[f[2]] / f[6]
    }
  }' "$RESULTS"
echo "(rps/unc, cpu/unc: throughput and CPU per request relative to the file store without the read cache)"
