# Shared helpers for the local (Docker-free) infrastructure scripts. Sourced, not executed.
set -euo pipefail

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Downloaded jars and built binaries: kept between runs, never committed.
CACHE_DIR=${MODELYARD_CACHE_DIR:-$REPO_ROOT/.cache}
# Data and logs of one running stack; `make test` uses its own so it never touches `make up`'s.
RUN_DIR=${MODELYARD_RUN_DIR:-$REPO_ROOT/.run/dev}

log() { printf '[local-infra] %s\n' "$*" >&2; }
die() { printf '[local-infra] error: %s\n' "$*" >&2; exit 1; }

require() {
  local tool=$1 why=$2
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is not installed; it is needed $why.
  Install it, or run the whole stack in containers instead: docker compose up"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_for_port PORT NAME PID LOGFILE SECONDS
wait_for_port() {
  local port=$1 name=$2 pid=$3 logfile=$4 deadline=$((SECONDS + $5))
  until port_open "$port"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logfile" >&2 || true
      die "$name exited during start-up; full log: $logfile"
    fi
    (( SECONDS < deadline )) || die "$name did not answer on port $port within $5 s; log: $logfile"
    sleep 0.2
  done
}

# stop_pidfile FILE NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pidfile() {
  local pidfile=$1 name=$2 pid
  [[ -f $pidfile ]] || { log "$name is not running (no $pidfile)"; return 0; }
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop in 30 s; killing"; kill -9 "$pid" 2>/dev/null || true; }
  fi
  rm -f "$pidfile"
  log "$name stopped"
}
