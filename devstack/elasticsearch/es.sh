#!/usr/bin/env bash
# Local single-node Elasticsearch for dev and tests: the real 8.19 server from Maven Central,
# started by devstack.EsLauncher (why: docs/adr/0001-local-elasticsearch-from-maven-central.md).
#
#   es.sh start    build if needed, start in the background, wait for yellow health
#   es.sh stop     SIGTERM, wait, then SIGKILL
#   es.sh status   exit 0 if running, 3 if not
#   es.sh launch   build if needed and start in the background, without waiting (a cluster's nodes)
#   es.sh build    only build the launcher
#
# Env: DEVSTACK_DIR (default <repo>/.devstack), ES_PORT (9200), ES_TRANSPORT_PORT (9300),
#      ES_HEAP (512m, keep <= 1g), ES_START_TIMEOUT (180 s), ES_STOP_TIMEOUT (30 s), JAVA_HOME.
# A node of a cluster (devstack/cluster.sh) also sets ES_NODE_NAME, ES_CLUSTER_NAME, ES_HOME,
#      ES_DATA_DIR, ES_LOG_FILE, ES_PID_FILE and ES_SEED_HOSTS (the transport addresses of every node,
#      comma-separated; unset means a single-node cluster) with ES_INITIAL_MASTER_NODES.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
DEVSTACK_DIR=${DEVSTACK_DIR:-$REPO_ROOT/.devstack}
ES_PORT=${ES_PORT:-9200}
ES_TRANSPORT_PORT=${ES_TRANSPORT_PORT:-9300}
ES_HEAP=${ES_HEAP:-512m}
ES_START_TIMEOUT=${ES_START_TIMEOUT:-180}
ES_STOP_TIMEOUT=${ES_STOP_TIMEOUT:-30}

BUILD_DIR=$DEVSTACK_DIR/elasticsearch        # compiled launcher, classpath file, ES home (all regenerable)
DATA_DIR=${ES_DATA_DIR:-$DEVSTACK_DIR/data/elasticsearch}    # kept across restarts and rebuilds
LOG_FILE=${ES_LOG_FILE:-$DEVSTACK_DIR/logs/elasticsearch.log}
LOG_DIR=$(dirname "$LOG_FILE")
PID_FILE=${ES_PID_FILE:-$DEVSTACK_DIR/run/elasticsearch.pid}
ES_HOME=${ES_HOME:-$BUILD_DIR/home}
ES_CLUSTER_NAME=${ES_CLUSTER_NAME:-shopcart-dev}
ES_NODE_NAME=${ES_NODE_NAME:-shopcart-dev-node}
ES_SEED_HOSTS=${ES_SEED_HOSTS:-}
URL=http://127.0.0.1:$ES_PORT
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

log() { echo "es.sh: $*"; }

sha256() { if command -v sha256sum >/dev/null; then sha256sum; else shasum -a 256; fi; }

# Rebuild only when the pom or the launcher source changed (checksum of both).
build() {
  local sum
  sum=$(cd "$SCRIPT_DIR" && find pom.xml src -type f | LC_ALL=C sort | xargs cat | sha256 | cut -d' ' -f1)
  if [[ -f $BUILD_DIR/build.sha256 && -f $BUILD_DIR/server.classpath && $(<"$BUILD_DIR/build.sha256") == "$sum" ]]; then
    return 0
  fi
  log "building launcher into $BUILD_DIR (Maven cache: $DEVSTACK_DIR/m2)"
  rm -rf "$BUILD_DIR"
  mkdir -p "$DEVSTACK_DIR/logs"
  # Maven 3.8 -q still prints stray ANSI codes; keep its output in a file, show it only on failure.
  if ! mvn -q -B -f "$SCRIPT_DIR/pom.xml" -Dmaven.repo.local="$DEVSTACK_DIR/m2" -Ddevstack.out="$BUILD_DIR" \
    compile >"$DEVSTACK_DIR/logs/elasticsearch-build.log" 2>&1; then
    cat "$DEVSTACK_DIR/logs/elasticsearch-build.log" >&2
    echo "es.sh: error: launcher build failed; see $DEVSTACK_DIR/logs/elasticsearch-build.log" >&2
    exit 1
  fi
  echo "$sum" >"$BUILD_DIR/build.sha256"
}

