#!/usr/bin/env bash
# Scale-out under fire: Debian's nginx (round-robin, `proxy_next_upstream error timeout`) in front
# of 3 server instances that share nothing but the engine, load from wrk through nginx, and one
# instance killed with SIGKILL mid-run and started again. It checks that no logged-in request was
# answered as anonymous, and afterwards that every session is still logged in with its visits.
# Loopback only; everything it starts it stops by pid.
#
#   scripts/scale-out.sh [redis|filesystem] [seconds, default 12] [connections, default 32]
#
# Needs nginx (nginx-light will do), wrk, curl, and redis-server for the redis type.
set -euo pipefail
cd "$(dirname "$0")/.."
TYPE=${1:-redis}
DURATION=${2:-12}
CONNS=${3:-32}
command -v nginx >/dev/null || { echo "nginx is missing: apt-get install -y nginx-light" >&2; exit 1; }
source scripts/lib.sh

NGINX_PID=
REDIS_PID=
# Instances' pids are in files: one is started again from a subshell.
instance_pids() { cat "$WORK"/instance-*/pid 2>/dev/null || true; }
stop_all() {
  local p
  for p in $(instance_pids) $NGINX_PID $REDIS_PID; do kill "$p" 2>/dev/null || true; done
  for p in $(instance_pids) $NGINX_PID $REDIS_PID; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done
}
trap 'stop_all; cleanup' EXIT

case "$TYPE" in
  redis)
    command -v redis-server >/dev/null || { echo "redis-server is missing: apt-get install -y redis-server" >&2; exit 1; }
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$WORK" --logfile "$WORK/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
    TABLES="[session]
type = \"redis\"
lifetime = 3600
[session.redis]
url = \"redis://127.0.0.1:$REDIS_PORT\""
    AUTH=""
    ;;
  filesystem)
    TABLES="[session]
type = \"filesystem\"
lifetime = 3600
[session.filesystem]
dir = \"$WORK/shared/sessions\""
    AUTH="users_db = \"$WORK/shared/users.db\""
    ;;
  *) echo "usage: $0 [redis|filesystem] [seconds] [connections]" >&2; exit 2 ;;
esac

# The same signing key on every instance: docs/scaling.md's rule.
export SESSION_SERVER_SECRET_KEY=$(head -c 64 /dev/urandom | base64 -w0)

PORTS=("$(free_port)" "$(free_port)" "$(free_port)")
# start_instance N: instance N in its own folder with its own config, on its own port.
start_instance() {
  local n=$1 dir="$WORK/instance-$1" port=${PORTS[$1]}
  mkdir -p "$dir"
  cat > "$dir/config.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
workers = 2
$TABLES
[auth]
bcrypt_cost = 4
max_failed_logins = 100000
$AUTH
TOML
  (cd "$dir" && RUST_LOG=warn exec "$BIN" --config config.toml 2>>server.log) &
  echo $! > "$dir/pid"
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0; sleep 0.02; done
  echo "instance $n did not start:" >&2; cat "$dir/server.log" >&2; exit 1
}
for n in 0 1 2; do start_instance "$n"; done

PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  upstream sessions {
    server 127.0.0.1:${PORTS[0]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${PORTS[1]} max_fails=1 fail_timeout=2s;
    server 127.0.0.1:${PORTS[2]} max_fails=1 fail_timeout=2s;
    keepalive 64;
  }
  server {
    listen 127.0.0.1:$PORT;
    location / {
      proxy_pass http://sessions;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_next_upstream error timeout;
      proxy_connect_timeout 1s;
    }
  }
}
NGINX
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

COOKIES="$WORK/cookies"
login_sessions "$CONNS" "$COOKIES"
echo "$TYPE: 3 instances on ports ${PORTS[*]} behind nginx on $PORT; $CONNS logged-in sessions, ${DURATION}s of load" >&2

# Mid-run: SIGKILL instance 1 a third of the way in, start it again two seconds later.
(
  sleep "$(echo "$DURATION / 3" | bc -l)"
  victim=$(cat "$WORK/instance-1/pid")
  kill -KILL "$victim"
  while kill -0 "$victim" 2>/dev/null; do sleep 0.01; done
  echo "killed instance 1 (pid $victim) with SIGKILL" >&2
  sleep 2
  start_instance 1
  echo "instance 1 started again" >&2
) &
KILLER=$!
OUT=$(COOKIE_FILE=$COOKIES WRK_THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency \
      -s scripts/wrk-scale-out.lua "http://127.0.0.1:$PORT/")
wait "$KILLER"

echo "$OUT" >&2
CHECKED=$(echo "$OUT" | grep '^checked:')
RPS=$(echo "$OUT" | awk '/Requests\/sec/ {print $2}')
P99=$(echo "$OUT" | awk '$1 == "99%" {print $2}')
TOTAL=$(echo "$OUT" | awk '/requests in/ {print $1}')
ANON=$(echo "$CHECKED" | sed 's/.*anonymous=\([0-9]*\).*/\1/')
ERRS=$(echo "$CHECKED" | sed 's/.*server_errors=\([0-9]*\).*/\1/')

# Afterwards: every session is still logged in, on every instance.
LOST=0
while read -r cookie; do
  for port in "${PORTS[@]}"; do
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Cookie: $cookie" "http://127.0.0.1:$port/api/session")
    [ "$status" = 200 ] || LOST=$((LOST + 1))
  done
done < "$COOKIES"

printf '%s\t%s req in %ss\t%s req/s\tp99 %s\tanonymous %s\t5xx %s\tsessions lost afterwards %s of %s\n' \
  "$TYPE" "$TOTAL" "$DURATION" "$RPS" "$P99" "$ANON" "$ERRS" "$LOST" "$CONNS"
[ "$ANON" = 0 ] && [ "$LOST" = 0 ]
