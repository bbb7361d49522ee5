"""The JSON-lines notifier writes one parseable Alert per line."""

from __future__ import annotations

import json

import msgspec

from marketpulse.alerts import JsonLinesNotifier
from marketpulse.models import Alert


def alert(i: int) -> Alert:
    return Alert(
        id=f"{i:016x}",
        rule="rsi_overbought",
        symbol="AAPL",
        timeframe="1m",
        bar_start=1_700_000_000_000_000_000 + i - 60_000_000_000,
        bar_end=1_700_000_000_000_000_000 + i,
        severity="info",
        message=f"AAPL 1m RSI 7{i}.0 crossed above 70",
        details={"rsi_14": 70.0 + i, "prev_rsi_14": 69.0, "above": 70.0},
        dataset="simulator",
    )


def test_writes_json_lines_and_appends(tmp_path):
    path = tmp_path / "deep" / "dir" / "alerts.jsonl"
    notifier = JsonLinesNotifier(path)
    assert path.parent.is_dir()  # parents made at once, file opened on the first batch
    notifier.notify([])
    assert not path.exists()
    notifier.notify([alert(1), alert(2)])
    # Flushed per batch: readable before close.
    assert len(path.read_text().splitlines()) == 2
    notifier.notify([alert(3)])
    notifier.close()
    with JsonLinesNotifier(path) as again:  # a new notifier appends
        again.notify([alert(4)])

    lines = path.read_bytes().splitlines()
    assert [msgspec.json.decode(line, type=Alert) for line in lines] == [
        alert(i) for i in (1, 2, 3, 4)
    ]
    first = json.loads(lines[0])
    assert first["rule"] == "rsi_overbought" and first["details"]["rsi_14"] == 71.0
    assert first["dataset"] == "simulator"


def test_close_is_idempotent(tmp_path):
    notifier = JsonLinesNotifier(tmp_path / "a.jsonl")
    notifier.close()
    notifier.notify([alert(1)])
    notifier.close()
    notifier.close()
    assert (tmp_path / "a.jsonl").read_text().count("\n") == 1


def test_an_alert_already_in_the_file_is_not_written_again(tmp_path):
    path = tmp_path / "alerts.jsonl"
    with JsonLinesNotifier(path) as first:
        first.notify([alert(1), alert(2)])
    with JsonLinesNotifier(path) as rerun:  # a replay run again raises the same alerts
        rerun.notify([alert(1), alert(2), alert(3)])
        rerun.notify([alert(3), alert(4)])
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert ids == [alert(i).id for i in (1, 2, 3, 4)]


def test_a_last_line_cut_short_by_a_crash_is_replaced(tmp_path):
    path = tmp_path / "alerts.jsonl"
    whole = msgspec.json.encode(alert(1)) + b"\n"
    path.write_bytes(whole + msgspec.json.encode(alert(2))[:25])  # killed mid-write
    with JsonLinesNotifier(path) as rerun:
        rerun.notify([alert(1), alert(2)])
    lines = path.read_bytes().splitlines()
    assert [msgspec.json.decode(line, type=Alert) for line in lines] == [alert(1), alert(2)]


def test_writers_of_one_file_at_once_leave_each_alert_once(tmp_path):
    # two replays of one file at once: each reads what the other appended before appending
    path = tmp_path / "alerts.jsonl"
    with JsonLinesNotifier(path) as one, JsonLinesNotifier(path) as other:
        one.notify([alert(1), alert(2)])
        other.notify([alert(1), alert(2), alert(3)])
        one.notify([alert(3), alert(4)])
        other.notify([alert(4), alert(5)])
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]
    assert ids == [alert(i).id for i in (1, 2, 3, 4, 5)]
