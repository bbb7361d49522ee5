"""What the commands print when their output is piped: one summary line, whole, for people.

Each command runs as a user would, through subprocess with standard output
and standard error piped (not a terminal, so rich would wrap at 80 columns).
"""

from __future__ import annotations

import gzip
import re

import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration

TRADES = 30_000  # the first trades of the real Lean day
#: A count written for people: thousands separated (``29,999``, never ``29999``).
BARE_THOUSANDS = re.compile(r"(?<![\d.,])\d{4,}(?![\d.])")


@pytest.fixture(scope="module")
def trades_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("summaries") / "lean-head.csv"
    with gzip.open(LEAN_TRADES, "rt") as source:
        path.write_text("".join(line for _, line in zip(range(TRADES + 1), source, strict=False)))
    return path


def _summaries(result, start):
    """The lines of stdout that start with ``start``."""
    return [line for line in result.stdout.splitlines() if line.startswith(start)]


def _no_warnings(result):
    both = result.stdout + result.stderr
    assert "Warning" not in both and "warnings.warn" not in both, result.stderr


def test_replay_and_backfill_print_one_whole_summary(cli, trades_file, tmp_path):
    lake = tmp_path / "lake"
    result = cli("replay", trades_file, "--lake", lake, "--alerts-file", tmp_path / "a.jsonl")
    done = _summaries(result, "done:")
    assert len(done) == 1 and result.stdout.splitlines()[-1] == done[0]
    summary = done[0]
    assert len(summary) > 80  # rich would have cut it at 80 columns
    assert summary.endswith(" s") and "ticks/s over" in summary  # the whole of it on one line
    assert f"ticks in {TRADES:,} (" in summary
    size = trades_file.stat().st_size
    assert re.search(r"\((\d+\.\d) MB read\)", summary)[1] == f"{size / 1e6:.1f}"
    assert not BARE_THOUSANDS.search(summary), summary
    files = sorted(lake.rglob("*.parquet"))
    written = sum(f.stat().st_size for f in files)
    lake_part = re.search(r"lake files ([\d,]+) \(([\d.]+) (kB|MB)\)", summary)
    assert int(lake_part[1].replace(",", "")) == len(files) > 1
    assert float(lake_part[2]) == round(written / (1e3 if lake_part[3] == "kB" else 1e6), 1)
    # every other line is a periodic figures line: no summary logged beside it
    assert all(line.startswith("ticks ") for line in result.stdout.splitlines()[:-1])
    assert "done:" not in result.stderr and "ticks in" not in result.stderr
    _no_warnings(result)

    # backfill reads the lake's trades through DuckDB (whose UserWarning once leaked)
    again = cli("backfill", "--lake", lake)
    lines = again.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("backfill ")
    assert len(lines[0]) > 80 and lines[0].endswith(f"rejected {0:,}")
    assert f"ticks {TRADES:,}," in lines[0] and not BARE_THOUSANDS.search(lines[0])
    assert "ticks" not in again.stderr  # the figures once, on stdout
    _no_warnings(again)


def test_run_prints_one_whole_summary(cli, tmp_path):
    result = cli("run", "--duration", "3", "--symbols", "3", "--rate", "400", "--no-dashboard",
                 "--lake", tmp_path / "lake", "--alerts-file", tmp_path / "a.jsonl")  # fmt: skip
    done = _summaries(result, "done:")
    assert len(done) == 1 and result.stdout.splitlines()[-1] == done[0]
    assert len(done[0]) > 80 and "ticks/s over" in done[0]
    assert "done:" not in result.stderr
    _no_warnings(result)


def test_produce_process_sink_print_one_whole_summary(
    cli, trades_file, kafka_bootstrap, topic_prefix, tmp_path
):
    from .kafka_tools import create_topics

    create_topics(kafka_bootstrap, topic_prefix)
    kafka = ("--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix)
    produced = cli("produce", "--file", trades_file, *kafka)
    processed = cli("process", "--exit-when-idle", "3", *kafka)
    stored = cli("sink", "lake", "--exit-when-idle", "3", "--lake", tmp_path / "lake", *kafka)
    for result, start in ((produced, "produce: "), (processed, "process: "),
                          (stored, "sink lake: ")):  # fmt: skip
        summary = _summaries(result, start)
        assert len(summary) == 1, result.stdout
        assert result.stdout.splitlines()[-1] == summary[0]
        assert len(summary[0]) > 80 and not BARE_THOUSANDS.search(summary[0]), summary[0]
        assert "stopped after" not in result.stderr  # the figures once, on stdout
        _no_warnings(result)
    size = trades_file.stat().st_size
    assert f"produced {TRADES:,} ticks ({size / 1e6:.1f} MB read) in " in produced.stdout
    assert f"{TRADES:,} records in" in processed.stdout
