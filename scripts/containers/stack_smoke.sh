#!/bin/bash
# The container stack test (`make test-containers`, run by .ci/run): brings up
# kafka, postgres, topics, produce, process, sink-lake, sink-postgres, the
# dashboard and Prometheus from compose.yaml + compose.ci.yaml with
# podman-compose, and checks, failing with exit 1 at the first that does not hold
# within TIMEOUT seconds of `up` (default 300):
#   0. (before up) the image's numba kernels load from its cache as its own user
#      (check_numba_cache.py: a processor and the COPY encoder load, none compiles;
#      replays of a trades file and of a daily-bars file compile nothing);
#   1. simulated trades become bars in both the lake volume and PostgreSQL;
#   2. Prometheus scrapes every job of deploy/prometheus/prometheus.yml (up == 1)
#      and holds MarketPulse series from each;
#   3. after produce is stopped (SIGTERM) and the pipeline has drained, the lake
#      and PostgreSQL hold exactly the same bars, indicators and alerts
#      (compare_stores.py, run in the marketpulse image on the stack's network).
# Then the spark profile's route, on a new stack of the same project: kafka,
# postgres, influxdb, topics, produce (at SPARK_SIMULATOR_RATE ticks/s, default 500)
# and spark, the services `docker compose --profile spark up` starts that write or
# feed the stores (no process, no sink: that profile has none):
#   4. (before up) the spark image starts a Spark session and finds Spark's Kafka
#      connector without any network (its Ivy cache holds the jars);
#   5. the spark service's bars reach the lake, PostgreSQL and InfluxDB, and the
#      health checks of spark (its driver's UI) and influxdb pass;
#   6. after produce is stopped and the route has drained, the bars topic
#      (read_committed), the lake (rows and distinct keys), PostgreSQL and InfluxDB
#      hold the same number of bars, and the lake and PostgreSQL the same rows
#      (check_spark_route.py): nothing was written twice.
# Then it tears everything down (containers, the project's network, its named
# and anonymous volumes), pass or fail. Run as root after setup_podman.sh,
# build_base.sh (and build_base.sh spark), build_kafka.sh and build_image.sh
# postgres|prometheus|influxdb. PHASES (default "process spark") picks the phases.
#
#   sudo scripts/containers/stack_smoke.sh
#   sudo PHASES=spark scripts/containers/stack_smoke.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
project="${COMPOSE_PROJECT:-mpci}"
timeout="${TIMEOUT:-300}"
phases=" ${PHASES:-process spark} "
services=(kafka postgres topics produce process sink-lake sink-postgres dashboard prometheus)
if [ "$(id -u)" != 0 ]; then
    echo "stack_smoke.sh: run as root (rootful podman)" >&2
    exit 2
fi
images=(localhost/marketpulse:local localhost/marketpulse-kafka:4.3.1
    localhost/marketpulse-postgres:15 localhost/marketpulse-prometheus:2)
if [[ "$phases" == *" spark "* ]]; then
    images+=(localhost/marketpulse-spark:local localhost/marketpulse-influxdb:1)
fi
for image in "${images[@]}"; do
    if ! podman image exists "$image"; then
        echo "stack_smoke.sh: no image $image: run make test-containers (it builds them)" >&2
        exit 2
    fi
done
# podman-compose 1.0.3 has no --env-file; the .env example's values go in
# through the environment (compose.yaml refuses to start without the secrets).
set -a
# shellcheck source=/dev/null
. ./.env.example
set +a
compose=(podman-compose -p "$project" -f compose.yaml -f compose.ci.yaml)

teardown() {
    local ids anon
    ids="$(podman ps -a -q --filter "label=io.podman.compose.project=$project")"
    anon=""
    if [ -n "$ids" ]; then
        # Anonymous volumes (the images' VOLUME lines) carry no project label.
        # shellcheck disable=SC2086
        anon="$(podman inspect --format '{{range .Mounts}}{{if eq .Type "volume"}}{{.Name}} {{end}}{{end}}' $ids |
            tr ' ' '\n' | grep -E '^[0-9a-f]{64}$' || true)"
    fi
    "${compose[@]}" down -v > /dev/null 2>&1 || true
    # and any container `down` left (one of a profile it did not consider)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || podman rm -f $ids > /dev/null 2>&1 || true
    # shellcheck disable=SC2086
    [ -z "$anon" ] || podman volume rm $anon > /dev/null 2>&1 || true
    # the named volumes, even without containers (a run killed mid-teardown
    # leaves a half-deleted PostgreSQL data directory that initdb refuses)
    podman volume ls -q --filter "name=^${project}_" | xargs -r podman volume rm -f > /dev/null 2>&1 || true
    podman network rm "${project}_default" > /dev/null 2>&1 || true
    rm -f "${errors:-}"
}
teardown  # whatever an earlier run of this project left behind
trap teardown EXIT

