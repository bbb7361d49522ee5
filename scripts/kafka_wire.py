"""Just enough of the Kafka wire protocol to ask a broker whether it serves clients.

A sibling of ``kafka_broker.py``, standard library only, so that the broker script can
wait for its broker without any Kafka client installed.
"""

from __future__ import annotations

import socket
import struct

__all__ = ["Wire", "probe"]


class Wire:
    """Just enough of the Kafka wire protocol to ask a broker whether it is ready."""

    API_VERSIONS = 18
    METADATA = 3
    METADATA_VERSION = 4  # non-flexible; still supported by Kafka 4.x
    CLIENT_ID = b"marketpulse-probe"

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.correlation_id = 0

    def request(self, api_key: int, api_version: int, body: bytes = b"") -> bytes:
        """Send one request (header v1) and return the response body after its header."""
        self.correlation_id += 1
        header = struct.pack(
            ">hhih", api_key, api_version, self.correlation_id, len(self.CLIENT_ID)
        )
        payload = header + self.CLIENT_ID + body
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", self._read(4))
        response = self._read(size)
        (correlation_id,) = struct.unpack_from(">i", response)
        if correlation_id != self.correlation_id:
            raise OSError(f"correlation id {correlation_id} != {self.correlation_id}")
        return response[4:]

    def _read(self, size: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self.sock.recv(size - len(chunks))
            if not chunk:
                raise OSError("the broker closed the connection")
            chunks.extend(chunk)
        return bytes(chunks)

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """Return ``{api_key: (min_version, max_version)}`` from ApiVersions v0."""
        body = self.request(self.API_VERSIONS, 0)
        error, count = struct.unpack_from(">hi", body)
        if error:
            raise OSError(f"ApiVersions error code {error}")
        versions = {}
        for index in range(count):
            key, low, high = struct.unpack_from(">hhh", body, 6 + 6 * index)
            versions[key] = (low, high)
        return versions

    def broker_ids(self) -> tuple[list[int], int]:
        """Return the unfenced broker ids and the controller id from Metadata v4."""
        # topics: empty array (no topics); allow_auto_topic_creation: false
        body = self.request(self.METADATA, self.METADATA_VERSION, struct.pack(">i?", 0, False))
        offset = 4  # throttle_time_ms
        (count,) = struct.unpack_from(">i", body, offset)
        offset += 4
        ids = []
        for _ in range(count):
            node_id, host_len = struct.unpack_from(">ih", body, offset)
            offset += 6 + host_len + 4  # node_id, host, port
            (rack_len,) = struct.unpack_from(">h", body, offset)
            offset += 2 + max(rack_len, 0)
            ids.append(node_id)
        (cluster_len,) = struct.unpack_from(">h", body, offset)
        offset += 2 + max(cluster_len, 0)
        (controller_id,) = struct.unpack_from(">i", body, offset)
        return ids, controller_id


def probe(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> str | None:
    """Ask the broker at ``host:port`` whether it serves clients.

    Args:
        port: The broker's client (PLAINTEXT) port.
        host: The broker's address.
        timeout: Seconds for the connection and each round trip.

    Returns:
        None when the broker answered ApiVersions and lists itself, unfenced, in a Metadata
        response; otherwise a short reason why it is not ready yet.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            wire = Wire(sock)
            versions = wire.api_versions()
            low, high = versions.get(Wire.METADATA, (0, -1))
            if not low <= Wire.METADATA_VERSION <= high:
                return None  # answered ApiVersions; cannot check metadata with this probe
            ids, controller = wire.broker_ids()
    except (OSError, struct.error) as error:
        return f"{type(error).__name__}: {error}"
    if not ids:
        return "no unfenced broker in the metadata yet"
    if controller < 0:
        return "no active controller yet"
    return None
