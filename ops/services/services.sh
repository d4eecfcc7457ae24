#!/usr/bin/env bash
# Real Neo4j, Kafka, Redis and Ollama on 127.0.0.1 for the integration tests, without
# Docker. Usage: services.sh up|down|status|fetch|clean  (make services-up / -down / ...).
# `up` starts Redis, then Neo4j, then Kafka, then Ollama, one after the other (2 cores:
# starting the two JVMs together makes both slower), reuses whatever already runs, and
# writes the URLs to .services/env. See ops/docs/services.md.
set -euo pipefail
# shellcheck source=ops/services/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ENV_FILE="$SERVICES_DIR/env"
NEO4J_PORT="${KG_SERVICES_NEO4J_PORT:-7687}"
KAFKA_PORT="${KG_SERVICES_KAFKA_PORT:-9092}"
REDIS_PORT="${KG_SERVICES_REDIS_PORT:-6379}"
OLLAMA_PORT="${KG_SERVICES_OLLAMA_PORT:-11434}"
OLLAMA_MODEL="${KG_SERVICES_OLLAMA_MODEL:-gemma3:270m}"

# One `up`/`down` at a time: a second caller waits for the first to finish.
# The servers must not inherit the lock's descriptor (they outlive this script), so the
# per-service scripts run through `run_service`, which closes it.
lock() {
  mkdir -p "$SERVICES_DIR"
  exec 9>"$SERVICES_DIR/.lock"
  flock -w 900 9 || die "another services.sh has held $SERVICES_DIR/.lock for 15 minutes"
}

run_service() {
  bash "$OPS_SERVICES/$1.sh" "$2" 9>&-
}

write_env() {
  local password="" password_note
  if [[ -f $SERVICES_DIR/neo4j/password ]]; then
    password=$(cat "$SERVICES_DIR/neo4j/password")
    password_note="(from $SERVICES_DIR/neo4j/password)"
  else
    password_note="(auth disabled: see ops/docs/services.md)"
  fi
  (
    umask 077
    cat >"$ENV_FILE" <<EOF
# Written by ops/services/services.sh up. Source it: . .services/env
export KG_TEST_SERVICES=1
export KG_TEST_NEO4J_URL=bolt://$SERVICES_HOST:$NEO4J_PORT
export KG_TEST_NEO4J_USER=neo4j
export KG_TEST_NEO4J_PASSWORD=$password
export KG_TEST_KAFKA_URL=kafka://$SERVICES_HOST:$KAFKA_PORT
export KG_TEST_REDIS_URL=redis://$SERVICES_HOST:$REDIS_PORT/0
export KG_TEST_OLLAMA_URL=ollama://$SERVICES_HOST:$OLLAMA_PORT
export KG_TEST_OLLAMA_MODEL=$OLLAMA_MODEL
EOF
  )
  echo
  say "services are up; to use them:"
  local line
  while IFS= read -r line; do
    case $line in
      "export KG_TEST_NEO4J_PASSWORD="*) printf '    KG_TEST_NEO4J_PASSWORD=<test-only> %s\n' "$password_note" ;;
      "export "*) printf '    %s\n' "${line#export }" ;;
    esac
  done <"$ENV_FILE"
  say "all of the above in $ENV_FILE: '. $ENV_FILE' (or 'set -a; . $ENV_FILE; set +a')"
}

up() {
  local started step
  started=$(now)
  lock
  step=$(now)
  run_service neo4j fetch
  run_service kafka fetch
  say "jars in place ($(since "$step")s)"
  step=$(now)
  run_service ollama install
  say "ollama binary and model in place ($(since "$step")s)"
  run_service redis start
  run_service neo4j start
  run_service kafka start
  run_service ollama start
  write_env
  say "services-up took $(since "$started")s"
}

down() {
  lock
  # Ollama and Kafka first: nothing here depends on them, and they stop quickest.
  run_service ollama stop
  run_service kafka stop
  run_service neo4j stop
  run_service redis stop
  rm -f "$ENV_FILE"
}

status() {
  local failed=0
  run_service neo4j status || failed=1
  run_service kafka status || failed=1
  run_service redis status || failed=1
  run_service ollama status || failed=1
  if ((failed == 0)) && [[ -f $ENV_FILE ]]; then say "environment: $ENV_FILE"; fi
  return "$failed"
}

# clean: stop everything and delete the servers' data (keeps the fetched jars).
clean() {
  down
  rm -rf "$SERVICES_DIR/neo4j/data" "$SERVICES_DIR/neo4j/password" \
    "$SERVICES_DIR/neo4j/auth-disabled" "$SERVICES_DIR/neo4j/logs" "$SERVICES_DIR/neo4j/run" \
    "$SERVICES_DIR/kafka/data" "$SERVICES_DIR/kafka/cluster.id" \
    "$SERVICES_DIR/kafka/formatted-for" "$SERVICES_DIR/kafka/kafka.log" \
    "$SERVICES_DIR/redis" "$SERVICES_DIR/ollama"
  say "data removed from $SERVICES_DIR (jars, and the Ollama binary and GGUF in ~/.cache, kept)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  fetch)
    run_service neo4j fetch
    run_service kafka fetch
    run_service redis install
    run_service ollama install
    ;;
  clean) clean ;;
  *) die "usage: $0 up|down|status|fetch|clean" ;;
esac
