#!/bin/bash
# Builds a stand-in for an official image from the base image (build_base.sh
# base) and Debian packages, for a machine without container registry access.
# Run as root.
#
#   sudo scripts/containers/build_image.sh postgres     # localhost/marketpulse-postgres:15
#   sudo scripts/containers/build_image.sh prometheus   # localhost/marketpulse-prometheus:2
#   sudo scripts/containers/build_image.sh influxdb     # localhost/marketpulse-influxdb:1
#
# The build context is scripts/containers/NAME/. podman's layer cache makes a
# rebuild of an unchanged context take a second.
set -euo pipefail

cd "$(dirname "$0")/../.."
base="${MARKETPULSE_BASE_IMAGE:-localhost/marketpulse-base:bookworm}"
case "${1:-}" in
    postgres) image="${MARKETPULSE_POSTGRES_IMAGE:-localhost/marketpulse-postgres:15}" ;;
    prometheus) image="${MARKETPULSE_PROMETHEUS_IMAGE:-localhost/marketpulse-prometheus:2}" ;;
    influxdb) image="${MARKETPULSE_INFLUXDB_IMAGE:-localhost/marketpulse-influxdb:1}" ;;
    *)
        echo "build_image.sh: expected postgres, prometheus or influxdb, got '${1:-}'" >&2
        exit 2
        ;;
esac
if [ "$(id -u)" != 0 ]; then
    echo "build_image.sh: run as root (rootful podman)" >&2
    exit 2
fi
previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
start=$SECONDS
podman build --quiet --build-arg "BASE_IMAGE=$base" --tag "$image" "scripts/containers/$1" > /dev/null
echo "build_image.sh: $image built in $((SECONDS - start)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
# The image this build replaced, now untagged: removed, unless a container uses it.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman image rm "$previous" > /dev/null 2>&1 || true
fi
