"""Replays and backfills of one input into one lake, in any order or at once, leave one copy.

Issue 34: `replay`, `backfill`, `replay` of the Lean day left every bar twice
(the backfill's files were named after its run, the replay replaced only its
own), and two replays at once wrote 797 alert lines for 474 alerts. Every
command runs as users type it, with the default lake and alerts file.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration

#: A clean replay of the Lean day (issue 34's reference).
REFERENCE = {"trades": 388_417, "bars": 44_846, "indicators": 44_846, "alerts": 474, "dlq": 0}
LAKE = Path("data") / "lake"
ALERTS_FILE = Path("data") / "alerts.jsonl"


def _counts(lake: Path) -> dict[str, int]:
    """Rows of each table of the lake (a missing table: 0)."""
    counts = {}
    for table in REFERENCE:
        files = list((lake / table).rglob("*.parquet"))
        paths = ", ".join(f"'{f}'" for f in files)
        query = f"SELECT count(*) FROM read_parquet([{paths}])"
        counts[table] = duckdb.connect().execute(query).fetchone()[0] if files else 0
    return counts


def _assert_one_copy(where: Path) -> None:
    assert _counts(where / LAKE) == REFERENCE
    ids = [json.loads(line)["id"] for line in (where / ALERTS_FILE).read_text().splitlines()]
    assert len(ids) == len(set(ids)) == REFERENCE["alerts"]
    assert not list((where / LAKE).rglob("*.tmp"))


@pytest.mark.parametrize(
    "commands",
    [
        [["replay", LEAN_TRADES], ["backfill"], ["replay", LEAN_TRADES]],
        [
            ["replay", LEAN_TRADES],
            ["backfill", "--file", LEAN_TRADES],
            ["replay", LEAN_TRADES],
            ["backfill"],
        ],
        [["backfill", "--file", LEAN_TRADES], ["replay", LEAN_TRADES]],
    ],
    ids=["replay-backfill-replay", "replay-backfill_file-replay-backfill", "backfill_file-replay"],
)
def test_replays_and_backfills_in_turn_leave_one_copy(cli, tmp_path, commands):
    for command in commands:
        cli(*command)
    _assert_one_copy(tmp_path)


def _start(*args, cwd: Path) -> subprocess.Popen:
    """Start marketpulse as a user would, with the default settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    command = [sys.executable, "-m", "marketpulse", *map(str, args)]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err + out
    assert "Traceback" not in err + out
    return out


def test_a_replay_started_during_a_backfill_leaves_one_copy(cli, tmp_path):
    cli("replay", LEAN_TRADES)
    backfill = _start("backfill", cwd=tmp_path)
    time.sleep(1.5)
    replay = _start("replay", LEAN_TRADES, cwd=tmp_path)
    overlapped = backfill.poll() is None  # the backfill was still at work
    _finish(backfill)
    _finish(replay)
    assert overlapped
    _assert_one_copy(tmp_path)


def test_two_replays_at_once_leave_one_copy(tmp_path):
    # paced (16 h of trades in about 4 s each), so that both run their whole course at once
    first = _start("replay", LEAN_TRADES, "--speed", "16000", cwd=tmp_path)
    time.sleep(0.3)
    second = _start("replay", LEAN_TRADES, "--speed", "16000", cwd=tmp_path)
    overlapped = first.poll() is None  # the second began before the first ended
    _finish(first)
    _finish(second)
    assert overlapped
    _assert_one_copy(tmp_path)
