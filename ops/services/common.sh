# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts sourcing this
# Helpers shared by the loopback service scripts (neo4j.sh, kafka.sh, redis.sh,
# services.sh). Sourced, never run. Paths, messages, pid handling, jar fetching.

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