start=$SECONDS
say() { echo "stack_smoke.sh: $((SECONDS - start)) s: $*"; }
fail() {
    echo "stack_smoke.sh: $((SECONDS - start)) s: $*; the services' last log lines:" >&2
    for service in "${services[@]}"; do
        echo "== $service" >&2
        # the first lines too: a service restarting in a loop hides its first error
        podman logs "${project}_${service}_1" 2>&1 | sed -n '1,4p' >&2 || true
        echo "..." >&2
        podman logs --tail 8 "${project}_${service}_1" >&2 || true
    done
    exit 1
}

# The process route (profile `process`, COMPOSE_PROFILES of .env.example).
if [[ "$phases" == *" process "* ]]; then
# 0. The image's kernels load from its numba cache, as its own user (no compile).
if ! cache="$(podman run --rm -v "$PWD/scripts/containers/check_numba_cache.py:/tmp/check_numba_cache.py:ro" \
    --entrypoint python localhost/marketpulse:local /tmp/check_numba_cache.py 2>&1)"; then
    echo "stack_smoke.sh: the image compiles its kernels on start: $cache" >&2
    exit 1
fi
echo "stack_smoke.sh: $cache"

start=$SECONDS
"${compose[@]}" up -d "${services[@]}" > /dev/null 2>&1
say "up: ${services[*]}"

# 1. Bars in both stores.
count_bars='
import pathlib, pyarrow.dataset as ds
root = pathlib.Path("/data/lake")
counts = {}
for table in ("bars", "trades"):
    files = list((root / table).rglob("*.parquet")) if (root / table).exists() else []
    counts[table] = sum(ds.dataset(str(f)).count_rows() for f in files)
print(counts["bars"], counts["trades"])
'
bars=0
trades=0
pg_bars=0
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    sleep 5
    read -r bars trades < <(podman run --rm -v "${project}_lake:/data:ro" --entrypoint python \
        localhost/marketpulse:local -c "$count_bars" 2>/dev/null || echo 0 0)
    pg_bars="$(podman exec "${project}_postgres_1" psql -U marketpulse -d marketpulse -At \
        -c 'SELECT count(*) FROM bars' 2>/dev/null || echo 0)"
    [ "$bars" -gt 0 ] && [ "$pg_bars" -gt 0 ] && break
done
[ "$bars" -gt 0 ] && [ "$pg_bars" -gt 0 ] ||
    fail "lake $bars bars, PostgreSQL $pg_bars bars (both must be > 0)"
say "lake $bars bars, $trades trades; PostgreSQL $pg_bars bars"

# 2. Prometheus scrapes every job, and each gives MarketPulse series.
jobs="$(sed -n 's/^ *- job_name: *//p' deploy/prometheus/prometheus.yml | tr '\n' ' ')"
query() {
    podman exec "${project}_prometheus_1" wget -qO- "http://localhost:9090/api/v1/query?query=$1" 2>/dev/null ||
        echo '{}'
}
check_scrapes='
import json, sys
jobs = sys.argv[1].split()
up = {r["metric"]["job"]: r["value"][1] for r in json.loads(sys.argv[2]).get("data", {}).get("result", [])}
ours = {r["metric"]["job"]: int(r["value"][1]) for r in json.loads(sys.argv[3]).get("data", {}).get("result", [])}
missing = [j for j in jobs if up.get(j) != "1"]
empty = [j for j in jobs if j != "prometheus" and not ours.get(j)]
if missing or empty:
    print("not scraped: " + " ".join(missing) + "; no marketpulse_ series: " + " ".join(empty))
    sys.exit(1)
print(", ".join(f"{j} {ours.get(j, 0)} marketpulse_ series" for j in jobs if j != "prometheus"))
'
scraped=""
ok=0
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    if scraped="$(python3 -c "$check_scrapes" "$jobs" "$(query up)" \
        "$(query 'count%20by%20(job)%20(%7B__name__%3D~%22marketpulse_.%2A%22%7D)')")"; then
        ok=1
        break
    fi
    sleep 5
done
[ "$ok" = 1 ] || fail "Prometheus: $scraped"
say "Prometheus scraped $jobs: $scraped"

# 3. produce stopped; once the pipeline has drained, both stores hold the same rows.
# (podman without systemd complains that it cannot remove the health-check timer)
podman stop -t 20 "${project}_produce_1" > /dev/null 2>&1
say "produce stopped"
compare=(podman run --rm --network "${project}_default" -v "${project}_lake:/data:ro"
    -v "$PWD/scripts/containers/compare_stores.py:/tmp/compare_stores.py:ro"
    -e "MARKETPULSE_POSTGRES_URL=postgresql://marketpulse:$POSTGRES_PASSWORD@postgres:5432/marketpulse"
    --entrypoint python localhost/marketpulse:local /tmp/compare_stores.py)
