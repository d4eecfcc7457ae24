#!/usr/bin/env bash
# Neo4j Community (5.26 LTS) on 127.0.0.1, run straight from its jars, no bootloader.
# Usage: neo4j.sh fetch|start|stop|status. Files live in .services/neo4j (NEO4J_HOME):
# lib/ (jars), conf/neo4j.conf (rewritten on each start), data/, logs/, password.
set -euo pipefail
# shellcheck source=ops/services/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NAME=neo4j
POM="$OPS_SERVICES/neo4j/pom.xml"
HOME_DIR="$SERVICES_DIR/neo4j"
LIB="$HOME_DIR/lib"
CONF_DIR="$HOME_DIR/conf"
DATA_DIR="$HOME_DIR/data"
LOG="$HOME_DIR/logs/console.log"
PIDFILE="$HOME_DIR/neo4j.pid"
PASSWORD_FILE="$HOME_DIR/password"
NO_AUTH_MARK="$HOME_DIR/auth-disabled"
PORT="${KG_SERVICES_NEO4J_PORT:-7687}"
URL="bolt://$SERVICES_HOST:$PORT"
TIMEOUT="${KG_SERVICES_NEO4J_TIMEOUT:-180}"
STOP_TIMEOUT=60
MAIN=org.neo4j.server.CommunityEntryPoint
PATTERN="$MAIN --home-dir=$HOME_DIR"
VERSION=$(pom_property "$POM" neo4j.version)

# JVM flags the bootloader would derive from neo4j.conf; started directly we pass them.
JVM_OPTS=(
  -Xms512m -Xmx1g -XX:+UseG1GC
  -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow -XX:+DisableExplicitGC
  -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  -Dfile.encoding=UTF-8
)

fetch() {
  fetch_jars "$NAME" "$POM" "$LIB" \
    "org.neo4j:neo4j:$VERSION" "org.neo4j.app:neo4j-server:$VERSION"
}

write_conf() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$HOME_DIR/logs" "$HOME_DIR/run" "$HOME_DIR/plugins"
  {
    echo "# Written by ops/services/neo4j.sh on each start; edits here are lost."
    echo "server.default_listen_address=$SERVICES_HOST"
    echo "server.default_advertised_address=$SERVICES_HOST"
    echo "server.bolt.enabled=true"
    echo "server.bolt.listen_address=$SERVICES_HOST:$PORT"
    echo "server.bolt.tls_level=DISABLED"
    echo "server.http.enabled=false"
    echo "server.https.enabled=false"
    echo "server.memory.heap.initial_size=512m"
    echo "server.memory.heap.max_size=1g"
    echo "server.memory.pagecache.size=256m"
    echo "dbms.usage_report.enabled=false"
    echo "server.directories.data=$DATA_DIR"
    echo "server.directories.logs=$HOME_DIR/logs"
    echo "server.directories.run=$HOME_DIR/run"
    echo "server.directories.plugins=$HOME_DIR/plugins"
    echo "db.tx_log.rotation.retention_policy=2 files"
    if [[ -f $NO_AUTH_MARK ]]; then
      echo "dbms.security.auth_enabled=false"
    fi
  } >"$CONF_DIR/neo4j.conf"
}

# The initial password only counts before the first start, so it is chosen once and kept
# in $PASSWORD_FILE; later starts check KG_TEST_NEO4J_PASSWORD against it.
ensure_password() {
  if [[ -d $DATA_DIR/databases/system ]]; then
    [[ -f $PASSWORD_FILE || -f $NO_AUTH_MARK ]] ||
      die "$NAME: $DATA_DIR holds a database but $PASSWORD_FILE is gone; reset with 'make services-clean'"
    if [[ -n ${KG_TEST_NEO4J_PASSWORD:-} && -f $PASSWORD_FILE &&
      $KG_TEST_NEO4J_PASSWORD != "$(cat "$PASSWORD_FILE")" ]]; then
      die "$NAME: KG_TEST_NEO4J_PASSWORD differs from the password this database was created with ($PASSWORD_FILE); unset it, or reset with 'make services-clean'"
    fi
    return 0
  fi
  local password=${KG_TEST_NEO4J_PASSWORD:-}
  if [[ -z $password ]]; then
    # Test-only and random per checkout: nothing real is ever hard-coded.
    password="kg-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
  fi
  ((${#password} >= 8)) || die "$NAME: KG_TEST_NEO4J_PASSWORD must be at least 8 characters (Neo4j's minimum)"
  rm -f "$NO_AUTH_MARK"
  (umask 077 && printf '%s\n' "$password" >"$PASSWORD_FILE")
  if NEO4J_HOME="$HOME_DIR" NEO4J_CONF="$CONF_DIR" "$SERVICES_JAVA" -Xmx256m \
    -cp "$LIB/*" org.neo4j.cli.AdminTool dbms set-initial-password "$password" \
    >>"$LOG" 2>&1; then
    say "$NAME: initial password for user 'neo4j' set; it is in $PASSWORD_FILE"
  else
    warn "$NAME: set-initial-password failed (see $LOG); starting with auth disabled"
    rm -f "$PASSWORD_FILE"
    touch "$NO_AUTH_MARK"
  fi
}

probe() {
  local pid=$1 timeout=$2
  "$SERVICES_PYTHON" "$PROBE" neo4j --url "$URL" --user neo4j \
    --password-file "$PASSWORD_FILE" --pid "$pid" --timeout "$timeout"
}

start() {
  local pid started
  require_port "$NAME" "$PORT"
  pid=$(running_pid "$PIDFILE" "$PATTERN")
  require_python
  if [[ -n $pid ]]; then
    reuse_running "$NAME" "$pid" "$LOG" "not answering on $URL" -- probe "$pid" "$TIMEOUT"
    return 0
  fi
  require_java 17 21
  fetch
  require_free_port "$NAME" "$PORT"
  started=$(now)
  mkdir -p "$HOME_DIR/logs"
  : >"$LOG"
  write_conf
  ensure_password
  write_conf # auth may have been switched off by ensure_password
  say "$NAME $VERSION: starting on $URL (log: $LOG)"
  launch_detached "$PIDFILE" "$LOG" -- "$SERVICES_JAVA" "${JVM_OPTS[@]}" -cp "$LIB/*" "$MAIN" \
    --home-dir="$HOME_DIR" --config-dir="$CONF_DIR" --console-mode ||
    fail_with_log "$NAME" "$LOG" "the JVM did not start"
  pid=$(read_pid "$PIDFILE")
  await_ready "$NAME" "$pid" "$PIDFILE" "$LOG" "$STOP_TIMEOUT" \
    "not ready on $URL within ${TIMEOUT}s" \
    "2=the server exited during start-up" \
    "3=the server refused the password in $PASSWORD_FILE (reset with 'make services-clean')" \
    -- probe "$pid" "$TIMEOUT"
  say "$NAME: ready on $URL (pid $pid) in $(since "$started")s"
}

stop() { stop_service "$NAME" "$PIDFILE" "$PATTERN" "$STOP_TIMEOUT"; }

status() {
  status_service "$NAME" "$PIDFILE" "$PATTERN" "$LOG" "$URL" \
    "starting or unhealthy" "$URL not accepting connections" -- port_open "$PORT"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 fetch|start|stop|status" ;;
esac
