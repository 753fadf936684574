#!/usr/bin/env bash
# Apache Kafka 4.x in KRaft mode without Docker: jars from Maven Central, started with `java`.
#   kafka.sh fetch | start [--sasl-ssl] | stop [--sasl-ssl] | status [--sasl-ssl]
# Environment: MODELYARD_KAFKA_PORT (9092), MODELYARD_KAFKA_CONTROLLER_PORT (9093),
#              MODELYARD_KAFKA_HEAP (512m; the broker's heap, never above 1g here), MODELYARD_RUN_DIR.
#
# --sasl-ssl starts a second, secured broker instead (its own folder, $MODELYARD_RUN_DIR/kafka-sasl):
# one SASL_SSL listener on MODELYARD_KAFKA_SASL_PORT (9094; controller: MODELYARD_KAFKA_SASL_CONTROLLER_PORT,
# 9095), SCRAM-SHA-512 users `admin` (super user) and `modelyard-<service>` per service, a CA and a broker
# certificate generated with openssl, and ACL authorisation (StandardAuthorizer; no ACL, no access).
# Its clients' settings and generated passwords are in kafka-sasl/credentials.env (mode 600); the ACLs
# are applied with `modelyard kafka acls --apply`.
source "$(dirname "$0")/common.sh"

SECURE=false
[[ ${2:-} == --sasl-ssl ]] && SECURE=true
HEAP=${MODELYARD_KAFKA_HEAP:-512m}
LIBS=$CACHE_DIR/kafka/libs
if $SECURE; then
  PORT=${MODELYARD_KAFKA_SASL_PORT:-9094}
  CONTROLLER_PORT=${MODELYARD_KAFKA_SASL_CONTROLLER_PORT:-9095}
  DIR=$RUN_DIR/kafka-sasl
  TEMPLATE=$REPO_ROOT/deploy/local/kafka/server-sasl.properties.in
else
  PORT=${MODELYARD_KAFKA_PORT:-9092}
  CONTROLLER_PORT=${MODELYARD_KAFKA_CONTROLLER_PORT:-9093}
  DIR=$RUN_DIR/kafka
  TEMPLATE=$REPO_ROOT/deploy/local/kafka/server.properties.in
fi
PIDFILE=$DIR/kafka.pid
LOGFILE=$DIR/kafka.log
# The services that get a SCRAM user on the secured broker (modelyard_events.topology.SERVICES; a test
# checks the two lists agree).
SERVICES=(tenant router inference metering ingress billing webhooks)

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
  local scram=()
  if $SECURE; then
    secrets
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(credential ADMIN)]")
    for s in "${SERVICES[@]}"; do scram+=(--add-scram "SCRAM-SHA-512=[name=modelyard-$s,password=$(credential "${s^^}")]"); done
  fi
  ( umask 077
    sed -e "s#@PORT@#$PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" -e "s#@DATA@#$DIR/data#g" \
        -e "s#@TLS@#$DIR/tls#g" -e "s#@ADMIN_PASSWORD@#$(credential ADMIN)#g" -e "s#@STORE_PASSWORD@#$(credential STORE)#g" \
        "$TEMPLATE" > "$DIR/server.properties" )
  local cp="$LIBS/*"
  if [[ ! -f $DIR/data/meta.properties ]]; then
    log "formatting KRaft storage in $DIR/data"
    java -cp "$cp" -Dlog4j2.configurationFile="$REPO_ROOT/deploy/local/kafka/log4j2.properties" \
        kafka.tools.StorageTool format --ignore-formatted -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)" \
        -c "$DIR/server.properties" "${scram[@]}" >>"$LOGFILE" 2>&1 || die "formatting Kafka storage failed; log: $LOGFILE"
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
  if $SECURE; then log "SASL_SSL only; client settings and passwords: $DIR/credentials.env"; fi
}

# credential NAME: a value from the secured broker's credentials file (empty for the plaintext broker).
credential() {
  [[ -f $DIR/credentials.env ]] || return 0
  sed -n "s/^MODELYARD_KAFKA_SASL_PASSWORD_$1=//p" "$DIR/credentials.env"
}

# The secured broker's secrets, made once per run folder: random passwords, a CA, the broker's
# certificate (for 127.0.0.1 and localhost) and its PKCS12 key and trust stores.
secrets() {
  if [[ -f $DIR/credentials.env && -f $DIR/tls/truststore.p12 ]]; then
    local missing=""
    for name in ADMIN STORE "${SERVICES[@]^^}"; do
      grep -q "^MODELYARD_KAFKA_SASL_PASSWORD_$name=" "$DIR/credentials.env" || missing+=" $name"
    done
    [[ -z $missing ]] && return
    # A run folder from before a service was added: its broker has no user for it. Start over.
    log "no password for${missing,,} in $DIR/credentials.env (made before that service existed): new secrets"
  fi
  require openssl "to generate the secured broker's CA and certificate"
  require keytool "to write the broker's trust store (it comes with the JDK)"
  log "generating passwords, a CA and the broker certificate in $DIR"
  rm -rf "$DIR/tls" "$DIR/data"
  mkdir -p "$DIR/tls"
  chmod 700 "$DIR" "$DIR/tls"
  local tls=$DIR/tls
  ( umask 077
    { echo "# Generated by kafka.sh start --sasl-ssl: the secured broker's client settings and passwords."
      echo "MODELYARD_KAFKA_SASL_BOOTSTRAP=127.0.0.1:$PORT"
      echo "MODELYARD_KAFKA_SASL_CA_FILE=$tls/ca.pem"
      for name in ADMIN STORE "${SERVICES[@]^^}"; do echo "MODELYARD_KAFKA_SASL_PASSWORD_$name=$(openssl rand -hex 24)"; done
    } > "$DIR/credentials.env"
    openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=modelyard local CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > "$tls/broker.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 825 \
        -extfile "$tls/broker.ext" -out "$tls/broker.pem" 2>/dev/null
    openssl pkcs12 -export -in "$tls/broker.pem" -inkey "$tls/broker.key" -certfile "$tls/ca.pem" -name broker \
        -out "$tls/broker.p12" -passout "pass:$(credential STORE)"
    keytool -importcert -noprompt -alias modelyard-ca -file "$tls/ca.pem" -keystore "$tls/truststore.p12" \
        -storetype PKCS12 -storepass "$(credential STORE)" >/dev/null 2>&1
  ) || die "generating the secured broker's certificates failed"
}

case ${1:-} in
  fetch) fetch ;;
  start) start ;;
  stop) stop_pidfile "$PIDFILE" Kafka ;;
  status) [[ -f $PIDFILE ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && echo "kafka running on $PORT" || { echo "kafka stopped"; exit 1; } ;;
  *) echo "usage: $0 fetch | start [--sasl-ssl] | stop [--sasl-ssl] | status [--sasl-ssl]" >&2; exit 2 ;;
esac
