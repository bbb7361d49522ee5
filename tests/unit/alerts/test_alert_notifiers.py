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
        interval="1m",
        ts=1_700_000_000_000_000_000 + i,
        severity="info",
        message=f"AAPL 1m RSI 7{i}.0 crossed above 70",
        values={"rsi_14": 70.0 + i, "prev_rsi_14": 69.0, "above": 70.0},
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
    assert first["rule"] == "rsi_overbought" and first["values"]["rsi_14"] == 71.0


def test_close_is_idempotent(tmp_path):
    notifier = JsonLinesNotifier(tmp_path / "a.jsonl")
    notifier.close()
    notifier.notify([alert(1)])
    notifier.close()
    notifier.close()
    assert (tmp_path / "a.jsonl").read_text().count("\n") == 1
