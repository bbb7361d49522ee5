#!/bin/sh
# Health check with the name apache/kafka's image uses: exits 0 when the broker
# at --bootstrap-server host:port answers ApiVersions and lists itself,
# unfenced, in Metadata (scripts/kafka_wire.py's probe, standard library only).
set -eu
server=localhost:9092
while [ $# -gt 0 ]; do
    case "$1" in
        --bootstrap-server) server="$2"; shift 2 ;;
        *) shift ;;
    esac
done
exec python3 - "$server" <<'PY'
import sys
sys.path.insert(0, "/opt/kafka/python")
from kafka_wire import probe
host, _, port = sys.argv[1].rpartition(":")
reason = probe(int(port), host or "localhost", timeout=5.0)
if reason:
    print(f"broker not ready: {reason}")
    sys.exit(1)
print(f"broker at {sys.argv[1]} is ready")
PY
