#!/bin/bash
# Builds localhost/marketpulse-kafka:4.3.1, a stand-in for apache/kafka made
# from the base image (build_base.sh base), Debian's OpenJDK 17 and the Kafka
# jars scripts/kafka_broker.py fetches from Maven Central. Run as root.
#
#   sudo scripts/containers/build_kafka.sh
set -euo pipefail

cd "$(dirname "$0")/../.."
version="${KAFKA_VERSION:-4.3.1}"
base="${MARKETPULSE_BASE_IMAGE:-localhost/marketpulse-base:bookworm}"
image="${MARKETPULSE_KAFKA_IMAGE:-localhost/marketpulse-kafka:$version}"
if [ "$(id -u)" != 0 ]; then
    echo "build_kafka.sh: run as root (rootful podman)" >&2
    exit 2
fi
# The jars come from Maven Central once (mvn), cached where kafka_broker.py keeps them.
if ! libs="$(python3 -c "
import sys
sys.path.insert(0, 'scripts')
from kafka_broker import default_cache_root
from kafka_jars import JarsError, install_jars
try:
    print(install_jars(default_cache_root() / 'kafka-$version', '$version'))
except JarsError as exc:
    sys.exit(f'build_kafka.sh: {exc}')
")"; then
    exit 1
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp -r scripts/containers/kafka/. "$context/"
cp -r "$libs" "$context/libs"
cp scripts/kafka_wire.py "$context/"
previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
start=$SECONDS
podman build --build-arg "BASE_IMAGE=$base" --tag "$image" --file "$context/Containerfile" "$context"
echo "build_kafka.sh: $image built in $((SECONDS - start)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
# The image this build replaced, now untagged: removed, unless a container uses it.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman image rm "$previous" > /dev/null 2>&1 || true
fi
