# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts sourcing this
# Helpers shared by the loopback service scripts (neo4j.sh, kafka.sh, redis.sh,
# services.sh). Sourced, never run. Paths, messages, pid handling, starting, stopping
# and reporting on a server, jar fetching.

# Repository root and the git-ignored folder every server keeps its files in.
OPS_SERVICES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$OPS_SERVICES/../.." && pwd)"
SERVICES_DIR="$(realpath -m "${KG_SERVICES_DIR:-$REPO_ROOT/.services}")"
SERVICES_HOST=127.0.0.1
SERVICES_PYTHON="${KG_SERVICES_PYTHON:-$REPO_ROOT/.venv/bin/python}"
SERVICES_JAVA="${KG_SERVICES_JAVA:-java}"
PROBE="$OPS_SERVICES/probe.py"
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

say() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[services] ERROR: %s\n' "$*" >&2
  exit 1
}

# now: wall-clock seconds with microseconds, for the timings printed at the end.
now() { printf '%s' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# fail_with_log SERVICE LOGFILE MESSAGE: print the end of the log and exit non-zero.
fail_with_log() {
  local service=$1 log=$2 message=$3
  {
    printf '[services] ERROR: %s: %s\n' "$service" "$message"
    printf '[services] log file: %s (last 30 lines below)\n' "$log"
    if [[ -s $log ]]; then
      tail -n 30 "$log" | sed 's/^/    /'
    elif [[ -f $log ]]; then
      printf '    (the log is empty: the process wrote nothing yet)\n'
    else
      printf '    (no log file was written)\n'
    fi
  } >&2
  exit 1
}

# read_pid PIDFILE: the pid written there, or nothing.
read_pid() {
  [[ -f $1 ]] || return 0
  local pid
  pid=$(tr -dc '0-9' <"$1")
  printf '%s' "$pid"
}

# alive PID: the process exists and is not a zombie waiting for its parent to reap it
# (daemons here are reparented to an init that may reap only every few seconds).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# owns_pid PID PATTERN: the process is alive and its command line contains PATTERN
# (guards against a stale pid file naming some unrelated process).
owns_pid() {
  local pid=$1 pattern=$2
  if [[ -z $pid ]] || ! alive "$pid"; then
    return 1
  fi
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# running_pid PIDFILE PATTERN: prints the pid if our server runs, else nothing.
running_pid() {
  local pid
  pid=$(read_pid "$1")
  if owns_pid "$pid" "$2"; then printf '%s' "$pid"; fi
}

# stop_pid NAME PID TIMEOUT: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 timeout=$3 started
  started=$(now)
  kill -TERM "$pid" 2>/dev/null || return 0
  local deadline=$((SECONDS + timeout))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      warn "$name (pid $pid) still running ${timeout}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  say "$name stopped (pid $pid, $(since "$started")s)"
}

# launch_detached PIDFILE LOG -- COMMAND...: run COMMAND in the background in its own
# session (setsid: a Ctrl-C in the calling terminal does not reach it), appending its
# output to LOG, and wait up to 5 s for its pid in PIDFILE (the inner shell records its
# own pid, which exec hands over to COMMAND; if the pid cannot be written, COMMAND never
# starts, so no server runs untracked). Returns non-zero if no pid was recorded.
launch_detached() {
  local pidfile=$1 log=$2
  [[ ${3:-} == -- ]] || die "launch_detached: usage: PIDFILE LOG -- COMMAND..."
  shift 3
  # shellcheck disable=SC2016  # $$ and $0 belong to the inner shell
  setsid bash -c 'echo $$ >"$0" && exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null 9>&- &
  local waited=0
  until [[ -s $pidfile ]] || ((waited > 50)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  [[ -n $(read_pid "$pidfile") ]]
}

# await_ready NAME PID PIDFILE LOG STOP_TIMEOUT WHY [STATUS=WHY...] -- PROBE...: run PROBE
# (a probe.py call: 0 ready, 1 timed out, 2 exited, 3 refused). If it fails, stop PID
# (waiting up to STOP_TIMEOUT), remove PIDFILE and exit with LOG's tail, saying the WHY
# given for PROBE's exit status, or the first WHY for any other failure.
await_ready() {
  local name=$1 pid=$2 pidfile=$3 log=$4 stop_timeout=$5 why=$6
  shift 6
  local whys=()
  while (($# > 0)) && [[ $1 != -- ]]; do
    whys+=("$1")
    shift
  done
  (($# > 1)) || die "await_ready: usage: NAME PID PIDFILE LOG STOP_TIMEOUT WHY [STATUS=WHY...] -- PROBE..."
  shift
  local status=0 each
  "$@" >/dev/null || status=$?
  if ((status == 0)); then return 0; fi
  for each in "${whys[@]}"; do
    if [[ ${each%%=*} == "$status" ]]; then why=${each#*=}; fi
  done
  if alive "$pid"; then stop_pid "$name" "$pid" "$stop_timeout" >&2; fi
  rm -f "$pidfile"
  fail_with_log "$name" "$log" "$why"
}

# reuse_running NAME PID LOG PROBLEM -- CHECK...: our server already runs as PID; say it
# is reused, then exit with LOG's tail ("running (pid PID) but PROBLEM") unless CHECK passes.
reuse_running() {
  local name=$1 pid=$2 log=$3 problem=$4
  [[ ${5:-} == -- ]] || die "reuse_running: usage: NAME PID LOG PROBLEM -- CHECK..."
  shift 5
  say "$name: already running (pid $pid), reusing it"
  "$@" >/dev/null || fail_with_log "$name" "$log" "running (pid $pid) but $problem"
}

# stop_service NAME PIDFILE PATTERN TIMEOUT: stop our server if it runs (see stop_pid),
# then remove its pid file.
stop_service() {
  local name=$1 pidfile=$2 pattern=$3 timeout=$4 pid
  pid=$(running_pid "$pidfile" "$pattern")
  if [[ -z $pid ]]; then
    say "$name: not running"
  else
    stop_pid "$name" "$pid" "$timeout"
  fi
  rm -f "$pidfile"
}

# status_service NAME PIDFILE PATTERN LOG ADDRESS STATE DETAIL -- CHECK...: one line
# saying whether our server runs; returns 0 only if it does and CHECK passes, else says
# "STATE (pid N, DETAIL; log: LOG)".
status_service() {
  local name=$1 pidfile=$2 pattern=$3 log=$4 address=$5 state=$6 detail=$7 pid
  [[ ${8:-} == -- ]] || die "status_service: usage: NAME PIDFILE PATTERN LOG ADDRESS STATE DETAIL -- CHECK..."
  shift 8
  pid=$(running_pid "$pidfile" "$pattern")
  if [[ -z $pid ]]; then
    say "$name: stopped"
    return 1
  fi
  if "$@"; then
    say "$name: running (pid $pid) on $address"
  else
    say "$name: $state (pid $pid, $detail; log: $log)"
    return 1
  fi
}

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/$SERVICES_HOST/$1") 2>/dev/null
}

# require_port NAME VALUE: a TCP port number, so a typo fails here and not in a JVM.
require_port() {
  if [[ ! $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
    die "$1: '$2' is not a TCP port (1-65535)"
  fi
}

# require_free_port NAME PORT: refuse to start when another process holds the port.
require_free_port() {
  if port_open "$2"; then
    die "$1: port $SERVICES_HOST:$2 is already in use by another process (not started by these scripts); stop it or choose another port (see ops/docs/services.md)"
  fi
}

# require_python: the venv interpreter with the drivers the readiness probes use.
require_python() {
  [[ -x $SERVICES_PYTHON ]] || die "no Python at $SERVICES_PYTHON: run 'make test' or 'make unit' once to create .venv (or set KG_SERVICES_PYTHON)"
}

# require_java MIN MAX: the JVM exists and its feature version is within [MIN, MAX].
require_java() {
  local min=$1 max=$2 version
  command -v "$SERVICES_JAVA" >/dev/null 2>&1 || die "no Java found ('$SERVICES_JAVA'): apt-get install -y openjdk-17-jre-headless, or set KG_SERVICES_JAVA"
  version=$("$SERVICES_JAVA" -XshowSettings:properties -version 2>&1 |
    sed -n 's/^ *java\.specification\.version = //p')
  version=${version%%.*}
  if [[ -z $version ]] || ((version < min || version > max)); then
    die "Java $min to $max is needed, '$SERVICES_JAVA' is version ${version:-unknown} (set KG_SERVICES_JAVA to another java binary)"
  fi
}

# pom_property POM NAME: the value of <NAME> in the pom's <properties>.
pom_property() {
  sed -n "s:.*<$2>\(.*\)</$2>.*:\1:p" "$1" | head -n 1
}

# mvn_quiet ARGS...: batch, quiet Maven; Debian's 3.8.7 still prints colour resets
# (ESC[0m) with -q and style.color=never, so they are filtered out here.
mvn_quiet() {
  mvn -B -q -Dstyle.color=never "$@" 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d'
}

# fetch_jars NAME POM LIBDIR ARTIFACT...: copy the pom's runtime dependencies into
# LIBDIR once. The stamp holds the pom's checksum: editing a pinned version refetches.
fetch_jars() {
  local name=$1 pom=$2 lib=$3
  shift 3
  local stamp="$lib/.complete" want
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "$name: mvn is missing: apt-get install -y maven"
  local started artifact
  started=$(now)
  say "$name: fetching jars from Maven Central into $lib (first run only; ~/.m2 caches)"
  for artifact in "$@"; do
    mvn_quiet "$DEPENDENCY_PLUGIN:get" -Dartifact="$artifact" -Dtransitive=false ||
      die "$name: pinned artifact $artifact does not resolve from Maven Central (check the version in $pom)"
  done
  rm -rf "$lib.partial"
  mkdir -p "$lib.partial"
  mvn_quiet -f "$pom" "$DEPENDENCY_PLUGIN:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$lib.partial" ||
    die "$name: copying the dependencies of $pom failed (see the Maven output above)"
  printf '%s\n' "$want" >"$lib.partial/.complete"
  rm -rf "$lib"
  mv "$lib.partial" "$lib"
  say "$name: $(find "$lib" -name '*.jar' | wc -l) jars fetched in $(since "$started")s"
}
