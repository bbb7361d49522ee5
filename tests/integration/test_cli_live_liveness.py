"""A live feed that cannot connect still stops on --duration, Ctrl-C and SIGTERM, at once.

The feed's endpoint is a closed port (every connect refused) or a server that
accepts connections and never answers (every handshake hangs): no batch ever
arrives, and the deadline and the signals must not wait for one.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.integration

DEADLINE = 30.0  # seconds a stop may take at most, generous for a loaded machine


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(("127.0.0.1", port))  # the fault: nothing listens there
    return port


class Silent:
    """A TCP server that accepts connections and never sends a byte."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)  # held open, never answered

    def close(self):
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture(params=["refused", "silent"])
def endpoint(request):
    """(url, proof): proof() tells whether the feed has met the fault."""
    if request.param == "refused":
        yield f"ws://127.0.0.1:{_closed_port()}/", None
        return
    server = Silent()
    try:
        yield f"ws://127.0.0.1:{server.port}/", lambda: len(server.accepted) >= 1
    finally:
        server.close()


class Child:
    """``marketpulse run --feed finnhub`` as a subprocess, its output read as it comes."""

    def __init__(self, tmp_path, url, *extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
        env["MARKETPULSE_FINNHUB_KEY"] = "dummy-key"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "marketpulse", "run", "--feed", "finnhub", "--tickers", "AAPL",
             "--url", url, "--no-dashboard", "--lake", str(tmp_path / "lake"), *extra],
            cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(s, lines), daemon=True)
            for s, lines in ((self.process.stderr, self.err), (self.process.stdout, self.out))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, lines):
        for line in stream:
            lines.append(line)

    def wait_until(self, condition, what):
        deadline = time.monotonic() + DEADLINE
        while not condition():
            assert self.process.poll() is None, f"exited before {what}: {''.join(self.err)}"
            assert time.monotonic() < deadline, f"no {what} within {DEADLINE} s"
            time.sleep(0.05)

    def exit_code(self):
        """Wait (at most DEADLINE) for the exit; return its code."""
        try:
            code = self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"still running {DEADLINE} s later: {''.join(self.err[-5:])}")
        for reader in self._readers:
            reader.join(DEADLINE)
        return code

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def reconnecting(self):
        # the feed logs each failed attempt and the wait before the next one
        return sum("marketpulse.feeds.vendors.websocket" in line for line in self.err) >= 2


def _met(proof, child):
    return child.reconnecting() if proof is None else proof()


def test_duration_stops_a_feed_that_never_connects(tmp_path, endpoint):
    url, proof = endpoint
    child = Child(tmp_path, url, "--duration", "3")
    try:
        child.wait_until(lambda: _met(proof, child), "connect attempt")
        assert child.exit_code() == 0
    finally:
        child.kill()
    assert "Traceback" not in "".join(child.err)
    assert child.out and child.out[-1].startswith("done: ticks in 0,")  # the summary


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_feed_that_never_connects(tmp_path, endpoint, signum, code):
    url, proof = endpoint
    child = Child(tmp_path, url)
    try:
        child.wait_until(lambda: _met(proof, child), "connect attempt")
        before = len(child.err)
        child.process.send_signal(signum)
        assert child.exit_code() == code
    finally:
        child.kill()
    assert "Traceback" not in "".join(child.err)
    assert child.out and child.out[-1].startswith("done: ticks in 0,")  # stopped cleanly
    # one line says it is stopping; the pipeline's two INFO lines; no retry noise after it
    assert len(child.err) - before <= 6, child.err[before:]


SCRIPT = """
import pathlib, signal, sys, threading, time
from marketpulse.cli.signals import stop_on_signals
with stop_on_signals() as stop:
    print("ready", flush=True)
    while not stop.wait(0.05):
        pass
    print("stopping", flush=True)
    if sys.argv[2] == "other-thread":  # the kernel hands the second one to another thread
        def take_it():
            time.sleep(0.5)  # the main thread is asleep by now
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
            time.sleep(60)
        threading.Thread(target=take_it, daemon=True).start()
    time.sleep(60)  # a flush that takes long, in C: the main thread runs no handler meanwhile
    pathlib.Path(sys.argv[1]).write_text("flushed")
"""


@pytest.mark.parametrize("second", ["main-thread", "other-thread"])
def test_a_second_ctrl_c_exits_at_once_without_flushing(tmp_path, second):
    marker = tmp_path / "flushed"
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(marker), second], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert process.stdout.readline().strip() == "ready"
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline().strip() == "stopping"  # the slow flush is under way
        if second == "main-thread":
            process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=DEADLINE)
    finally:
        process.kill()
    assert process.returncode == 130
    assert not marker.exists()  # the flush was cut short
    assert "Ctrl-C again: exiting at once without flushing" in err
    assert "Traceback" not in err
