"""The token check, one ASGI middleware for HTTP and WebSocket alike.

A client shows the token as ``Authorization: Bearer TOKEN``, as the query
parameter ``token`` or as the cookie ``marketpulse_token``. A page opened
with ``?token=...`` gets the cookie, so its own requests and WebSocket carry
the token from then on. ``/healthz`` and ``/readyz`` stay open for probes.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from marketpulse.serve.refusals import RefusalLog

__all__ = ["COOKIE", "TokenGuard"]

COOKIE = "marketpulse_token"
_OPEN_PATHS = frozenset({"/healthz", "/readyz"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class TokenGuard:
    """Let through only requests that carry ``token``.

    Args:
        app: the ASGI application to guard.
        token: the shared secret.
        refusals: where refused requests are logged.
    """

    def __init__(self, app: ASGIApp, token: str, refusals: RefusalLog | None = None) -> None:
        self.app = app
        self._token = token.encode()
        self.refusals = refusals or RefusalLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on if it shows the token; else refuse it (401, or 403 for a socket)."""
        if scope["type"] not in ("http", "websocket") or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        from_query, shown = self._shown(scope)
        if shown is None or not hmac.compare_digest(shown.encode(), self._token):
            client = scope.get("client") or ("?", 0)
            what = f"{scope['type']} {scope['path']}"
            self.refusals.refused(str(client[0]), "missing or wrong token", what)
            await _refuse(scope, send)
            return
        if from_query and scope["type"] == "http":
            send = _with_cookie(send, shown)
        await self.app(scope, receive, send)

    @staticmethod
    def _shown(scope: Scope) -> tuple[bool, str | None]:
        """Return (came from the query string, the token the client showed)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return False, auth[7:].strip()
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return True, query["token"][0]
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        if COOKIE in cookie:
            return False, cookie[COOKIE].value
        return False, None


async def _refuse(scope: Scope, send: Send) -> None:
    if scope["type"] == "websocket":
        # closing before accepting makes the server answer the handshake with 403
        await send({"type": "websocket.close", "code": 1008, "reason": "token"})
        return
    body = json.dumps({"detail": "token: missing or wrong token"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _with_cookie(send: Send, token: str) -> Send:
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
        await send(message)

    return sending
