"""Hostile input costs what its lines cost: bounded memory, whatever the lines hold.

Each test runs the command as users type it, with the default settings, and
reads the child's peak resident size from the kernel (``wait4``), never a
wall-clock time. A rules file that would make the process expand YAML aliases
or render Python internals is refused in one line (exit code 2).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

_HEADER = b"timestamp,symbol,price,size\n"
_ROW = b"2013-10-07T13:30:00Z,SPY,100.0,10\n"


def run_measured(*args: object, cwd: Path) -> tuple[int, str, str, float]:
    """Run marketpulse; return its exit code, stdout, stderr and peak RSS in MB."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "marketpulse", *map(str, args)],
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, out.read_text(), err.read_text(), usage.ru_maxrss / 1024


def test_a_gzip_of_blank_lines_replays_in_bounded_memory(tmp_path):
    small = tmp_path / "small.csv.gz"
    small.write_bytes(gzip.compress(_HEADER + _ROW + _ROW))
    blank = tmp_path / "blank.csv.gz"
    with gzip.open(blank, "wb") as file:  # 400,000 empty lines between two trades
        file.write(_HEADER + _ROW)
        for _ in range(4):
            file.write(b"\n" * 100_000)
        file.write(_ROW)
    assert blank.stat().st_size < 5_000  # a bomb: a few KB that decompress to 400,000 lines

    code, out, err, baseline = run_measured("replay", small, "--lake", "base", cwd=tmp_path)
    assert code == 0, err
    code, out, err, peak = run_measured("replay", blank, "--lake", "lake", cwd=tmp_path)
    assert code == 0, err
    assert "Traceback" not in out + err
    summary = out.strip().splitlines()[-1]
    assert "ticks in 2 " in summary and "DLQ rows 0" in summary, summary
    # before: every blank line was converted and bisected out one by one (about
    # 2 KB each, 858 MB for 400,000 lines); now they cost what their bytes cost
    assert peak < baseline + 100, (peak, baseline)


def symbols_file(path: Path, count: int) -> Path:
    """A trades file of ``count`` distinct symbols, one trade each, in time order."""
    lines = [f"2013-10-07T13:30:00.{i // 100:06d}Z,S{i},100.0,10\n" for i in range(count)]
    path.write_bytes(gzip.compress(_HEADER + "".join(lines).encode(), 1))
    return path


def dlq_reasons(cli_sql, lake: Path) -> dict[str, int]:
    rows = cli_sql(lake, "SELECT reason, count(*) AS n FROM dlq GROUP BY reason")
    return {row["reason"]: row["n"] for row in rows}


def test_symbols_beyond_the_default_limit_go_to_the_dlq_with_their_reason(sql, tmp_path):
    from marketpulse.config import MAX_SYMBOLS

    path = symbols_file(tmp_path / "many.csv.gz", MAX_SYMBOLS + 300)
    code, out, err, _ = run_measured("replay", path, "--lake", "lake", cwd=tmp_path)
    assert code == 0, err
    assert "DLQ rows 300 " in out.strip().splitlines()[-1]
    lake = tmp_path / "lake"
    assert dlq_reasons(sql, lake) == {"max_symbols": 300}
    [[stored]] = [list(r.values()) for r in sql(lake, "SELECT count(DISTINCT symbol) FROM bars")]
    assert stored == MAX_SYMBOLS
    [error] = sql(lake, "SELECT error FROM dlq WHERE key = 'S" + str(MAX_SYMBOLS) + "'")
    assert "--max-symbols" in error["error"]
    assert not list(lake.rglob("*.tmp"))


def test_input_of_endless_symbols_does_not_size_the_process(sql, tmp_path):
    # a limit of 1,000 keeps the test light; the default limit is the test above
    small = tmp_path / "small.csv.gz"
    small.write_bytes(gzip.compress(_HEADER + _ROW + _ROW))
    code, _, err, baseline = run_measured("replay", small, "--lake", "base", cwd=tmp_path)
    assert code == 0, err
    path = symbols_file(tmp_path / "many.csv.gz", 100_000)
    code, out, err, peak = run_measured(
        "replay", path, "--lake", "lake", "--max-symbols", "1000", cwd=tmp_path
    )
    assert code == 0, err
    assert dlq_reasons(sql, tmp_path / "lake") == {"max_symbols": 99_000}
    # before: 100,000 symbols took 2.9 GB (about 26 kB each); refused rows cost no state
    assert peak < baseline + 400, (peak, baseline)


_RULE = "rules:\n  - name: news_move\n    type: pct_change\n    window: 10\n    threshold: 0.5\n"


def _refused_in_one_line(tmp_path: Path, rules: str) -> str:
    (tmp_path / "one.csv").write_bytes(_HEADER + _ROW)
    (tmp_path / "rules.yaml").write_text(rules)
    code, out, err, _ = run_measured(
        "replay", "one.csv", "--rules", "rules.yaml", "--lake", "lake", cwd=tmp_path
    )
    assert code == 2, err + out
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: rules.yaml:"), err
    return lines[0]


def test_a_rules_file_with_yaml_aliases_is_refused(tmp_path):
    # six levels (531,441 strings) keep the old behaviour, expansion, cheap to see
    levels = ['    l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 6)]
    notifier = "notifiers:\n  desk:\n    type: webhook\n    url: http://127.0.0.1:9/x\n"
    line = _refused_in_one_line(tmp_path, _RULE + notifier + "\n".join(levels) + "\n")
    assert line.startswith("error: rules.yaml:11: YAML alias *l0 is not accepted"), line


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{symbol:>1500000000}", "width 1500000000 is more than 200"),
        ("{symbol.__class__.__base__.__subclasses__}", "alert fields only, no attribute"),
    ],
)
def test_a_notifier_template_beyond_alert_fields_is_refused(tmp_path, template, problem):
    notifier = "notifiers:\n  desk:\n    type: slack\n    url: http://127.0.0.1:9/x\n"
    line = _refused_in_one_line(tmp_path, _RULE + notifier + f"    template: '{template}'\n")
    assert line.startswith("error: rules.yaml:10: notifier 'desk': template: "), line
    assert problem in line, line
