#!/usr/bin/env bash
# N identical gunicorn replicas of the shop behind a local nginx, run as plain processes with their
# pids, logs and the generated nginx config under one folder ($REPLICAS_DIR, default .devstack/replicas/).
#
#   devstack/replicas.sh run [N]     foreground (`make run REPLICAS=N`): Ctrl-C stops everything cleanly
#   devstack/replicas.sh up [N]      background (tests, benchmarks): returns once every replica is ready
#   devstack/replicas.sh down        stop nginx, then each replica gracefully (SIGTERM: drain, then exit)
#   devstack/replicas.sh status      show what runs where
#   devstack/replicas.sh start I     start replica I again (after a crash or a stop)
#   devstack/replicas.sh stop I      gracefully stop replica I
#
# Replica I listens on 127.0.0.1:$((REPLICA_BASE_PORT + I)) and answers with `X-Served-By: replica-I`;
# nginx listens on $HOST:$PORT and balances round-robin. With N=1 there is no nginx: the one replica
# serves $HOST:$PORT directly, as `make run` always did (NGINX=1 puts nginx in front anyway).
# nginx is the Debian package, installed on first use by devstack/stack.sh (no system service runs).
# The replicas need the services from `devstack/stack.sh up` and a migrated database.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVSTACK_DIR="${DEVSTACK_DIR:-$ROOT/.devstack}"
REPLICAS_DIR="${REPLICAS_DIR:-$DEVSTACK_DIR/replicas}"
VENV="${VENV:-$ROOT/.venv}"
GUNICORN="${GUNICORN:-$VENV/bin/gunicorn}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
REPLICA_BASE_PORT="${REPLICA_BASE_PORT:-8100}"
START_TIMEOUT="${START_TIMEOUT:-60}"
# How long `stop` waits for a replica to drain before SIGKILL: gunicorn's graceful_timeout plus a margin.
STOP_TIMEOUT="${STOP_TIMEOUT:-$(( ${GUNICORN_GRACEFUL_TIMEOUT:-20} + 5 ))}"
MAX_REPLICAS=50

LOGS="$REPLICAS_DIR/logs"
TOPOLOGY="$REPLICAS_DIR/topology"
mkdir -p "$LOGS" "$REPLICAS_DIR/tmp"

say() { printf '[replicas] %s\n' "$*"; }
die() { printf '[replicas] ERROR: %s\n' "$*" >&2; exit 1; }

# Running, and not a zombie: a process that exited stays one until its new parent (init) reaps it.
proc_alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }
pid_alive() { [ -f "$1" ] && proc_alive "$(cat "$1")"; }

replica_pidfile() { echo "$REPLICAS_DIR/replica-$1.pid"; }
replica_log() { echo "$LOGS/replica-$1.log"; }
nginx_pidfile() { echo "$REPLICAS_DIR/nginx.pid"; }

# The topology of the running set (replica count, ports, nginx or not), written by `up`/`run` and
# read by the other commands, so `start 2` puts replica 2 back where nginx expects it.
save_topology() {
  printf 'REPLICAS=%s\nHOST=%s\nPORT=%s\nREPLICA_BASE_PORT=%s\nWITH_NGINX=%s\n' \
    "$REPLICAS" "$HOST" "$PORT" "$REPLICA_BASE_PORT" "$WITH_NGINX" >"$TOPOLOGY"
}

load_topology() {
  [ -f "$TOPOLOGY" ] || die "nothing started from $REPLICAS_DIR (run 'devstack/replicas.sh up N' first)"
  # shellcheck disable=SC1090
  . "$TOPOLOGY"
}

replica_address() {
  if [ "$WITH_NGINX" = 1 ]; then echo "127.0.0.1:$((REPLICA_BASE_PORT + $1))"; else echo "$HOST:$PORT"; fi
}

http_ok() { curl -fsS -o /dev/null -m 2 "http://$1$2" 2>/dev/null; }

# Fails with the log named and its tail shown, so a broken start is diagnosable from CI output.
fail_with_log() {
  local message=$1 log=$2
  printf '[replicas] ERROR: %s. Log: %s\n' "$message" "$log" >&2
  [ -f "$log" ] && tail -n 30 "$log" >&2
  exit 1
}