# Our node is running if the pid file names a live process that is our launcher (not a reused pid).
pid=
is_running() {
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  # /proc's cmdline is never truncated (ps -o args= is cut to the caller's COLUMNS, and the
  # launcher's class name comes after a very long classpath).
  [[ -n $pid && -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q devstack.EsLauncher
}

healthy() {
  curl -fsS -m 5 -o /dev/null "$URL/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null
}

fail() {
  echo "es.sh: error: $*; see $LOG_FILE" >&2
  if [[ -f $LOG_FILE ]]; then
    echo "----- last 30 lines of $LOG_FILE -----" >&2
    tail -n 30 "$LOG_FILE" >&2
  fi
  exit 1
}

# Starts the node in the background unless it runs already; returns at once.
launch() {
  command -v curl >/dev/null || { echo "es.sh: error: curl is required" >&2; exit 1; }
  if is_running; then
    return 0
  fi
  if curl -s -m 2 -o /dev/null "$URL/"; then
    echo "es.sh: error: something else is already listening on $URL (not started by this script)" >&2
    exit 1
  fi
  build
  mkdir -p "$DATA_DIR" "$LOG_DIR" "$(dirname "$PID_FILE")"
  if [[ $ES_HOME != "$BUILD_DIR/home" ]]; then
    # A node's own home (the launcher writes its config there): the built modules, copied fresh (3.5 MB).
    rm -rf "$ES_HOME" && mkdir -p "$ES_HOME" && cp -R "$BUILD_DIR/home/modules" "$ES_HOME/"
  fi
  if [[ -f $LOG_FILE ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi   # keep the previous run's log
  local classpath detach=() discovery
  classpath="$BUILD_DIR/build/classes:$(<"$BUILD_DIR/server.classpath")"
  command -v setsid >/dev/null && detach=(setsid)   # own session: survives the calling shell/terminal
  if [[ -n $ES_SEED_HOSTS ]]; then
    # A node of a cluster. Fault detection: checks every 1 s, 1 s timeouts, 2 retries, so a hung (not dead)
    # node is dropped in ~3-4 s instead of ~30 s, and writes to shards it held go on without it; a
    # cluster-state update waits 5 s (not 30 s) for a silent node before the next one (its removal) runs.
    discovery=(discovery.seed_hosts="$ES_SEED_HOSTS" cluster.initial_master_nodes="${ES_INITIAL_MASTER_NODES:?}"
      cluster.fault_detection.leader_check.timeout=1s cluster.fault_detection.leader_check.retry_count=2
      cluster.fault_detection.follower_check.timeout=1s cluster.fault_detection.follower_check.retry_count=2
      cluster.publish.timeout=5s)
  else
    discovery=(discovery.type=single-node)
  fi
  # JVM flags: heap + jvm.options (the distribution's system options for netty/log4j).
  local jvm_options
  mapfile -t jvm_options < <(grep -v -e '^#' -e '^$' "$SCRIPT_DIR/jvm.options")
  nohup ${detach[@]+"${detach[@]}"} "$JAVA" -Xms"$ES_HEAP" -Xmx"$ES_HEAP" "${jvm_options[@]}" \
    -cp "$classpath" devstack.EsLauncher \
    path.home="$ES_HOME" path.data="$DATA_DIR" path.logs="$LOG_DIR" \
    cluster.name="$ES_CLUSTER_NAME" node.name="$ES_NODE_NAME" "${discovery[@]}" \
    network.host=127.0.0.1 http.port="$ES_PORT" transport.port="$ES_TRANSPORT_PORT" \
    cluster.routing.allocation.disk.threshold_enabled=false \
    </dev/null >>"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  pid=$!
  log "starting $ES_NODE_NAME (pid $!), log: $LOG_FILE"
}

start() {
  if is_running && healthy; then
    log "already running (pid $pid) at $URL"
    return 0
  fi
  is_running && log "running (pid $pid) but not healthy yet; waiting"
  launch

  local deadline=$((SECONDS + ES_START_TIMEOUT))
  until healthy; do
    is_running || fail "elasticsearch exited during startup"
    if ((SECONDS >= deadline)); then
      stop >/dev/null
      fail "elasticsearch not healthy (yellow) after ${ES_START_TIMEOUT}s, stopped it"
    fi
    sleep 1
  done
  log "running (pid $pid) at $URL"
}

stop() {
  if ! is_running; then
    rm -f "$PID_FILE"
    log "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < ES_STOP_TIMEOUT; i++)); do
    is_running || break
    sleep 1
  done
  if is_running; then
    log "still running after ${ES_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

status() {
  if is_running; then
    log "running (pid $pid) at $URL"
    return 0
  fi
  log "stopped ($URL)"
  return 3
}

case "${1:-}" in
  start) start ;;
  launch) launch ;;
  build) build ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|launch|build|stop|status" >&2
    exit 2
    ;;
esac
