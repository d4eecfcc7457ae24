#!/usr/bin/env bash
# Debian's redis-server on 127.0.0.1, no persistence: a cache that starts empty.
# Usage: redis.sh install|start|stop|status. Files live in .services/redis.
set -euo pipefail
# shellcheck source=ops/services/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NAME=redis
HOME_DIR="$SERVICES_DIR/redis"
LOG="$HOME_DIR/redis.log"
PIDFILE="$HOME_DIR/redis.pid"
PORT="${KG_SERVICES_REDIS_PORT:-6379}"
URL="redis://$SERVICES_HOST:$PORT/0"
TIMEOUT="${KG_SERVICES_REDIS_TIMEOUT:-20}"
STOP_TIMEOUT=10
# redis-server rewrites its process title to "redis-server <host>:<port>".
PATTERN="redis-server $SERVICES_HOST:$PORT"

install() {
  if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
    return 0
  fi
  ((EUID == 0)) || die "$NAME: redis-server is missing and installing it needs root: apt-get install -y redis-server"
  say "$NAME: installing Debian's redis-server (apt-get)"
  apt-get update -q >/dev/null || die "$NAME: apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null ||
    die "$NAME: apt-get install -y redis-server failed"
  # The package may start a system-wide instance on 6379; ours runs from .services.
  if command -v service >/dev/null 2>&1; then service redis-server stop >/dev/null 2>&1 || true; fi
}

ping() {
  [[ $(redis-cli -h "$SERVICES_HOST" -p "$PORT" ping 2>/dev/null) == PONG ]]
}

start() {
  local pid started
  require_port "$NAME" "$PORT"
  pid=$(running_pid "$PIDFILE" "$PATTERN")
  if [[ -n $pid ]]; then
    reuse_running "$NAME" "$pid" "$LOG" "not answering PING on $URL" -- ping
    return 0
  fi
  install
  require_free_port "$NAME" "$PORT"
  started=$(now)
  mkdir -p "$HOME_DIR"
  : >"$LOG"
  rm -f "$PIDFILE"
  redis-server --daemonize yes --bind "$SERVICES_HOST" --port "$PORT" \
    --save "" --appendonly no --dir "$HOME_DIR" --logfile "$LOG" --pidfile "$PIDFILE" \
    --protected-mode yes --maxmemory 256mb --maxmemory-policy allkeys-lru 9>&- ||
    fail_with_log "$NAME" "$LOG" "redis-server refused to start"
  local deadline=$((SECONDS + TIMEOUT))
  until ping; do
    pid=$(read_pid "$PIDFILE")
    if [[ -s $PIDFILE ]] && ! alive "$pid"; then
      fail_with_log "$NAME" "$LOG" "the server exited during start-up"
    fi
    if ((SECONDS >= deadline)); then
      if [[ -n $pid ]] && alive "$pid"; then stop_pid "$NAME" "$pid" "$STOP_TIMEOUT" >&2; fi
      fail_with_log "$NAME" "$LOG" "no PONG on $URL within ${TIMEOUT}s"
    fi
    sleep 0.1
  done
  pid=$(read_pid "$PIDFILE")
  say "$NAME $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p'): ready on $URL (pid $pid) in $(since "$started")s"
}

stop() { stop_service "$NAME" "$PIDFILE" "$PATTERN" "$STOP_TIMEOUT"; }

status() {
  status_service "$NAME" "$PIDFILE" "$PATTERN" "$LOG" "$URL" \
    unhealthy "no PONG on $URL" -- ping
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