start_replica() {
  local i=$1 pidfile log address
  pidfile=$(replica_pidfile "$i"); log=$(replica_log "$i"); address=$(replica_address "$i")
  if pid_alive "$pidfile"; then say "replica-$i: already running on $address"; return 0; fi
  [ -x "$GUNICORN" ] || die "gunicorn not found at $GUNICORN: run 'make venv'"
  local trust=false
  [ "$WITH_NGINX" = 1 ] && trust=true
  # Its own session: Ctrl-C in the terminal reaches this script only, which then stops each replica
  # gracefully; and `kill -- -PID` reaches the whole replica (master and workers), like a container kill.
  # TRUST_X_FORWARDED_FOR: behind our nginx, login throttling must count the client, not nginx.
  (
    cd "$ROOT"
    SERVED_BY="replica-$i" TRUST_X_FORWARDED_FOR="${TRUST_X_FORWARDED_FOR:-$trust}" \
      exec setsid "$GUNICORN" shopcart.wsgi -c shopcart/gunicorn_conf.py --bind "$address" \
      --name "shopcart-replica-$i" >>"$log" 2>&1 </dev/null
  ) &
  echo $! >"$pidfile"
}

wait_replica_ready() {
  local i=$1 pidfile address
  pidfile=$(replica_pidfile "$i"); address=$(replica_address "$i")
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    http_ok "$address" /readyz && { say "replica-$i: ready on http://$address"; return 0; }
    pid_alive "$pidfile" || fail_with_log "replica-$i exited while starting" "$(replica_log "$i")"
    sleep 0.1
  done
  fail_with_log "replica-$i was not ready within ${START_TIMEOUT}s" "$(replica_log "$i")"
}

# Graceful: SIGTERM to the master, which drains its workers; SIGKILL to the whole group if it overruns.
stop_replica() {
  local i=$1 pidfile pid
  pidfile=$(replica_pidfile "$i")
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; say "replica-$i: already stopped"; return 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do proc_alive "$pid" || break; sleep 0.1; done
  if proc_alive "$pid"; then
    say "replica-$i: still running after ${STOP_TIMEOUT}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  say "replica-$i: stopped"
}

nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || return 1
}

