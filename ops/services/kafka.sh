#!/usr/bin/env bash
# Apache Kafka 4.x on 127.0.0.1: one KRaft node that is both broker and controller.
# Usage: kafka.sh fetch|start|stop|status. Files live in .services/kafka: lib/ (jars),
# server.properties (rewritten on each start), cluster.id, data/ (log.dirs), kafka.log.
set -euo pipefail
# shellcheck source=ops/services/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NAME=kafka
POM="$OPS_SERVICES/kafka/pom.xml"
HOME_DIR="$SERVICES_DIR/kafka"
LIB="$HOME_DIR/lib"
DATA_DIR="$HOME_DIR/data"
PROPS="$HOME_DIR/server.properties"
CLUSTER_ID_FILE="$HOME_DIR/cluster.id"
FORMATTED_MARK="$HOME_DIR/formatted-for"
LOG="$HOME_DIR/kafka.log"
PIDFILE="$HOME_DIR/kafka.pid"
PORT="${KG_SERVICES_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KG_SERVICES_KAFKA_CONTROLLER_PORT:-9093}"
BOOTSTRAP="$SERVICES_HOST:$PORT"
TIMEOUT="${KG_SERVICES_KAFKA_TIMEOUT:-120}"
STOP_TIMEOUT=60
MAIN=kafka.Kafka
PATTERN="$MAIN $PROPS"
VERSION=$(pom_property "$POM" kafka.version)

JVM_OPTS=(
  -Xms512m -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20
  -XX:+ExitOnOutOfMemoryError -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true -Dfile.encoding=UTF-8
  "-Dlog4j2.configurationFile=$OPS_SERVICES/kafka/log4j2.xml"
)
TOOL_OPTS=(-Xmx256m "-Dlog4j2.configurationFile=$OPS_SERVICES/kafka/log4j2-tools.xml")

fetch() {
  fetch_jars "$NAME" "$POM" "$LIB" "org.apache.kafka:kafka_2.13:$VERSION"
}

write_properties() {
  mkdir -p "$DATA_DIR"
  cat >"$PROPS" <<EOF
# Written by ops/services/kafka.sh on each start; edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$SERVICES_HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$SERVICES_HOST:$PORT,CONTROLLER://$SERVICES_HOST:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$SERVICES_HOST:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
num.network.threads=2
num.io.threads=2
background.threads=2
log.retention.hours=24
EOF
}

# Format the log dir once. The controller's own endpoint is written into the metadata
# log by --standalone, so changing the controller port later needs a fresh format.
ensure_formatted() {
  local want="controller=$CONTROLLER_PORT"
  if [[ -f $DATA_DIR/meta.properties ]]; then
    if [[ -f $FORMATTED_MARK && $(cat "$FORMATTED_MARK") != "$want" ]]; then
      die "$NAME: $DATA_DIR was formatted for $(cat "$FORMATTED_MARK"), not $want; reset with 'make services-clean'"
    fi
    return 0
  fi
  local id
  if [[ ! -s $CLUSTER_ID_FILE ]]; then
    id=$("$SERVICES_JAVA" "${TOOL_OPTS[@]}" -cp "$LIB/*" kafka.tools.StorageTool random-uuid) ||
      die "$NAME: StorageTool random-uuid failed"
    [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || die "$NAME: StorageTool random-uuid printed '$id', not a cluster id"
    printf '%s\n' "$id" >"$CLUSTER_ID_FILE"
  fi
  id=$(cat "$CLUSTER_ID_FILE")
  "$SERVICES_JAVA" "${TOOL_OPTS[@]}" -cp "$LIB/*" kafka.tools.StorageTool format \
    --standalone -t "$id" -c "$PROPS" --ignore-formatted >>"$LOG" 2>&1 ||
    fail_with_log "$NAME" "$LOG" "StorageTool format of $DATA_DIR failed"
  printf '%s\n' "$want" >"$FORMATTED_MARK"
  say "$NAME: formatted $DATA_DIR for cluster $id"
}

probe() {
  local pid=$1 timeout=$2
  "$SERVICES_PYTHON" "$PROBE" kafka --bootstrap "$BOOTSTRAP" --pid "$pid" --timeout "$timeout"
}

start() {
  local pid started
  require_port "$NAME" "$PORT"
  require_port "$NAME controller" "$CONTROLLER_PORT"
  pid=$(running_pid "$PIDFILE" "$PATTERN")
  require_python
  if [[ -n $pid ]]; then
    reuse_running "$NAME" "$pid" "$LOG" "no metadata answer on $BOOTSTRAP" -- probe "$pid" "$TIMEOUT"
    return 0
  fi
  require_java 17 99
  fetch
  require_free_port "$NAME" "$PORT"
  require_free_port "$NAME controller" "$CONTROLLER_PORT"
  started=$(now)
  : >"$LOG"
  write_properties
  ensure_formatted
  say "$NAME $VERSION: starting on $BOOTSTRAP, controller on $SERVICES_HOST:$CONTROLLER_PORT (log: $LOG)"
  launch_detached "$PIDFILE" "$LOG" -- "$SERVICES_JAVA" "${JVM_OPTS[@]}" -cp "$LIB/*" "$MAIN" "$PROPS" ||
    fail_with_log "$NAME" "$LOG" "the JVM did not start"
  pid=$(read_pid "$PIDFILE")
  await_ready "$NAME" "$pid" "$PIDFILE" "$LOG" "$STOP_TIMEOUT" \
    "no metadata answer on $BOOTSTRAP within ${TIMEOUT}s" \
    "2=the broker exited during start-up" \
    -- probe "$pid" "$TIMEOUT"
  say "$NAME: ready on $BOOTSTRAP (pid $pid) in $(since "$started")s"
}

stop() { stop_service "$NAME" "$PIDFILE" "$PATTERN" "$STOP_TIMEOUT"; }

status() {
  status_service "$NAME" "$PIDFILE" "$PATTERN" "$LOG" "$BOOTSTRAP" \
    "starting or unhealthy" "$BOOTSTRAP not accepting connections" -- port_open "$PORT"
}

case "${1:-}" in
  fetch) fetch ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 fetch|start|stop|status" ;;
esac
