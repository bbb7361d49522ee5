"""Real receivers for notification tests: an HTTP server and an SMTP server (STARTTLS, AUTH)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SMTP_USER = "alerts@example.test"
SMTP_PASSWORD = "s3cret-pass"  # test only


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """Records posts; replies with the statuses queued per path (then 200), after ``delay``."""

    posts: list[Post] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)
    hang_after: dict[str, int] = field(default_factory=dict)  # posts answered, then no reply
    acked: list[Post] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self, path: str) -> list[Post]:
        with self.lock:
            return [p for p in self.posts if p.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 30.0) -> list[Post]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            posts = self.received(path)
            if len(posts) >= count:
                return posts
            time.sleep(0.02)
        raise AssertionError(f"{path}: {len(self.received(path))} posts, wanted {count}")


def start_http(receiver: HttpReceiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            post = Post(self.path, dict(self.headers), body)
            with receiver.lock:
                receiver.posts.append(post)
                queued = receiver.statuses.get(self.path, [])
                status = queued.pop(0) if queued else 200
                answered = sum(1 for p in receiver.acked if p.path == self.path)
                hang = answered >= receiver.hang_after.get(self.path, answered + 1)
            time.sleep(receiver.delay.get(self.path, 0.0))
            if hang:
                time.sleep(120)  # the receiver never answers this one
                return
            if status == 200:
                with receiver.lock:
                    receiver.acked.append(post)
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the client gave up (a timeout test)
                pass

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class SmtpReceiver:
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = 0
    cafile: str = ""

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages) >= count:
                return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.messages)} e-mails, wanted {count}")


def start_smtp(directory: Path):
    """An aiosmtpd server on a free port that requires STARTTLS, then AUTH."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = SmtpReceiver(cafile=str(cert))

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            receiver.messages.append(
                message_from_bytes(envelope.original_content, policy=policy.default)
            )
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == SMTP_USER
            and auth_data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            receiver.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)  # False: the server answers 535

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        receiver.port = probe.getsockname()[1]
    controller = Controller(
        Handler(), hostname="127.0.0.1", port=receiver.port, tls_context=context,
        require_starttls=True, authenticator=authenticator, auth_require_tls=True,
        auth_exclude_mechanism=["CRAM-MD5", "LOGIN"],
    )  # fmt: skip
    controller.start()
    return controller, receiver