write_nginx_config() {
  local servers="" i
  for i in $(seq 1 "$REPLICAS"); do
    servers+="        server 127.0.0.1:$((REPLICA_BASE_PORT + i)) max_fails=1 fail_timeout=2s;"$'\n'
  done
  mkdir -p "$REPLICAS_DIR"/tmp/{client_body,proxy,fastcgi,uwsgi,scgi}
  local template="$ROOT/devstack/nginx/replicas.conf.template" line
  while IFS= read -r line || [ -n "$line" ]; do
    if [ "$line" = "@UPSTREAM_SERVERS@" ]; then printf '%s' "$servers"; continue; fi
    line=${line//@RUN_DIR@/$REPLICAS_DIR}
    line=${line//@LOG_DIR@/$LOGS}
    line=${line//@LISTEN@/$HOST:$PORT}
    printf '%s\n' "$line"
  done <"$template" >"$REPLICAS_DIR/nginx.conf"
}

start_nginx() {
  local pidfile bin
  pidfile=$(nginx_pidfile)
  if pid_alive "$pidfile"; then say "nginx: already running on http://$HOST:$PORT"; return 0; fi
  bash "$ROOT/devstack/stack.sh" ensure-package nginx
  bin=$(nginx_bin) || die "nginx is not installed (apt-get install nginx)"
  write_nginx_config
  "$bin" -t -q -p "$REPLICAS_DIR" -c "$REPLICAS_DIR/nginx.conf" -e "$LOGS/nginx-error.log" \
    || die "nginx rejected $REPLICAS_DIR/nginx.conf"
  # nginx writes its own pid file (the config's `pid`); this script does not, so no write of ours can
  # race its truncate-and-write. `setsid -w` stays the launcher's parent even when setsid has to fork
  # (called as a process group leader), so the launcher lives exactly as long as nginx.
  rm -f "$pidfile"
  (exec setsid -w "$bin" -p "$REPLICAS_DIR" -c "$REPLICAS_DIR/nginx.conf" -e "$LOGS/nginx-error.log" \
    >>"$LOGS/nginx-error.log" 2>&1 </dev/null) &
  local launcher=$!
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    if http_ok "$HOST:$PORT" /healthz && pid_alive "$pidfile"; then
      say "nginx: balancing $REPLICAS replicas on http://$HOST:$PORT"
      return 0
    fi
    proc_alive "$launcher" || fail_with_log "nginx exited while starting" "$LOGS/nginx-error.log"
    sleep 0.1
  done
  fail_with_log "nginx did not answer within ${START_TIMEOUT}s" "$LOGS/nginx-error.log"
}

# SIGQUIT is nginx's graceful shutdown: it finishes the requests it is proxying.
stop_nginx() {
  local pidfile pid
  pidfile=$(nginx_pidfile)
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
  pid=$(cat "$pidfile")
  kill -QUIT "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do proc_alive "$pid" || break; sleep 0.1; done
  if proc_alive "$pid"; then kill -KILL -- "-$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
  say "nginx: stopped"
}

all_up() {
  if [ -f "$TOPOLOGY" ] && { pid_alive "$(nginx_pidfile)" || compgen -G "$REPLICAS_DIR/replica-*.pid" >/dev/null; }; then
    local wanted="$REPLICAS/$HOST/$PORT/$REPLICA_BASE_PORT/$WITH_NGINX"
    (load_topology; [ "$REPLICAS/$HOST/$PORT/$REPLICA_BASE_PORT/$WITH_NGINX" = "$wanted" ]) \
      || die "a different set is running from $REPLICAS_DIR; stop it first: devstack/replicas.sh down"
  fi
  save_topology
  local i
  # Started together, then waited for: the replicas import Django side by side.
  for i in $(seq 1 "$REPLICAS"); do start_replica "$i"; done
  for i in $(seq 1 "$REPLICAS"); do wait_replica_ready "$i"; done
  if [ "$WITH_NGINX" = 1 ]; then start_nginx; fi
}

# A failed start leaves nothing running behind it.
start_or_clean_up() {
  ( all_up ) || { all_down >&2; exit 1; }
}

all_down() {
  [ -f "$TOPOLOGY" ] || { say "nothing to stop in $REPLICAS_DIR"; return 0; }
  load_topology
  stop_nginx
  local i pids=()
  # In parallel: each drains on its own, so stopping N replicas takes one drain, not N.
  for i in $(seq 1 "$MAX_REPLICAS"); do
    [ -f "$(replica_pidfile "$i")" ] || continue
    stop_replica "$i" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  rm -f "$TOPOLOGY"
}

all_status() {
  [ -f "$TOPOLOGY" ] || { echo "replicas: not started"; return 3; }
  load_topology
  local rc=0 i
  if [ "$WITH_NGINX" = 1 ]; then
    if pid_alive "$(nginx_pidfile)"; then echo "nginx: running http://$HOST:$PORT (round-robin over $REPLICAS)"
    else echo "nginx: stopped"; rc=3; fi
  fi
  for i in $(seq 1 "$REPLICAS"); do
    if pid_alive "$(replica_pidfile "$i")"; then echo "replica-$i: running http://$(replica_address "$i") (pid $(cat "$(replica_pidfile "$i")"))"
    else echo "replica-$i: stopped"; rc=3; fi
  done
  return $rc
}

# Foreground: start, show the replicas' logs, stop everything on Ctrl-C (or SIGTERM).
# (Every `return` in this file names its status: a bare one inside the trap handler would return the
# status of the `wait` the signal interrupted, 130, and `set -e` would end the cleanup halfway.)
run_foreground() {
  local tail_pid=""
  cleanup() {
    trap - INT TERM
    echo
    say "stopping (in-flight requests finish first)"
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null || true
    all_down
    exit "${1:-0}"
  }
  trap cleanup INT TERM
  start_or_clean_up
  say "serving the shop at http://$HOST:$PORT with $REPLICAS replica(s); logs in $LOGS; Ctrl-C stops"
  local logs=() i
  for i in $(seq 1 "$REPLICAS"); do logs+=("$(replica_log "$i")"); done
  tail -n 0 -F "${logs[@]}" &
  tail_pid=$!
  # What serves $PORT: nginx, or the one replica. If it dies, stop the rest rather than linger.
  local front="$(nginx_pidfile)" front_log="$LOGS/nginx-error.log"
  if [ "$WITH_NGINX" != 1 ]; then front="$(replica_pidfile 1)"; front_log="$(replica_log 1)"; fi
  # Short sleeps in the background, so the trap runs as soon as a signal arrives.
  while :; do
    sleep 1 &
    wait $! || true
    if ! pid_alive "$front"; then say "$(basename "$front" .pid) exited; see $front_log"; cleanup 1; fi
  done
}

check_count() {
  [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "$MAX_REPLICAS" ] \
    || die "the replica count must be a number from 1 to $MAX_REPLICAS (got '$1')"
}

cmd="${1:-status}"; shift || true
case "$cmd" in
  run|up)
    REPLICAS="${1:-${REPLICAS:-1}}"; check_count "$REPLICAS"
    WITH_NGINX=0
    if [ "$REPLICAS" -gt 1 ] || [ "${NGINX:-0}" = 1 ]; then WITH_NGINX=1; fi
    if [ "$cmd" = run ]; then run_foreground; else start_or_clean_up; fi ;;
  down) all_down ;;
  status) all_status ;;
  start|stop)
    [ $# -eq 1 ] || die "usage: devstack/replicas.sh $cmd REPLICA_NUMBER"
    load_topology; check_count "$1"
    [ "$1" -le "$REPLICAS" ] || die "replica-$1 is not part of this set of $REPLICAS"
    if [ "$cmd" = start ]; then start_replica "$1"; wait_replica_ready "$1"; else stop_replica "$1"; fi ;;
  *) die "usage: devstack/replicas.sh run|up [N] | down | status | start|stop I" ;;
esac
