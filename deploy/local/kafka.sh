#!/usr/bin/env bash
# Apache Kafka 4.x in KRaft mode without Docker: jars from Maven Central, started with `java`.
#   kafka.sh fetch | start | stop | status
# Environment: MODELYARD_KAFKA_PORT (9092), MODELYARD_KAFKA_CONTROLLER_PORT (9093),
#              MODELYARD_KAFKA_HEAP (512m; the broker's heap, never above 1g here), MODELYARD_RUN_DIR.
source "$(dirname "$0")/common.sh"

PORT=${MODELYARD_KAFKA_PORT:-9092}
CONTROLLER_PORT=${MODELYARD_KAFKA_CONTROLLER_PORT:-9093}
HEAP=${MODELYARD_KAFKA_HEAP:-512m}
LIBS=$CACHE_DIR/kafka/libs
DIR=$RUN_DIR/kafka
PIDFILE=$DIR/kafka.pid
LOGFILE=$DIR/kafka.log

fetch() {
  if [[ -f $LIBS/.complete ]]; then log "Kafka jars cached in $LIBS"; return; fi
  require java "to run the Kafka broker (JDK 17 or newer)"
  require mvn "to resolve the Kafka broker's jars from Maven Central"
  log "resolving Kafka jars from Maven Central into $LIBS (first run only)"
  rm -rf "$LIBS"
  mvn -B -q -f "$REPO_ROOT/deploy/local/kafka/pom.xml" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$LIBS" >&2 || die "Maven could not resolve the Kafka jars"
  touch "$LIBS/.complete"
}

start() {
  fetch
  if [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "Kafka already running (pid $(cat "$PIDFILE")) on 127.0.0.1:$PORT"; return
  fi
  port_open "$PORT" && die "port $PORT is taken by another process; set MODELYARD_KAFKA_PORT"
  port_open "$CONTROLLER_PORT" && die "port $CONTROLLER_PORT is taken by another process; set MODELYARD_KAFKA_CONTROLLER_PORT"
  mkdir -p "$DIR"
  sed -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA@#$DIR/data#g" \
      "$REPO_ROOT/deploy/local/kafka/server.properties.in" > "$DIR/server.properties"
  local cp="$LIBS/*"
  if [[ ! -f $DIR/data/meta.properties ]]; then
    log "formatting KRaft storage in $DIR/data"
    java -cp "$cp" -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka/log4j2.properties" \
        kafka.tools.StorageTool format --ignore-formatted -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
        -c "$DIR/server.properties" >>"$LOGFILE" 2>&1 || die "formatting Kafka storage failed; log: $LOGFILE"
  fi
  log "starting Kafka on 127.0.0.1:$PORT (heap $HEAP, log $LOGFILE)"
  nohup java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka/log4j2.properties" \
      -cp "$cp" kafka.Kafka "$DIR/server.properties" >>"$LOGFILE" 2>&1 &
  echo $! > "$PIDFILE"
  wait_for_port "$PORT" Kafka "$(cat "$PIDFILE")" "$LOGFILE" 90
  # The port opens before the broker has joined its own controller quorum; wait for that too.
  local deadline=$((SECONDS + 90))
  until grep -q "Kafka Server started" "$LOGFILE"; do
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -n 20 "$LOGFILE" >&2; die "Kafka exited during start-up; log: $LOGFILE"; }
    (( SECONDS < deadline )) || die "Kafka did not finish starting; log: $LOGFILE"
    sleep 0.2
  done
  log "Kafka ready on 127.0.0.1:$PORT"
}

case ${1:-} in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pidfile "$PIDFILE" Kafka ;;
  status) [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && echo "kafka running on $PORT" || { echo "kafka stopped"; exit 1; } ;;
  *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
