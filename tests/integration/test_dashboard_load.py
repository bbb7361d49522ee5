"""`marketpulse dashboard` under many large history requests at once stays bounded.

Issue 34: 300 concurrent `GET /api/bars?symbol=SPY&timeframe=1s&limit=100000`
over the Lean day took the dashboard from 256 MB to 5.1 GB, its slowest answer
56 s. The server is started as users start it (a subprocess, default
settings) and a burst of such requests comes in over loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

LEAN_TRADES = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lean-2013-10-07"
    / "trades.csv.gz"
)  # fmt: skip
HEAVY = {"symbol": "SPY", "timeframe": "1s", "limit": "100000"}
#: Requests at once: before the fix 100 of them took the server past 1.9 GB (5.5 GB for
#: 300), yet they finish in about 20 s on 2 cores even then.
BURST = 100
#: Most the server may grow beyond its size after one such answer, at its peak. Bounded
#: it peaks about 120 MB above; unbounded, more than 1.6 GB.
GROWTH_MB = 300


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident size so far (the kernel's high-water mark, VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Path:
    """A lake holding the Lean day's bars (SPY: about 18,000 one-second bars)."""
    work = tmp_path_factory.mktemp("lean")
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "replay", str(LEAN_TRADES), "--lake",
         str(work / "lake"), "--alerts-file", str(work / "alerts.jsonl")],
        cwd=work, capture_output=True, text=True, timeout=600, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return work / "lake"


@pytest.fixture
def dashboard(tmp_path, lake):
    """`marketpulse dashboard` over the lake: (its process, its URL); stopped by Ctrl-C."""
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", "dashboard", "--lake", str(lake), "--port",
         str(_free_port())],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.match(r"dashboard: (http://\S+/)", line)
    if not match:
        process.kill()
        pytest.fail(f"no URL printed: {line!r} {process.stderr.read()}")
    try:
        yield process, match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert "Traceback" not in err


async def _burst(url: str, count: int) -> list[tuple[int, dict[str, str], str]]:
    """``count`` heavy requests at once: each answer's status, headers and body digest."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=600) as client:

        async def one() -> tuple[int, dict[str, str], str]:
            answer = await client.get(url + "api/bars", params=HEAVY)
            # the digest only: a hundred answers of 6 MB need not stay in the test's memory
            digest = hashlib.sha256(answer.content).hexdigest()
            return answer.status_code, dict(answer.headers), digest

        return await asyncio.gather(*(one() for _ in range(count)))


def test_a_burst_of_large_history_requests_keeps_the_server_bounded(dashboard):
    process, url = dashboard
    first = httpx.get(url + "api/bars", params=HEAVY, timeout=120)
    assert first.status_code == 200
    bars = first.json()
    assert len(bars) > 10_000 and {bar["symbol"] for bar in bars} == {"SPY"}
    whole = hashlib.sha256(first.content).hexdigest()
    settled = _peak_rss_mb(process.pid)

    answers = asyncio.run(_burst(url, BURST))

    peak = _peak_rss_mb(process.pid)
    assert process.poll() is None, "the dashboard died under the burst"
    statuses = [status for status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 1
    for status, headers, digest in answers:
        if status == 200:  # whole: the same rows as the answer before the burst
            assert digest == whole
        else:  # refused as documented: try again after a number of seconds
            assert int(headers["retry-after"]) >= 1
    assert peak - settled < GROWTH_MB, f"peak RSS {peak:.0f} MB, {settled:.0f} MB before"
    # served afterwards, the large request included
    assert httpx.get(url + "healthz", timeout=30).status_code == 200
    again = httpx.get(url + "api/bars", params=HEAVY, timeout=120)
    assert again.status_code == 200
    assert hashlib.sha256(again.content).hexdigest() == whole


def test_the_limits_of_history_requests_are_documented(dashboard):
    _, url = dashboard
    spec = httpx.get(url + "openapi.json", timeout=30).json()
    for path in ("/api/bars", "/api/indicators", "/api/alerts"):
        route = spec["paths"][path]["get"]
        assert "Retry-After" in route["responses"]["503"]["headers"], path
        assert "503" in route["description"], path
