"""Heavy history requests: a bounded number at a time, answers streamed in slices.

A request for up to 100,000 rows costs a query over the lake and the rows'
encoding. Unbounded, a few hundred such requests at once held every answer in
memory together (gigabytes) and each waited behind all the others. Here at most
:attr:`HeavyLimits.running` are read and sent at a time, at most
:attr:`HeavyLimits.waiting` more wait their turn, and any beyond those is
answered at once with 503 and ``Retry-After``. An answer is encoded and sent a
slice of rows at a time, so a request holds its query's Arrow table and one
slice of JSON, never every row as Python objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa
from fastapi import HTTPException
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from marketpulse.serve.records import to_records

__all__ = ["BUSY_RESPONSE", "HeavyGate", "HeavyLimits", "RETRY_AFTER_S", "rows_response"]

#: Seconds a refused client is asked to wait before trying again.
RETRY_AFTER_S = 1
#: Rows converted to Python objects and encoded at a time.
_SLICE_ROWS = 2_000

#: How a refused heavy request is documented in the OpenAPI description.
BUSY_RESPONSE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The server is busy with other large history requests: none was "
        "read; try again after Retry-After seconds.",
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "integer"},
            }
        },
        "content": {"application/json": {"schema": {
            "type": "object", "properties": {"detail": {"type": "string"}},
        }}},
    }
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeavyLimits:
    """How many history requests are served at once, and how many may wait.

    Attributes:
        running: requests read from the lake and sent at the same time.
        waiting: further requests that wait for a turn; more are refused with 503.
    """

    running: int = 2
    waiting: int = 16

    def __post_init__(self) -> None:
        if self.running < 1 or self.waiting < 0:
            raise ValueError(f"heavy request limits: running >= 1 and waiting >= 0, got {self}")


class HeavyGate:
    """Admits heavy requests up to the limits; a turn is held until its answer is sent.

    Safe to use from any thread: the endpoints that take turns run on the
    server's worker threads, and a turn is given back wherever its response ends.

    Args:
        limits: how many run and how many wait.
    """

    def __init__(self, limits: HeavyLimits) -> None:
        self.limits = limits
        self._turns = threading.BoundedSemaphore(limits.running)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Requests running or waiting now."""
        return self._admitted

    def enter(self) -> None:
        """Wait for a turn; refuse at once when as many as allowed already wait.

        Raises:
            HTTPException: 503 with ``Retry-After`` when the waiting room is full.
        """
        with self._lock:
            if self._admitted >= self.limits.running + self.limits.waiting:
                raise HTTPException(
                    status_code=503,
                    detail="busy with other large history requests; try again shortly",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._admitted += 1
        self._turns.acquire()

    def leave(self) -> None:
        """Give the turn back (once per :meth:`enter` that returned)."""
        with self._lock:
            self._admitted -= 1
        self._turns.release()


class _TurnResponse(StreamingResponse):
    """A streamed answer that gives its request's turn back once sent, or abandoned."""

    def __init__(self, body: Iterator[bytes], gate: HeavyGate, headers: dict[str, str]) -> None:
        super().__init__(body, media_type="application/json", headers=headers)
        self._gate: HeavyGate | None = gate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.give_back()

    def give_back(self) -> None:
        """Give the turn back; later calls do nothing."""
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.leave()


def rows_response(table: pa.Table, gate: HeavyGate, headers: dict[str, str]) -> _TurnResponse:
    """Return a JSON array of ``table``'s rows, encoded a slice at a time as it is sent.

    The rows are those of :func:`~marketpulse.serve.records.to_records` (times
    as ISO text, NaN as null). The caller holds a turn of ``gate``; the response
    gives it back when it has been sent, or when the client went away.
    """
    return _TurnResponse(_encoded(table), gate, headers)


def _encoded(table: pa.Table) -> Iterator[bytes]:
    yield b"["
    for offset in range(0, table.num_rows, _SLICE_ROWS):
        rows = msgspec.json.encode(to_records(table.slice(offset, _SLICE_ROWS)))
        # the slice's array without its brackets, after a comma from the second on
        yield (b"," if offset else b"") + rows[1:-1]
    yield b"]"