errors="$(mktemp)"
previous=""
agreed=""
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    sleep 8
    if counts="$("${compare[@]}" 2> "$errors")"; then
        # the same rows twice in a row, eight seconds apart: drained
        [ "$counts" = "$previous" ] && agreed="$counts" && break
        previous="$counts"
    else
        previous=""
    fi
done
[ -n "$agreed" ] || fail "the stores differ: $(cat "$errors") ${counts:-}"
say "the lake and PostgreSQL agree: $agreed"
fi

# The spark route (`docker compose --profile spark up`), on empty stores.
if [[ "$phases" == *" spark "* ]]; then
teardown
export COMPOSE_PROFILES=spark  # what --profile spark sets
services=(kafka postgres influxdb topics produce spark)
phase_start=$SECONDS
start=$SECONDS

# 4. The spark image starts Spark and finds the Kafka connector with no network at all.
offline='
from marketpulse.spark import SparkOptions
from marketpulse.spark.job import spark_session
spark = spark_session(SparkOptions(checkpoint="/tmp/checkpoint"))
spark.readStream.format("kafka").option("kafka.bootstrap.servers", "127.0.0.1:9").option(
    "subscribe", "ticks").load()
print(f"Spark {spark.version} started and found its Kafka connector with no network")
spark.stop()
'
if ! found="$(podman run --rm --network none --entrypoint python \
    localhost/marketpulse-spark:local -c "$offline" 2>&1)"; then
    fail "the spark image cannot start Spark offline: $(echo "$found" | tail -n 5)"
fi
say "$(echo "$found" | tail -n 1)"

# 5. The spark service's bars in the lake, PostgreSQL and InfluxDB.
export MARKETPULSE_SIMULATOR_RATE="${SPARK_SIMULATOR_RATE:-500}"
"${compose[@]}" up -d "${services[@]}" > /dev/null 2>&1
say "up: ${services[*]} (the simulator at $MARKETPULSE_SIMULATOR_RATE ticks/s)"
check=(podman run --rm --network "${project}_default" -v "${project}_lake:/data:ro"
    -v "$PWD/scripts/containers/compare_stores.py:/tmp/compare_stores.py:ro"
    -v "$PWD/scripts/containers/check_spark_route.py:/tmp/check_spark_route.py:ro"
    -e "MARKETPULSE_POSTGRES_URL=postgresql://marketpulse:$POSTGRES_PASSWORD@postgres:5432/marketpulse"
    -e "MARKETPULSE_INFLUX_URL=http://influxdb:8086/marketpulse"
    -e "MARKETPULSE_KAFKA_BOOTSTRAP=kafka:9092"
    --entrypoint python localhost/marketpulse-spark:local /tmp/check_spark_route.py)
errors="$(mktemp)"
counts=""
reached=0
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    sleep 5
    if counts="$("${check[@]}" --some 2> "$errors")"; then
        reached=1
        break
    fi
done
[ "$reached" = 1 ] || fail "the spark route's bars: ${counts:-$(cat "$errors")}"
say "the spark route's bars in every store: $counts"
# compose.yaml's health checks of the route's own services, run as Compose runs a CMD
# test (no systemd runs them here, and podman-compose 1.0.3 mangles their quoting)
healthcheck='
import subprocess, sys, yaml
test = yaml.safe_load(open("compose.yaml"))["services"][sys.argv[1]]["healthcheck"]["test"]
assert test[0] == "CMD", test
check = subprocess.run(["podman", "exec", sys.argv[2], *test[1:]], capture_output=True, timeout=60)
sys.exit(check.returncode)
'
for service in spark influxdb; do
    python3 -c "$healthcheck" "$service" "${project}_${service}_1" ||
        fail "the $service container's health check fails"
done
say "the spark and influxdb health checks pass"

# 6. produce stopped; once drained, every store holds each bar once, the same rows.
podman stop -t 20 "${project}_produce_1" > /dev/null 2>&1
say "produce stopped"
previous=""
agreed=""
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    sleep 8
    if counts="$("${check[@]}" 2> "$errors")"; then
        [ "$counts" = "$previous" ] && agreed="$counts" && break
        previous="$counts"
    else
        previous=""
    fi
done
[ -n "$agreed" ] || fail "the spark route's stores differ: $(cat "$errors") ${counts:-}"
say "the spark route wrote each bar once, the same in every store: $(echo "$agreed" | tr '\n' ' ')"
expected="$(printf '%s\n' "${services[@]}" | sed "s/.*/${project}_&_1/")"
others="$(podman ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' |
    grep -v -x -F -f <(echo "$expected") || true)"
[ -z "$others" ] || fail "containers beside the spark route's: $others"
echo "stack_smoke.sh: the spark phase took $((SECONDS - phase_start)) s"
fi
