#!/usr/bin/env bash
# Login flood benchmark: what a flood of password checks does to a logged-in page. The release
# binary, with the shipped bcrypt cost (12) and the file store, serves one logged-in session's
# `GET /` to wrk (1 thread, 4 connections) for a quiet run, then again while FLOOD clients
# (default 64) post wrong passwords for that same existing user to `POST /login` as fast as they
# are answered. The throttle is raised out of the way (`max_failed_logins = 100000`), so every
# flood request that is let in costs a real bcrypt check rather than a cheap 429. Loopback only;
# every process it starts it stops by pid.
#
#   scripts/bench-login-flood.sh [seconds per run, default 10] [flood clients, default 64]
#   OLD_BIN=path/to/older/session-server scripts/bench-login-flood.sh   # also that build, same run
#   SERVER_BIN=path/to/session-server scripts/bench-login-flood.sh      # that build, not target/release
#
# Prints, per build, GET / requests/s, p50 and p99 while quiet and while flooded, the ratio
# flooded p99 / quiet p99 (target <= 4), and the flood's own rate and status mix (303 a login
# that got in, 401 a wrong password checked, 429 throttled, 503 refused: too many checks at once).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
FLOOD=${2:-64}
# The flood starts this many seconds before the flooded GET / run and ends as long after it.
SETTLE=2
source scripts/lib.sh

FLOOD_PID=
stop_flood() {
  if [ -n "$FLOOD_PID" ]; then kill "$FLOOD_PID" 2>/dev/null || true; wait "$FLOOD_PID" 2>/dev/null || true; FLOOD_PID=; fi
}
trap 'stop_flood; cleanup' EXIT

load() { cut -d' ' -f1-3 /proc/loadavg; }

# The flood: every request posts the same form (user id, a wrong password, the anonymous CSRF
# token) with the matching signed CSRF cookie. Counts the answers by status; prints them at the end.
FLOOD_LUA="$WORK/flood.lua"
cat > "$FLOOD_LUA" <<'LUA'
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  form = "user_id=" .. os.getenv("FLOOD_USER") .. "&password=not-the-password&csrf_token=" .. os.getenv("FLOOD_TOKEN")
  headers = {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = os.getenv("FLOOD_COOKIE"),
  }
end

function request()
  return wrk.format("POST", "/login", headers, form)
end

