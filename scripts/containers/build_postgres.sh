#!/bin/bash
# Builds localhost/marketpulse-postgres:15, a stand-in for the postgres image
# made from the base image (build_base.sh base) and Debian's PostgreSQL 15.
# Run as root.
#
#   sudo scripts/containers/build_postgres.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
base="${MARKETPULSE_BASE_IMAGE:-localhost/marketpulse-base:bookworm}"
image="${MARKETPULSE_POSTGRES_IMAGE:-localhost/marketpulse-postgres:15}"
if [ "$(id -u)" != 0 ]; then
    echo "build_postgres.sh: run as root (rootful podman)" >&2
    exit 2
fi
previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
start=$SECONDS
podman build --build-arg "BASE_IMAGE=$base" --tag "$image" scripts/containers/postgres
echo "build_postgres.sh: $image built in $((SECONDS - start)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
# The image this build replaced, now untagged: removed, unless a container uses it.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman image rm "$previous" > /dev/null 2>&1 || true
fi
