#!/usr/bin/env bash
# One PostgreSQL server from Debian's package, run as a plain process for the local stack
# (devstack/stack.sh: the single node) and the local cluster (devstack/cluster.sh: a primary and a hot
# standby). Why this way: docs/adr/0006-local-postgresql.md.
#
#   postgres.sh start                    initdb once (with the shopcart role and database), start, wait until ready
#   postgres.sh start-standby PORT       the first time, copy the primary on PORT (pg_basebackup); start as its
#                                        hot standby, wait until ready
#   postgres.sh stop                     fast shutdown (clients are disconnected), SIGKILL after PG_STOP_TIMEOUT
#   postgres.sh status                   exit 0 if running and accepting connections, 3 if not
#   postgres.sh role                     prints primary or standby
#   postgres.sh promote                  this standby becomes a primary, with no synchronous standby (it has none)
#   postgres.sh sync on|off              commits wait (or not) until a standby has them on disk
#   postgres.sh wait-streaming           until a standby streams from this primary
#   postgres.sh psql [ARGS...]           psql as the superuser, e.g. psql -c 'SELECT 1'
#   postgres.sh purge                    stop, then delete the data
#
# Env: PG_PORT (5433), PG_NAME (postgres: cluster_name and log name), PG_DATA (.devstack/data/postgres),
#      PG_LOG (.devstack/logs/postgres.log), PG_PID (.devstack/run/postgres.pid), START_TIMEOUT (60 s),
#      PG_STOP_TIMEOUT (30 s).
#
# The server refuses to run as root, so it runs as the `postgres` user the package created, with its data
# owned by that user. That user must be able to reach the data folder: when the checkout lies under a
# private folder (a `mktemp -d`, a 0700 home), the data goes to a folder of the postgres user's own
# (/var/lib/postgresql/shopcart/<hash of PG_DATA>) and PG_DATA becomes a link to it; purge deletes both.
# Only loopback connections are accepted, without a password (trust), like the stack's Redis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEVSTACK_DIR="${DEVSTACK_DIR:-$ROOT/.devstack}"
PG_PORT="${PG_PORT:-${POSTGRES_PORT:-5433}}"
PG_NAME="${PG_NAME:-postgres}"
PG_DATA="${PG_DATA:-$DEVSTACK_DIR/data/postgres}"
PG_LOG="${PG_LOG:-$DEVSTACK_DIR/logs/postgres.log}"
PG_PID="${PG_PID:-$DEVSTACK_DIR/run/postgres.pid}"
START_TIMEOUT="${START_TIMEOUT:-60}"
PG_STOP_TIMEOUT="${PG_STOP_TIMEOUT:-30}"
PG_USER=postgres
# The application's role and database (DATABASE_URL's default in shopcart/settings/base.py).
APP_ROLE=shopcart
APP_DATABASE=shopcart

say() { printf '[postgres] %s: %s\n' "$PG_NAME" "$*"; }
die() { printf '[postgres] %s: ERROR: %s\n' "$PG_NAME" "$*" >&2; exit 1; }

# The server's binaries: Debian keeps them off PATH, in `pg_config --bindir` (the newest installed version).
find_bindir() {
  local dir
  if command -v pg_config >/dev/null && dir=$(pg_config --bindir 2>/dev/null) && [ -x "$dir/postgres" ]; then
    echo "$dir"; return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$dir/postgres" ] && { echo "$dir"; return 0; }
  done
  return 1
}

BIN=$(find_bindir) || {
  bash "$ROOT/devstack/stack.sh" ensure-package postgresql initdb
  BIN=$(find_bindir) || die "no PostgreSQL server binaries after installing Debian's postgresql package"
}

as_postgres() { setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups "$@"; }
psql_super() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres "$@"; }
ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }
proc_alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }
# The server's pid: from PG_PID, or else from the lock file the server keeps in its data folder (a pid file
# lost, say, with a deleted .devstack/run), which is then written back to PG_PID.
running_pid() {
  [ -f "$PG_PID" ] && proc_alive "$(cat "$PG_PID")" && { cat "$PG_PID"; return 0; }
  local lock pid; lock="$(readlink -f "$PG_DATA" 2>/dev/null || echo "$PG_DATA")/postmaster.pid"
  [ -f "$lock" ] && pid=$(head -n 1 "$lock") && proc_alive "$pid" && grep -qs postgres "/proc/$pid/comm" || return 1
  mkdir -p "$(dirname "$PG_PID")" && echo "$pid" >"$PG_PID" && echo "$pid"
}

