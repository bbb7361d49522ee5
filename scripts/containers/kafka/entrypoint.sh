#!/bin/sh
# Writes server.properties from the KAFKA_* variables (KAFKA_LOG_DIRS ->
# log.dirs), formats the KRaft storage with CLUSTER_ID unless already done, and
# runs the broker in the foreground.
set -eu
config=/opt/kafka/config/server.properties
: > "$config"
env | grep '^KAFKA_' | grep -v -E '^KAFKA_(HEAP_OPTS|OPTS)=' | while IFS='=' read -r name value; do
    key="$(printf %s "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')"
    printf '%s=%s\n' "$key" "$value" >> "$config"
done
cat > /opt/kafka/config/log4j2.properties <<'LOG'
status = warn
appender.console.type = Console
appender.console.name = console
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = console
logger.request.name = kafka.request.logger
logger.request.level = WARN
LOG
# KAFKA_HEAP_OPTS and KAFKA_OPTS split on spaces; no glob expands (-cp libs/*).
set -f
run_java() {
    # shellcheck disable=SC2086
    java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true ${KAFKA_OPTS:-} \
        -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp '/opt/kafka/libs/*' "$@"
}
data_dir="${KAFKA_LOG_DIRS:-/var/lib/kafka/data}"
if [ ! -f "$data_dir/meta.properties" ]; then
    run_java kafka.tools.StorageTool format --cluster-id "${CLUSTER_ID:?CLUSTER_ID is required}" \
        --config "$config" --ignore-formatted
fi
# exec: the JVM is PID 1's replacement and gets the stop signal.
set -- "$config"
exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g} -XX:+UseG1GC -Djava.awt.headless=true ${KAFKA_OPTS:-} \
    -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -cp '/opt/kafka/libs/*' kafka.Kafka "$@"
