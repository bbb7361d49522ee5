#!/bin/bash
# Brings up the stack without Grafana, Prometheus, kafka-ui and the dashboard
# (kafka, postgres, topics, produce, process, sink-lake, sink-postgres) from
# compose.yaml + compose.ci.yaml with podman-compose, waits until bars land in
# both the lake volume and PostgreSQL, prints the counts, and tears everything
# down (containers, the project's network, its named and anonymous volumes).
# Run as root after setup_podman.sh, build_base.sh, build_kafka.sh and
# build_postgres.sh. Exits 1 when bars are missing from either after TIMEOUT
# seconds (default 180), printing the services' last log lines.
#
#   sudo scripts/containers/stack_smoke.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
project="${COMPOSE_PROJECT:-mpci}"
timeout="${TIMEOUT:-180}"
services=(kafka postgres topics produce process sink-lake sink-postgres)
if [ "$(id -u)" != 0 ]; then
    echo "stack_smoke.sh: run as root (rootful podman)" >&2
    exit 2
fi
for image in localhost/marketpulse:local localhost/marketpulse-kafka:4.3.1 localhost/marketpulse-postgres:15; do
    if ! podman image exists "$image"; then
        echo "stack_smoke.sh: no image $image: run scripts/containers/build_base.sh, build_kafka.sh and build_postgres.sh first" >&2
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
    # shellcheck disable=SC2086
    [ -z "$anon" ] || podman volume rm $anon > /dev/null 2>&1 || true
    podman network rm "${project}_default" > /dev/null 2>&1 || true
}
trap teardown EXIT

start=$SECONDS
"${compose[@]}" up -d "${services[@]}" > /dev/null 2>&1
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
pg_trades=0
while [ $((SECONDS - start)) -lt "$timeout" ]; do
    sleep 5
    read -r bars trades < <(podman run --rm -v "${project}_lake:/data:ro" --entrypoint python \
        localhost/marketpulse:local -c "$count_bars" 2>/dev/null || echo 0 0)
    read -r pg_bars pg_trades < <(podman exec "${project}_postgres_1" psql -U marketpulse -d marketpulse \
        -At -F ' ' -c 'SELECT (SELECT count(*) FROM bars), (SELECT count(*) FROM trades)' 2>/dev/null ||
        echo 0 0)
    [ "$bars" -gt 0 ] && [ "$pg_bars" -gt 0 ] && break
done
if [ "$bars" -gt 0 ] && [ "$pg_bars" -gt 0 ]; then
    echo "stack_smoke.sh: $((SECONDS - start)) s after up: lake $bars bars, $trades trades; PostgreSQL $pg_bars bars, $pg_trades trades"
    exit 0
fi
echo "stack_smoke.sh: after $timeout s: lake $bars bars, PostgreSQL $pg_bars bars (both must be > 0); the services' last log lines:" >&2
for service in "${services[@]}"; do
    echo "== $service" >&2
    podman logs --tail 5 "${project}_${service}_1" >&2 || true
done
exit 1
