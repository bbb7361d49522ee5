"""Local vendor servers for the feed tests: WebSocket and HTTP on 127.0.0.1.

Each server plays a script per connection (messages to send, what to expect,
when to hang up), records what the client sent, and stops with the test.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve


@dataclass
class WsServer:
    """A WebSocket server on a thread; ``handler(ws, n)`` serves the n-th connection (0-based)."""

    handler: Callable[..., Any]
    received: list[Any] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def __enter__(self) -> WsServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve_one(ws: ServerConnection) -> None:
            n = self.connections
            self.connections += 1
            self.paths.append(ws.request.path)
            try:
                await self.handler(ws, n, self)
            except websockets.ConnectionClosed:
                pass

        async def main() -> None:
            async with serve(serve_one, "127.0.0.1", 0, process_request=self._process) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._stop = asyncio.Event()
                ready.set()
                await self._stop.wait()

        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(main(),),
                                        daemon=True)  # fmt: skip
        self._thread.start()
        assert ready.wait(10)
        return self

    #: (status, headers) to answer the handshake of connection n with, instead of upgrading
    refuse: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    _attempts: int = 0

    def _process(self, connection: ServerConnection, request: Any) -> Any:
        n = self._attempts
        self._attempts += 1
        if n in self.refuse:
            status, headers = self.refuse[n]
            response = connection.respond(status, "refused\n")
            for name, value in headers.items():
                response.headers[name] = value
            return response
        return None

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def expect(self, ws: ServerConnection) -> Any:
        """Receive one JSON message from the client and record it."""
        message = json.loads(await ws.recv())
        self.received.append(message)
        return message


@dataclass
class HttpServer:
    """An HTTP server on a thread; ``route(path, query, n)`` returns (status, headers, body)."""

    route: Callable[[str, dict[str, str], int], tuple[int, dict[str, str], Any]]
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def __enter__(self) -> HttpServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                n = len(server.requests)
                server.requests.append((parts.path, query))
                server.headers.append(dict(self.headers.items()))
                status, headers, body = server.route(parts.path, query, n)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"


class Collected:
    """What a feed yielded: events by kind (as row dicts) and dead letters."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict]] = {"trade": [], "quote": [], "bar": []}
        self.rows["news"] = []
        self.dead: list = []
        self.error: BaseException | None = None

    def add(self, batch) -> None:
        self.rows[batch.kind].extend(batch.data.to_pylist())
        self.dead.extend(batch.dead)


def collect(feed, until: Callable[[Collected], bool], timeout: float = 20.0) -> Collected:
    """Read ``feed`` on a thread until ``until(collected)`` holds (or the feed ends); close it."""
    got = Collected()
    done = threading.Event()

    def read() -> None:
        try:
            for batch in feed.batches():
                got.add(batch)
                if until(got):
                    break
        except BaseException as exc:  # the test looks at it
            got.error = exc
        finally:
            done.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    finished = done.wait(timeout)
    feed.close()
    thread.join(10)
    assert finished, f"the feed did not deliver in {timeout} s: {got.rows}, {got.dead}"
    return got


class Schedule:
    """An injected sleep: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)


class Rand:
    """An injected uniform source that returns the given values in turn."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0) if len(self.values) > 1 else self.values[0]


@pytest.fixture
def schedule() -> Schedule:
    return Schedule()


@pytest.fixture
def helpers():
    """The helper classes, for tests that import nothing from this file."""
    return SimpleNamespace(WsServer=WsServer, HttpServer=HttpServer, collect=collect, Rand=Rand)


class FakeClock:
    """A clock that only moves when the feed sleeps: ``now_ns`` and an injected ``sleep``."""

    def __init__(self, start_ns: int) -> None:
        self.ns = start_ns
        self.waits: list[float] = []

    def now_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.ns / 1e9

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.ns += int(seconds * 1e9)
        await asyncio.sleep(0)


@pytest.fixture
def fake_clock():
    """A FakeClock factory: ``fake_clock(start_ns)``."""
    return FakeClock
