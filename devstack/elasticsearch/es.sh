#!/usr/bin/env bash
# Local single-node Elasticsearch for dev and tests: the real 8.19 server from Maven Central,
# started by devstack.EsLauncher (why: docs/adr/0001-local-elasticsearch-from-maven-central.md).
#
#   es.sh start    build if needed, start in the background, wait for yellow health
#   es.sh stop     SIGTERM, wait, then SIGKILL
#   es.sh status   exit 0 if running, 3 if not
#
# Env: DEVSTACK_DIR (default <repo>/.devstack), ES_PORT (9200), ES_TRANSPORT_PORT (9300),
#      ES_HEAP (512m, keep <= 1g), ES_START_TIMEOUT (180 s), ES_STOP_TIMEOUT (30 s), JAVA_HOME.
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
DATA_DIR=$DEVSTACK_DIR/data/elasticsearch    # kept across restarts and rebuilds
LOG_DIR=$DEVSTACK_DIR/logs
LOG_FILE=$LOG_DIR/elasticsearch.log
PID_FILE=$DEVSTACK_DIR/run/elasticsearch.pid
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
  mkdir -p "$LOG_DIR"
  # Maven 3.8 -q still prints stray ANSI codes; keep its output in a file, show it only on failure.
  if ! mvn -q -B -f "$SCRIPT_DIR/pom.xml" -Dmaven.repo.local="$DEVSTACK_DIR/m2" -Ddevstack.out="$BUILD_DIR" \
    compile >"$LOG_DIR/elasticsearch-build.log" 2>&1; then
    cat "$LOG_DIR/elasticsearch-build.log" >&2
    echo "es.sh: error: launcher build failed; see $LOG_DIR/elasticsearch-build.log" >&2
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

start() {
  command -v curl >/dev/null || { echo "es.sh: error: curl is required" >&2; exit 1; }
  if is_running; then
    if healthy; then
      log "already running (pid $pid) at $URL"
      return 0
    fi
    log "running (pid $pid) but not healthy yet; waiting"
  else
    if curl -s -m 2 -o /dev/null "$URL/"; then
      echo "es.sh: error: something else is already listening on $URL (not started by this script)" >&2
      exit 1
    fi
    build
    mkdir -p "$DATA_DIR" "$LOG_DIR" "$(dirname "$PID_FILE")"
    if [[ -f $LOG_FILE ]]; then mv -f "$LOG_FILE" "$LOG_FILE.1"; fi   # keep the previous run's log
    local classpath detach=()
    classpath="$BUILD_DIR/build/classes:$(<"$BUILD_DIR/server.classpath")"
    command -v setsid >/dev/null && detach=(setsid)   # own session: survives the calling shell/terminal
    # JVM flags: heap + the distribution's system options for netty/log4j (SystemJvmOptions).
    nohup ${detach[@]+"${detach[@]}"} "$JAVA" -Xms"$ES_HEAP" -Xmx"$ES_HEAP" -XX:+UseG1GC -Xss1m -XX:+ExitOnOutOfMemoryError \
      -XX:-OmitStackTraceInFastThrow -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true \
      -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0 \
      -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Dlog4j2.formatMsgNoLookups=true \
      -Djava.locale.providers=CLDR \
      -cp "$classpath" devstack.EsLauncher \
      path.home="$BUILD_DIR/home" path.data="$DATA_DIR" path.logs="$LOG_DIR" \
      cluster.name=shopcart-dev node.name=shopcart-dev-node discovery.type=single-node \
      network.host=127.0.0.1 http.port="$ES_PORT" transport.port="$ES_TRANSPORT_PORT" \
      cluster.routing.allocation.disk.threshold_enabled=false \
      </dev/null >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    log "starting (pid $!), log: $LOG_FILE"
  fi

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
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
