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
libs="$(python3 -c "
import sys
sys.path.insert(0, 'scripts')
from kafka_broker import default_cache_root
print(default_cache_root() / 'kafka-$version' / 'libs')
")"
if [ ! -f "$libs/kafka_2.13-$version.jar" ]; then
    echo "build_kafka.sh: fetching the Kafka $version jars (scripts/kafka_broker.py install)"
    echo "build_kafka.sh: no Kafka $version jars in $libs: run python3 scripts/kafka_broker.py up --kafka-version $version once (it fetches them), then again" >&2
    exit 1
fi
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
cp -r scripts/containers/kafka/. "$context/"
cp -r "$libs" "$context/libs"
cp scripts/kafka_wire.py "$context/"
start=$SECONDS
podman build --build-arg "BASE_IMAGE=$base" --tag "$image" --file "$context/Containerfile" "$context"
echo "build_kafka.sh: $image built in $((SECONDS - start)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
