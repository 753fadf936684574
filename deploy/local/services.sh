#!/usr/bin/env bash
# Start or stop every modelyard service as a background process (the `make up` stack without Docker).
#   services.sh start | stop | status
# Ports: tenant API $MODELYARD_API_PORT (8080), OpenAI-compatible ingress $MODELYARD_INGRESS_PORT (8081),
# dashboard $MODELYARD_DASHBOARD_PORT (8082), simulator $MODELYARD_SIMULATOR_PORT (8090),
# ops endpoints (/healthz /readyz /metrics) of router, inference-slm, inference-llm, metering and the
# webhook dispatcher on $MODELYARD_OPS_PORT_BASE (9101) and the four ports after it.
source "$(dirname "$0")/common.sh"

MODELYARD=$REPO_ROOT/.venv/bin/modelyard
LOGS=$RUN_DIR/logs
PIDS=$RUN_DIR/pids
API_PORT=${MODELYARD_API_PORT:-8080}
SIM_PORT=${MODELYARD_SIMULATOR_PORT:-8090}
INGRESS_PORT=${MODELYARD_INGRESS_PORT:-8081}
DASHBOARD_PORT=${MODELYARD_DASHBOARD_PORT:-8082}
OPS=${MODELYARD_OPS_PORT_BASE:-9101}
export MODELYARD_KAFKA__BOOTSTRAP_SERVERS=${MODELYARD_KAFKA__BOOTSTRAP_SERVERS:-127.0.0.1:${MODELYARD_KAFKA_PORT:-9092}}
export MODELYARD_MONGO__URL=${MODELYARD_MONGO__URL:-mongodb://127.0.0.1:${MODELYARD_MONGO_PORT:-27017}}
export MODELYARD_BACKEND_BASE_URL=${MODELYARD_BACKEND_BASE_URL:-http://127.0.0.1:$SIM_PORT/v1}
export MODELYARD_LOG_FORMAT=${MODELYARD_LOG_FORMAT:-json}
# The simulator replays the recorded GSM8K answers shipped with the app (`make demo`'s second table,
# `modelyard eval-cascade`): Mixtral's answers as gpt-4o-mini's, GPT-4's as gpt-4o's; every other prompt
# gets a generated answer.
export MODELYARD_SIMULATOR_REPLAY_FILE=${MODELYARD_SIMULATOR_REPLAY_FILE:-$REPO_ROOT/apps/modelyard/src/modelyard/data/gsm8k/gsm8k_dev.csv}
export MODELYARD_SIMULATOR_REPLAY_MODELS=${MODELYARD_SIMULATOR_REPLAY_MODELS:-'{"mistralai/Mixtral-8x7B-Instruct-v0.1": "gpt-4o-mini", "gpt-4-1106-preview": "gpt-4o"}'}
# ... as recorded: without log-probabilities (the file has none), so the workers judge exactly what was recorded
export MODELYARD_SIMULATOR_REPLAY_LOGPROBS=${MODELYARD_SIMULATOR_REPLAY_LOGPROBS:-false}

# name | command | readiness URL | extra environment
SERVICES=(
  "simulator|simulator|http://127.0.0.1:$SIM_PORT/v1/models|MODELYARD_SIMULATOR_PORT=$SIM_PORT"
  "router|router|http://127.0.0.1:$OPS/readyz|MODELYARD_OPS_PORT=$OPS"
  "inference-slm|inference --pool slm|http://127.0.0.1:$((OPS + 1))/readyz|MODELYARD_OPS_PORT=$((OPS + 1))"
  "inference-llm|inference --pool llm|http://127.0.0.1:$((OPS + 2))/readyz|MODELYARD_OPS_PORT=$((OPS + 2))"
  "metering|metering|http://127.0.0.1:$((OPS + 3))/readyz|MODELYARD_OPS_PORT=$((OPS + 3))"
  "webhooks|webhooks|http://127.0.0.1:$((OPS + 4))/readyz|MODELYARD_OPS_PORT=$((OPS + 4))"
  "tenant|tenant|http://127.0.0.1:$API_PORT/readyz|MODELYARD_API_PORT=$API_PORT"
  "ingress|ingress|http://127.0.0.1:$INGRESS_PORT/readyz|MODELYARD_INGRESS_PORT=$INGRESS_PORT"
  "dashboard|dashboard|http://127.0.0.1:$DASHBOARD_PORT/readyz|MODELYARD_DASHBOARD_PORT=$DASHBOARD_PORT MODELYARD_DASHBOARD_API_URL=http://127.0.0.1:$API_PORT"
)

ready() { curl -fsS -m 2 "$1" >/dev/null 2>&1; }

# The dashboard's session key: one per run folder, so sign-ins survive a restart of the dashboard.
dashboard_session_key() {
  local file=$RUN_DIR/dashboard-session.key
  if [[ ! -s $file ]]; then
    (umask 077; "$REPO_ROOT/.venv/bin/python" -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())' > "$file")
  fi
  cat "$file"
}

start() {
  [[ -x $MODELYARD ]] || die "$MODELYARD is missing: run 'make install' first"
  mkdir -p "$LOGS" "$PIDS"
  MODELYARD_DASHBOARD_SESSION_KEY=${MODELYARD_DASHBOARD_SESSION_KEY:-$(dashboard_session_key)}
  export MODELYARD_DASHBOARD_SESSION_KEY
  local entry name cmd url envs
  for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name cmd url envs <<<"$entry"
    if [[ -f $PIDS/$name.pid ]] && kill -0 "$(cat "$PIDS/$name.pid")" 2>/dev/null; then
      log "$name already running"; continue
    fi
    # shellcheck disable=SC2086 # $cmd and $envs are word lists on purpose
    env $envs nohup "$MODELYARD" $cmd >>"$LOGS/$name.log" 2>&1 &
    echo $! > "$PIDS/$name.pid"
  done
  for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name cmd url envs <<<"$entry"
    local deadline=$((SECONDS + 90)) pid; pid=$(cat "$PIDS/$name.pid")
    until ready "$url"; do
      kill -0 "$pid" 2>/dev/null || { tail -n 40 "$LOGS/$name.log" >&2; die "$name exited during start-up; log: $LOGS/$name.log"; }
      (( SECONDS < deadline )) || die "$name not ready at $url within 90 s; log: $LOGS/$name.log"
      sleep 0.2
    done
    log "$name ready ($url)"
  done
}

stop() {
  local i entry name
  for (( i=${#SERVICES[@]}-1; i>=0; i-- )); do
    IFS='|' read -r name _ <<<"${SERVICES[$i]}"
    stop_pidfile "$PIDS/$name.pid" "$name"
  done
}

status() {
  local entry name cmd url envs
  for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name cmd url envs <<<"$entry"
    if ready "$url"; then echo "$name: ready ($url)"; else echo "$name: not ready"; fi
  done
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