function response(status, headers, body)
  local k = tostring(status)
  counts[k] = (counts[k] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("counts")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %s %d\n", k, v)) end
end
LUA

# logged_in COOKIE: whether GET / shows that session as logged in.
logged_in() { curl -fs -H "Cookie: $1" "http://127.0.0.1:$PORT/" | grep -q 'id="user"'; }

# measure_get COOKIE: the logged-in GET / under wrk; sets RPS, P50, P99 (as wrk prints them) and
# ERRORS (socket errors and non-2xx answers, as wrk words them, or "none").
measure_get() {
  local out
  out=$(wrk -t1 -c4 -d"${DURATION}s" --timeout 10s --latency -H "Cookie: $1" "http://127.0.0.1:$PORT/")
  RPS=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P50=$(echo "$out" | awk '$1 == "50%" {print $2}')
  P99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  ERRORS=$(echo "$out" | { grep -E 'Socket errors|Non-2xx' || true; } | sed 's/^ *//' | paste -sd';' -)
  ERRORS=${ERRORS:-none}
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
# run_build NAME: one build (the one start_flood_server runs) quiet, then flooded.
run_build() {
  local name=$1 base cookie jar="$WORK/$1/jar" csrf_cookie token status flood_out
  # The shipped bcrypt cost, the throttle out of the way (lib.sh: max_failed_logins = 100000).
  BCRYPT_COST=12 start_server "$name" 'type = "filesystem"' "dir = \"$WORK/$name/sessions\""
  base="http://127.0.0.1:$PORT"
  # One user, one logged-in session (lib.sh: user bench, password benchmark-pw).
  login_sessions 1 "$WORK/$name/cookies"
  cookie=$(head -1 "$WORK/$name/cookies")
  logged_in "$cookie" || { echo "$name: the session is not logged in" >&2; exit 1; }
  # One anonymous CSRF token and its signed cookie, reused by every flood request.
  rm -f "$jar"
  token=$(curl -fs -c "$jar" "$base/login" | grep -o 'name="csrf_token" value="[^"]*"' | head -1 | sed 's/.*value="//; s/"$//')
  csrf_cookie=$(awk '$6 ~ /_csrf$/ { print $6 "=" $7 }' "$jar")
  [ -n "$token" ] && [ -n "$csrf_cookie" ] || { echo "$name: no CSRF token" >&2; exit 1; }
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $csrf_cookie" \
    --data "user_id=bench&password=not-the-password&csrf_token=$token" "$base/login")
  [ "$status" = 401 ] || { echo "$name: a wrong password got $status, not 401" >&2; exit 1; }

  echo "$name: quiet GET / (load $(load))" >&2
  measure_get "$cookie"
  printf '%s\tquiet\t%s\t%s\t%s\t%s\t-\t-\n' "$name" "$RPS" "$P50" "$P99" "$ERRORS" >> "$RESULTS"

  echo "$name: GET / while $FLOOD clients post wrong passwords (load $(load))" >&2
  flood_out="$WORK/$name/flood.txt"
  FLOOD_USER=bench FLOOD_TOKEN=$token FLOOD_COOKIE=$csrf_cookie \
    wrk -t1 -c"$FLOOD" -d"$(( DURATION + 2 * SETTLE ))s" --timeout 30s -s "$FLOOD_LUA" "$base/login" \
    > "$flood_out" 2>&1 &
  FLOOD_PID=$!
  sleep "$SETTLE"
  measure_get "$cookie"
  wait "$FLOOD_PID" || true
  FLOOD_PID=
  echo "$name: flood done (load $(load))" >&2
  local flood_rps mix
  flood_rps=$(awk '/Requests\/sec/ {print $2}' "$flood_out")
  mix=$(awk '$1 == "status" { print $2 ": " $3 }' "$flood_out" | sort | paste -sd',' - | sed 's/,/, /g')
  grep -E 'Socket errors' "$flood_out" | sed "s/^ */$name flood: /" >&2 || true
  printf '%s\tflooded\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$RPS" "$P50" "$P99" "$ERRORS" "$flood_rps" "$mix" >> "$RESULTS"
  logged_in "$cookie" || echo "$name: the session was no longer logged in after the flood" >&2
  stop_server
}

echo "machine: $(nproc) cores; $DURATION s per run; GET / by 4 connections; flood $FLOOD clients" >&2
run_build new
if [ -n "${OLD_BIN:-}" ]; then
  SERVER_BIN=$OLD_BIN run_build before
fi

awk -F'\t' '
  # wrk prints latencies as 850.00us, 1.23ms or 1.02s.
  function ms(t) { if (t ~ /us$/) return t / 1000; if (t ~ /ms$/) return t + 0; if (t ~ /s$/) return t * 1000; return t + 0 }
  $2 == "quiet" { quiet[$1] = ms($5) }
  { rows[NR] = $0 }
  END {
    printf "%-8s %-8s %9s %9s %9s %10s %10s  %s\n", "build", "GET /", "req/s", "p50", "p99", "p99/quiet", "flood r/s", "flood statuses"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, "\t")
      r = (f[1] in quiet && quiet[f[1]] > 0) ? sprintf("%.2f", ms(f[5]) / quiet[f[1]]) : "-"
      printf "%-8s %-8s %9.0f %9s %9s %10s %10s  %s\n", f[1], f[2], f[3], f[4], f[5], r, f[7], f[8]
      if (f[6] != "none") printf "         (%s %s: %s)\n", f[1], f[2], f[6]
    }
  }' "$RESULTS"
echo "(p99/quiet: flooded p99 over the same build's quiet p99, target <= 4; flood statuses: 303 logged in, 401 wrong password checked, 429 throttled, 503 too many checks at once)"