# The folder the server uses (see the header): PG_DATA itself, or where its link points.
data_dir() {
  if [ -L "$PG_DATA" ]; then readlink -f "$PG_DATA"; return; fi
  if [ -d "$PG_DATA" ]; then echo "$PG_DATA"; return; fi
  local parent; parent=$(dirname "$PG_DATA")
  mkdir -p "$parent"
  if as_postgres test -x "$parent"; then echo "$PG_DATA"; return; fi
  local home; home=$(getent passwd "$PG_USER" | cut -d: -f6)
  local elsewhere
  elsewhere="$home/shopcart/$(printf '%s' "$(readlink -f "$parent")/$(basename "$PG_DATA")" | sha256sum | cut -c1-16)"
  mkdir -p "$(dirname "$elsewhere")" && chown "$PG_USER:$PG_USER" "$(dirname "$elsewhere")"
  ln -sfn "$elsewhere" "$PG_DATA"
  say "the postgres user cannot reach $parent (a private folder above it): data in $elsewhere, linked from $PG_DATA" >&2
  echo "$elsewhere"
}

prepare_dir() {
  local data=$1
  mkdir -p "$data" "$(dirname "$PG_LOG")" "$(dirname "$PG_PID")"
  chown "$PG_USER:$PG_USER" "$data"
  chmod 700 "$data"
}

launch() {
  local data=$1
  # Fast start-up and shutdown settings only; durability stays PostgreSQL's default (fsync, full_page_writes,
  # synchronous_commit on). The replication settings are what a primary and its standby need.
  (
    cd "$data"  # the postgres user may not be able to reach the caller's working directory
    setsid nohup setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups \
      "$BIN/postgres" -D "$data" -c port="$PG_PORT" -c listen_addresses=127.0.0.1 -c unix_socket_directories= \
      -c cluster_name="$PG_NAME" -c max_connections=200 -c wal_level=replica -c max_wal_senders=5 \
      -c wal_keep_size=256MB -c hot_standby=on -c log_min_messages=warning \
      >>"$PG_LOG" 2>&1 </dev/null &
    echo $! >"$PG_PID"
  )
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready; do
    if ! running_pid >/dev/null || ((SECONDS >= deadline)); then
      printf '[postgres] %s: ERROR: not ready within %ss. Log: %s\n' "$PG_NAME" "$START_TIMEOUT" "$PG_LOG" >&2
      [ -f "$PG_LOG" ] && tail -n 30 "$PG_LOG" >&2
      exit 1
    fi
    sleep 0.1
  done
}

ensure_app_database() {
  if [ "$(psql_super -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE'")" != 1 ]; then
    psql_super -c "CREATE ROLE $APP_ROLE LOGIN CREATEDB"
  fi
  if [ "$(psql_super -tAc "SELECT 1 FROM pg_database WHERE datname = '$APP_DATABASE'")" != 1 ]; then
    psql_super -c "CREATE DATABASE $APP_DATABASE OWNER $APP_ROLE"
  fi
}

start() {
  if running_pid >/dev/null && ready; then say "already running on 127.0.0.1:$PG_PORT"; return; fi
  local data; data=$(data_dir)
  if [ ! -f "$data/PG_VERSION" ]; then
    prepare_dir "$data"
    as_postgres "$BIN/initdb" -D "$data" -U "$PG_USER" --auth=trust --encoding=UTF8 --locale=C.UTF-8 >>"$PG_LOG" 2>&1 \
      || { tail -n 20 "$PG_LOG" >&2; die "initdb failed; see $PG_LOG"; }
    say "initialised $data"
  fi
  refuse_second_primary "$data"
  launch "$data"
  wait_ready
  [ -f "$data/standby.signal" ] || ensure_app_database
  say "up on 127.0.0.1:$PG_PORT ($(role))"
}

