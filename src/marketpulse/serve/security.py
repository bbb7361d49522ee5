"""The web surface's defences besides the token: Host and Origin checks, security headers.

- **Host**: without a token the dashboard is only on loopback, and a request
  must name a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``, any port):
  a page whose own name was re-pointed at 127.0.0.1 (DNS rebinding) sends its
  own name and is refused with 421. With a token any name is served (behind a
  proxy, on a LAN): the token protects, and the page of another name holds no
  cookie for this one.
- **Origin**: a WebSocket opened by a page must come from the page's own
  origin (scheme, host and port of the ``Host`` it asks for); a WebSocket
  without ``Origin`` (not a browser) is let through. A browser opens WebSockets
  across origins freely and sends the cookie along, which would let any page
  read the live stream.
- **Headers** on every response: a Content-Security-Policy allowing only the
  dashboard's own scripts, ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY`` and ``Referrer-Policy: no-referrer`` (a page opened
  with ``?token=`` would otherwise hand the token to the next site).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from marketpulse.serve.auth import ASGIApp, Message, Receive, Scope, Send
from marketpulse.serve.refusals import RefusalLog
from marketpulse.serve.settings import LOOPBACK_HOSTS

__all__ = ["SecurityGuard", "content_security_policy", "host_name", "same_origin"]

_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}
#: Host header values safe to write into a header (no quote, semicolon, comma or blank).
_PLAIN_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d+)?$|^\[[0-9A-Fa-f:.]+\](:\d+)?$")


def host_name(host: str) -> str:
    """Return the name of a ``Host`` value: no port, no brackets, lower case, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.removesuffix(".")


def content_security_policy(host: str | None = None, script_hashes: Iterable[str] = ()) -> str:
    """Return the policy: the dashboard's own scripts, styles, images and WebSocket only.

    Args:
        host: the request's ``Host``, for the WebSocket (``'self'`` covers
            ``ws:`` only in newer browsers).
        script_hashes: ``sha256-...`` of inline scripts to allow (the API docs page has one).
    """
    scripts = " ".join(["'self'", *(f"'{h}'" for h in script_hashes)])
    connect = "'self'"
    if host and _PLAIN_HOST.match(host):
        connect += f" ws://{host} wss://{host}"
    return (
        f"default-src 'self'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:; font-src 'self' data:; connect-src {connect}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityGuard:
    """Refuse requests for other hosts and WebSockets from other origins; add security headers.

    Args:
        app: the ASGI application to guard (the token check, if any, inside).
        bind_host: the address the server binds.
        token: whether a token guards the app (then any ``Host`` is served).
        refusals: where refused requests are logged.
    """

    def __init__(
        self, app: ASGIApp, bind_host: str, token: bool, refusals: RefusalLog | None = None
    ) -> None:
        self.app = app
        self.hosts = None if token else LOOPBACK_HOSTS | {host_name(bind_host)}
        self.refusals = refusals or RefusalLog()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check Host (and a WebSocket's Origin), then pass on, adding headers to the answer."""
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host")
        problem = None
        if host is not None and self.hosts is not None and host_name(host) not in self.hosts:
            problem = "host", f"host: {host!r} is not served here (only {_names(self.hosts)})"
        elif scope["type"] == "websocket" and "origin" in headers:
            if not same_origin(headers["origin"], host):
                problem = "origin", f"origin: {headers['origin']!r} is not this dashboard's"
        if problem is not None:
            client = scope.get("client") or ("?", 0)
            self.refusals.refused(str(client[0]), problem[0], f"{scope['type']} {scope['path']}")
            await _refuse(scope, send, *problem)
            return
        if scope["type"] == "http":
            send = _with_headers(send, host)
        await self.app(scope, receive, send)


def same_origin(origin: str, host: str | None) -> bool:
    """Return whether a browser's ``Origin`` is the origin of a request for ``host``."""
    if host is None:
        return False
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null": a sandboxed frame or a file
    default = _DEFAULT_PORTS[parts.scheme]
    return _netloc(parts.netloc, default) == _netloc(host, default)


def _netloc(netloc: str, default_port: str) -> str:
    netloc = netloc.strip().lower()
    return netloc.removesuffix(":" + default_port)


def _names(hosts: frozenset[str]) -> str:
    return ", ".join(f"[{h}]" if ":" in h else h for h in sorted(hosts))


async def _refuse(scope: Scope, send: Send, reason: str, message: str) -> None:
    if scope["type"] == "websocket":
        # closing before accepting makes the server answer the handshake with 403
        await send({"type": "websocket.close", "code": 1008, "reason": reason})
        return
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 421,  # Misdirected Request: this server does not serve that name
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_security_headers(None),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _security_headers(host: str | None) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-security-policy", content_security_policy(host).encode("latin-1")),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
    ]


def _with_headers(send: Send, host: str | None) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            headers = list(message.get("headers", []))
            present = {name.lower() for name, _ in headers}
            headers += [(n, v) for n, v in _security_headers(host) if n not in present]
            message["headers"] = headers
        await send(message)

    return sending
