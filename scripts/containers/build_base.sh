#!/bin/bash
# Builds the images the container test runs on a machine without container
# registry access, from Debian packages only; run as root after setup_podman.sh.
#
#   sudo scripts/containers/build_base.sh            # base image + marketpulse:local
#   sudo scripts/containers/build_base.sh base       # the base image only
#   sudo scripts/containers/build_base.sh spark      # base image + marketpulse-spark:local
#
# 1. localhost/marketpulse-base:bookworm: `mmdebstrap` (minbase, bookworm and its
#    security updates) with python3, python3-venv, python-is-python3 and
#    ca-certificates, piped into `podman import`. Rebuilt only when missing
#    (REBUILD_BASE=1 forces it).
# 2. localhost/marketpulse:local: the project's Dockerfile with both base-image
#    build arguments pointing at (1). The host's CA bundle (CA_BUNDLE, default
#    /etc/ssl/certs/ca-certificates.crt) goes in as a build secret, so pip inside
#    can reach PyPI through a TLS-re-signing network; it is never in a layer.
# 3. (argument spark) localhost/marketpulse-spark:local: the Dockerfile's `spark`
#    target on (1), the same build arguments and secret (Java trusts the secret's CA
#    for that build step only, to fetch the Kafka connector from Maven Central). It
#    shares the dependency and application stages with (2), built once.
set -euo pipefail

cd "$(dirname "$0")/../.."
base="${MARKETPULSE_BASE_IMAGE:-localhost/marketpulse-base:bookworm}"
image="${MARKETPULSE_IMAGE:-localhost/marketpulse:local}"
target=()
if [ "${1:-all}" = spark ]; then
    image="${MARKETPULSE_SPARK_IMAGE:-localhost/marketpulse-spark:local}"
    target=(--target spark)
fi
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if [ "$(id -u)" != 0 ]; then
    echo "build_base.sh: run as root (rootful podman, mmdebstrap)" >&2
    exit 2
fi
case "${1:-all}" in
    all | base | spark) ;;
    *)
        echo "build_base.sh: unknown argument '$1' (expected: base, spark, or nothing)" >&2
        exit 2
        ;;
esac

if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "$base"; then
    start=$SECONDS
    # Documentation, man pages and translations are left out of the image.
    mmdebstrap --variant=minbase \
        --include=python3,python3-venv,python-is-python3,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --aptopt='Acquire::Retries "3"' \
        bookworm - \
        "deb $mirror bookworm main" \
        "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" |
        podman import --change 'CMD ["/bin/bash"]' - "$base" > /dev/null
    echo "build_base.sh: $base built in $((SECONDS - start)) s"
fi
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$base"
[ "${1:-all}" = base ] && exit 0

secret=()
if [ -s "$ca_bundle" ]; then
    secret=(--secret "id=ca-bundle,src=$ca_bundle")
fi
previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
start=$SECONDS
podman build \
    --build-arg "PYTHON_BUILD_IMAGE=$base" \
    --build-arg "PYTHON_RUNTIME_IMAGE=$base" \
    "${secret[@]}" \
    "${target[@]}" \
    --tag "$image" \
    .
echo "build_base.sh: $image built in $((SECONDS - start)) s"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image"
# The image this build replaced, now untagged: removed, unless a container uses it.
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$image")" ]; then
    podman image rm "$previous" > /dev/null 2>&1 || true
fi