# A primary started beside another primary of the same cluster (an old primary after a failover) would
# take writes the new one never sees: PG_PEER_PORT names the other node, and such a start is refused.
refuse_second_primary() {
  local data=$1 peer
  [ -n "${PG_PEER_PORT:-}" ] && [ ! -f "$data/standby.signal" ] || return 0
  peer=$("$BIN/psql" -X -h 127.0.0.1 -p "$PG_PEER_PORT" -U "$PG_USER" -d postgres -tAc 'SELECT pg_is_in_recovery()' \
    2>/dev/null) || return 0
  [ "$peer" = f ] || return 0
  die "127.0.0.1:$PG_PEER_PORT is the primary now; rebuild this node as its standby instead (docs/operations.md)"
}

start_standby() {
  local primary_port=${1:?usage: postgres.sh start-standby PRIMARY_PORT}
  if running_pid >/dev/null && ready; then say "already running on 127.0.0.1:$PG_PORT ($(role))"; return; fi
  local data; data=$(data_dir)
  if [ ! -f "$data/PG_VERSION" ]; then
    prepare_dir "$data"
    # --checkpoint=fast: the default waits for the primary's next scheduled checkpoint (~90 s here).
    as_postgres "$BIN/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U "$PG_USER" -D "$data" -R -X stream \
      --checkpoint=fast >>"$PG_LOG" 2>&1 || { tail -n 20 "$PG_LOG" >&2; die "pg_basebackup failed; see $PG_LOG"; }
    say "copied the primary on 127.0.0.1:$primary_port into $data"
  fi
  launch "$data"
  wait_ready
  say "up on 127.0.0.1:$PG_PORT ($(role))"
}

stop() {
  local pid
  if ! pid=$(running_pid); then rm -f "$PG_PID"; say "already stopped"; return; fi
  kill -CONT "$pid" 2>/dev/null || true  # a paused server (a test's SIGSTOP) cannot act on a signal
  # SIGINT is the fast shutdown: SIGTERM (smart) would wait for every pooled connection of the app to close.
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 $((PG_STOP_TIMEOUT * 10))); do proc_alive "$pid" || break; sleep 0.1; done
  proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PG_PID"
  say "stopped"
}

role() {
  case "$(psql_super -tAc 'SELECT pg_is_in_recovery()')" in
    f) echo primary ;; t) echo standby ;; *) die "no answer on 127.0.0.1:$PG_PORT" ;;
  esac
}

set_sync() {
  local names
  case "${1:-}" in on) names='*' ;; off) names='' ;; *) die "usage: postgres.sh sync on|off" ;; esac
  psql_super -c "ALTER SYSTEM SET synchronous_standby_names = '$names'" -c 'SELECT pg_reload_conf()' >/dev/null
  say "synchronous commit to a standby: $1"
}

promote() {
  [ "$(role)" = standby ] || die "not a standby"
  psql_super -tAc 'SELECT pg_promote(true, 30)' | grep -q t || die "promotion did not finish within 30 s"
  # Copied from the old primary: with it, every commit would wait for a standby this node does not have.
  set_sync off
  say "promoted: primary on 127.0.0.1:$PG_PORT"
}

wait_streaming() {
  local deadline=$((SECONDS + START_TIMEOUT))
  until [ "$(psql_super -tAc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" -ge 1 ] 2>/dev/null; do
    ((SECONDS < deadline)) || die "no standby streaming from 127.0.0.1:$PG_PORT within ${START_TIMEOUT}s"
    sleep 0.2
  done
}

purge() {
  stop
  if [ -L "$PG_DATA" ]; then rm -rf "$(readlink -f "$PG_DATA")"; fi
  rm -rf "$PG_DATA"
  say "deleted its data"
}

status() {
  if running_pid >/dev/null && ready; then echo "$PG_NAME: running postgres://127.0.0.1:$PG_PORT ($(role))"; return 0; fi
  echo "$PG_NAME: stopped"
  return 3
}

cmd="${1:-status}"; shift || true
case "$cmd" in
  start) start ;;
  start-standby) start_standby "$@" ;;
  stop) stop ;;
  status) status ;;
  role) role ;;
  promote) promote ;;
  sync) set_sync "$@" ;;
  wait-streaming) wait_streaming ;;
  psql) psql_super "$@" ;;
  purge) purge ;;
  *) die "usage: devstack/postgres.sh start|start-standby PORT|stop|status|role|promote|sync on|off|wait-streaming|psql|purge" ;;
esac
