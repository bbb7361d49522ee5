"""PostgreSQL gone for longer than the retry window while a replay stores into it.

Issue 34: down for 90 s against the 60 s window, `replay --sink postgres`
ended with exit code 2 (the code of bad usage) and no summary, 397 of 44,846
bars stored. Wanted: exit code 1, the summary, one line naming what was not
stored. The test stops its private server mid-run and leaves it down.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import psycopg
import pytest

from .conftest import LEAN_TRADES
from .db_fixtures import create_database

pytestmark = pytest.mark.integration


def _count(text: str, name: str) -> int:
    """The figure after ``name`` in a summary or error line (``bars 44,846``)."""
    return int(re.search(rf"\b{name} ([\d,]+)", text).group(1).replace(",", ""))


def _bars(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute("SELECT count(*) FROM bars").fetchone()[0]


def _stored_some(url: str) -> bool:
    try:
        return _bars(url) > 0
    except psycopg.Error:  # the tables are not made yet
        return False


def test_postgres_down_past_the_retry_window_exits_1_with_the_summary(tmp_path, private_postgres):
    url = create_database(private_postgres.url)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    # the documented retry window (60 s by default) shortened: the outcome after it runs out
    # is the same, and CI need not wait a minute for it
    environ["MARKETPULSE_STORAGE_RETRY"] = "3"
    # at 2,000 times real time the Lean day takes about 30 s: the server stops mid-run
    command = [sys.executable, "-m", "marketpulse", "replay", str(LEAN_TRADES), "--sink",
               "postgres", "--postgres-url", url, "--speed", "2000"]  # fmt: skip
    process = subprocess.Popen(command, cwd=tmp_path, env=environ, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not _stored_some(url) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.poll() is None, "the replay ended before the server was stopped"
        private_postgres.stop()  # synchronous: the server is down from here on
        out, err = process.communicate(timeout=300)
    finally:
        process.kill()
    # it was down while the command ran to its end, and still is
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)
    private_postgres.start()  # to count what was stored
    assert process.returncode == 1, err
    assert "Traceback" not in err and "secret-pw" not in out + err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: write ")
    assert "to PostgreSQL at postgresql://postgres:********@127.0.0.1:" in line
    assert "internal error" not in line
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("done: ticks in ")
    stored, made = _bars(url), _count(summary, "bars")
    assert _count(line.split("stored in PostgreSQL:")[1].split("; not stored")[0], "bars") == stored
    assert _count(line.split("not stored:")[1], "bars") == made - stored > 0
    assert f"of {made:,}" in line.split("not stored:")[1]
