"""A lake whose disk fills up, as users meet it: one line, the summary, exit code 1.

Issue 34: with the lake on a full disk, `run` and `replay` ended with
`error: internal error: OSError: [Errno 28] ... (please report it)`, the
wording kept for bugs, naming no path and printing no summary. The lake
here is on a small tmpfs, mounted for the test (which needs root).
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


def _count(text: str, name: str) -> int:
    """The figure after ``name`` in a summary or error line (``bars 44,846``; absent: 0)."""
    found = re.search(rf"\b{name} ([\d,]+)", text)
    return int(found.group(1).replace(",", "")) if found else 0


@pytest.fixture
def small_disk(tmp_path, request):
    """A directory on a tmpfs of the size the test gives (``request.param``), then unmounted."""
    if os.geteuid() != 0:
        reason = "mounting a small tmpfs for the lake needs root (CI runs as root)"
        if os.environ.get("CI"):  # CI must run it: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    disk = tmp_path / "disk"
    disk.mkdir()
    size = request.param
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)],
                   check=True)  # fmt: skip
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# a third of the Lean day's lake (6.4 MB)
@pytest.mark.parametrize("small_disk", ["2m"], indirect=True)
def test_a_full_disk_says_where_and_how_much_with_the_summary(cli, sql, tmp_path, small_disk):
    lake = small_disk / "lake"
    result = cli("replay", LEAN_TRADES, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl",
                 ok=False)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on the lake's disk at {lake} (")
    assert "internal error" not in line and "please report it" not in line
    assert re.search(r"the rows not stored yet need (about|up to) [\d.,]+ [kMG]?B there", line)
    # the summary of what the command did, then what the lake holds and does not
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith("done: ticks in 388,417 ")
    made = _count(summary, "bars")
    assert made == 44_846
    stored = sql(lake, "SELECT count(*) AS n FROM bars")[0]["n"] if (lake / "bars").exists() else 0
    assert _count(line.split("stored in the lake:")[1].split("; not stored")[0], "bars") == stored
    assert _count(line.split("not stored:")[1], "bars") == made - stored > 0


# room for the first flushes of `run` even on a loaded machine
@pytest.mark.parametrize("small_disk", ["6m"], indirect=True)
def test_run_on_a_full_disk_counts_what_the_lake_holds(cli, sql, tmp_path, small_disk):
    # the simulator fills the tmpfs in seconds at this rate; the duration only bounds the test
    lake = small_disk / "lake"
    result = cli("run", "--no-dashboard", "--rate", "20000", "--duration", "120", "--lake", lake,
                 "--alerts-file", tmp_path / "a.jsonl", ok=False)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: no space left on the lake's disk at {lake} (")
    assert result.stdout.strip().splitlines()[-1].startswith("done: ticks in ")
    held = sql(lake, "SELECT (SELECT count(*) FROM trades) AS trades, "
                     "(SELECT count(*) FROM bars) AS bars")[0]  # fmt: skip
    stored = line.split("stored in the lake:")[1].split("; not stored")[0]
    assert _count(stored, "trades") == held["trades"]
    assert _count(stored, "bars") == held["bars"]
