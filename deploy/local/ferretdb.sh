#!/usr/bin/env bash
# FerretDB 1.24 (MongoDB wire protocol) on SQLite, without Docker.
#   ferretdb.sh fetch | start | stop | status
# Environment: MODELYARD_MONGO_PORT (27017), MODELYARD_RUN_DIR, MODELYARD_CACHE_DIR,
#              MODELYARD_FERRETDB_DEBUG_ADDR (off; e.g. 127.0.0.1:8089 serves /debug/metrics per command).
source "$(dirname "$0")/common.sh"

VERSION=v1.24.2
PORT=${MODELYARD_MONGO_PORT:-27017}
BIN=$CACHE_DIR/bin/ferretdb-$VERSION
DIR=$RUN_DIR/ferretdb
PIDFILE=$DIR/ferretdb.pid
LOGFILE=$DIR/ferretdb.log

fetch() {
  if [[ -x $BIN ]]; then log "FerretDB $VERSION cached at $BIN"; return; fi
  require go "to build FerretDB $VERSION from the Go module proxy"
  log "building FerretDB $VERSION with go (first run only)"
  # `go install ...@v1.24.2` builds a binary that panics at start: the module as published lacks
  # build/version/version.txt, which FerretDB embeds. Build from a copy with that file written.
  local src build
  src=$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [[ -d $src ]] || die "could not download github.com/FerretDB/FerretDB@$VERSION from the Go module proxy"
  build=$CACHE_DIR/build/ferretdb-$VERSION
  rm -rf "$build"; mkdir -p "$build" "$CACHE_DIR/bin"
  cp -r "$src/." "$build/"; chmod -R u+w "$build"
  echo "$VERSION" > "$build/build/version/version.txt"
  (cd "$build" && CGO_ENABLED=0 go build -trimpath -o "$BIN.tmp" ./cmd/ferretdb) >&2 || die "building FerretDB failed"
  mv "$BIN.tmp" "$BIN"; rm -rf "$build"
}

start() {
  fetch
  if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "FerretDB already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return
  fi
  port_open "$PORT" && die "port $PORT is taken by another process; set MODELYARD_MONGO_PORT"
  mkdir -p "$DIR/data" "$DIR/state"
  log "starting FerretDB on 127.0.0.1:$PORT (SQLite in $DIR/data, log $LOGFILE)"
  nohup "$BIN" --handler=sqlite --sqlite-url="file:$DIR/data/" --state-dir="$DIR/state" \
      --listen-addr="127.0.0.1:$PORT" --debug-addr="${MODELYARD_FERRETDB_DEBUG_ADDR:--}" --telemetry=disable --log-level=warn \
      >>"$LOGFILE" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for_port "$PORT" FerretDB "$(cat "$PIDFILE")" "$LOGFILE" 30
  log "FerretDB ready on 127.0.0.1:$PORT"
}

case ${1:-} in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pidfile "$PIDFILE" FerretDB ;;
  status) [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && echo "ferretdb running on $PORT" || { echo "ferretdb stopped"; exit 1; } ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
