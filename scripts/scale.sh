#!/usr/bin/env bash
# Scale check for the file store: 1k vs 1M session files on disk (start-up time, throughput,
# memory), and the expired-session sweeper deleting 200k files under load (its rate, and the
# p99 latency of GET / meanwhile against the same load without a sweep).
#
#   scripts/scale.sh [seconds per run, default 10]
#   SCALE_SIZES=1000 OLD_BIN=path/to/older/session-server scripts/scale.sh   # skip 1M; sweeper before/after
#
# The populated folders are made once by examples/populate under target/bench-sessions/<n>/
# (1M files take about a minute and 4 GiB of disk) and shared with `cargo bench --bench store`.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNS=32
source scripts/lib.sh
cargo build --release --quiet --example populate
POP=$PWD/target/release/examples/populate

populated() {
  local root="target/bench-sessions/$1"
  if [ ! -f "$root/keys.txt" ]; then
    rm -rf "$root"; mkdir -p "$root"
    "$POP" "$root/sessions" "$1" 0 "$root/keys.txt" >&2
  fi
  echo "$PWD/$root/sessions"
}

printf '%-10s %11s %10s %14s %10s %9s %9s\n' "files" "start-up" "GET / r/s" "GET /api r/s" "p99 GET /" "RSS start" "RSS end"
declare -A RPS_OF P99_OF
for n in ${SCALE_SIZES:-1000 1000000}; do
  dir=$(populated "$n")
  start_server "scale-$n" 'type = "filesystem"' "dir = \"$dir\""
  rss_start=$(rss_mib "$SERVER_PID")
  login_sessions "$CONNS" "$WORK/scale-$n/cookies"
  run_wrk / "$WORK/scale-$n/cookies" "$DURATION" "$CONNS"; RPS_OF[$n]=$RPS; P99_OF[$n]=$P99
  get_rps=$RPS
  run_wrk /api/session "$WORK/scale-$n/cookies" "$DURATION" "$CONNS"
  printf '%-10s %9sms %10.0f %14.0f %10s %8sM %8sM\n' "$n" "$STARTUP_MS" "$get_rps" "$RPS" "${P99_OF[$n]}" "$rss_start" "$(rss_mib "$SERVER_PID")"
  stop_server
done
[ -n "${RPS_OF[1000000]:-}" ] && echo "GET / with 1M files: $(echo "${RPS_OF[1000000]} / ${RPS_OF[1000]}" | bc -l | xargs printf '%.2f')x the 1k figure"

# The sweeper: 200k expired files beside 1k live ones, swept while GET / is under load; with
# OLD_BIN set, the same again with that build, for a before/after in one run.
run_sweep() {
  local name=$1 sweep_dir="$WORK/$1/sessions"
  "$POP" "$sweep_dir" 1000 200000 >&2
  SERVER_BIN=${2:-} SERVER_LOG=session_server=info start_server "$name" 'type = "filesystem"' "dir = \"$sweep_dir\"
cleanup_interval = \"2s\""
  login_sessions "$CONNS" "$WORK/$name/cookies"
  run_wrk / "$WORK/$name/cookies" "$DURATION" "$CONNS"
  for _ in $(seq 100); do grep -q "session sweep" "$WORK/$name/server.log" && break; sleep 0.2; done
  local line expired ms
  line=$(grep "session sweep" "$WORK/$name/server.log" | head -1)
  expired=$(echo "$line" | grep -o 'expired=[0-9]*' | cut -d= -f2)
  ms=$(echo "$line" | grep -o 'elapsed_ms=[0-9]*' | cut -d= -f2)
  stop_server
  echo "$name: deleted $expired expired files in $ms ms = $(echo "$expired * 1000 / $ms" | bc) files/s, under load"
  echo "$name: GET / during the sweep: $RPS r/s, p99 $P99 (without a sweep, 1k files: ${RPS_OF[1000]} r/s, p99 ${P99_OF[1000]})"
}
run_sweep sweep
if [ -n "${OLD_BIN:-}" ]; then run_sweep sweep-before "$OLD_BIN"; fi
