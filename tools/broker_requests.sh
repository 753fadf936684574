#!/usr/bin/env bash
# Sample a local broker's cumulative request counters (Produce, Fetch, OffsetCommit) every second into a CSV,
# with Kafka's own JMX reader, for tools/broker_requests.py (docs/benchmarks.md, "CPU per query (issue 22)").
#   tools/broker_requests.sh KAFKA_PID JMX_PORT OUT.csv
# The broker started by deploy/local/kafka.sh has no JMX port; this opens one in the running JVM (jcmd),
# bound to 127.0.0.1 without authentication: for a benchmark broker on this machine only.
# JmxTool resolves its object names once, at start: it waits until the broker has served all three kinds.
set -euo pipefail
PID=$1 PORT=$2 OUT=$3
CP="${MODELYARD_CACHE_DIR:-$(dirname "$0")/../.cache}/kafka/libs/*"
jcmd "$PID" ManagementAgent.start "jmxremote.port=$PORT" "jmxremote.rmi.port=$PORT" jmxremote.authenticate=false \
    jmxremote.ssl=false jmxremote.host=127.0.0.1 >/dev/null 2>&1 || true  # already started: fine
ARGS=(--jmx-url "service:jmx:rmi:///jndi/rmi://127.0.0.1:$PORT/jmxrmi" --attributes Count)
for request in Produce Fetch OffsetCommit; do
  ARGS+=(--object-name "kafka.network:type=RequestMetrics,name=RequestsPerSec,request=$request,*")
done
has_all() { local h; h=$(java -Xmx64m -cp "$CP" org.apache.kafka.tools.JmxTool "${ARGS[@]}" --one-time true 2>/dev/null | head -1)
  [[ $h == *request=Produce* && $h == *request=Fetch* && $h == *request=OffsetCommit* ]]; }
until has_all; do sleep 3; done
exec java -Xmx64m -cp "$CP" org.apache.kafka.tools.JmxTool "${ARGS[@]}" --reporting-interval 1000 > "$OUT"
