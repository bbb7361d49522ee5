"""The conservation check against the processor's own outputs over the real Lean day."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketpulse.alerts import default_rules
from marketpulse.analytics.verify import Stored, TradeCopy, only_dataset, verify
from marketpulse.analytics.verify_rules import BarRules
from marketpulse.bus.base import Batch
from marketpulse.feeds import FileReplay
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.output import Output, alerts_table

from ..feeds.conftest import LEAN_TRADES

DATASET = "lean"


@pytest.fixture(scope="module")
def lean_batches():
    """The Lean day's trades, as the replay feed cuts them."""
    return [b.data for b in FileReplay(LEAN_TRADES).batches()]


def _run(batches, settings: ProcessorSettings, finish: bool = True) -> Output:
    processor = Processor(replace(settings, dataset=DATASET), default_rules())
    out, offset = Output(), 0
    for data in batches:
        batch = Batch("file", 0, offset, offset + data.num_rows - 1, kind="trade", columns=data)
        offset += data.num_rows
        out.extend(processor.process(batch))
    if finish:
        out.extend(processor.finish())
    return out


def _stored(out: Output) -> Stored:
    trades = pa.Table.from_batches(out.trades)
    dead = out.dead
    return Stored(
        "test",
        pa.table({"dataset": trades.column("dataset"),
                  "symbol": trades.column("symbol").cast(pa.string()),
                  "ts": trades.column("ts"), "condition": trades.column("condition")}),
        out.bars.select(["dataset", "symbol", "timeframe", "bar_start", "bar_end", "trades"]),
        out.indicators.select(["dataset", "symbol", "timeframe", "bar_start"]),
        alerts_table(out.alerts, DATASET).select(["dataset", "timeframe", "id"]),
        pa.table({"dataset": [DATASET] * len(dead), "reason": [d.reason for d in dead],
                  "symbol": [d.key for d in dead],
                  "ts": pa.array([d.ts for d in dead], pa.int64())}),
    )  # fmt: skip


@pytest.fixture(scope="module")
def plain(lean_batches):
    """The default settings' outputs (1s, 1m, 5m; no tape rules)."""
    return _stored(_run(lean_batches, ProcessorSettings()))


LEAN_SETTINGS = ProcessorSettings(
    intervals=("1m", "1d"), conditions="lean", session_calendar="XNYS"
)
LEAN_RULES = BarRules("lean", "XNYS")


def test_the_default_outputs_hold_every_kept_trade_in_a_bar(plain):
    report = verify(plain, BarRules())
    assert report.ok, report.violations
    assert [(r.timeframe, r.in_bars, r.open, r.missing) for r in report.rows] == [
        ("1s", 388_417, 0, 0), ("1m", 388_417, 0, 0), ("5m", 388_417, 0, 0)
    ]  # fmt: skip
    assert report.totals == {"trades": 388_417, "bars": 44_846, "indicators": 44_846,
                             "alerts": 474, "dlq": 0}  # fmt: skip


def test_tape_rules_and_sessions_leave_trades_out_of_bars_and_the_check_knows_which(lean_batches):
    stored = _stored(_run(lean_batches, LEAN_SETTINGS))
    report = verify(stored, LEAN_RULES)
    assert report.ok, report.violations
    rows = {r.timeframe: r for r in report.rows}
    # auction prints the rules leave out (and the late closing prints) are in no 1m bar
    assert 0 < rows["1m"].not_for_bars < 1_000
    # the daily bar takes the session's trades only (13:30-20:00 UTC): extended hours in none
    minute = stored.trades.column("ts").to_numpy() // (60 * 10**9) % (24 * 60)
    outside = int(((minute < 13 * 60 + 30) | (minute >= 20 * 60)).sum())
    assert outside > 10_000
    assert outside <= rows["1d"].not_for_bars <= outside + rows["1m"].not_for_bars
    for row in rows.values():
        assert row.in_bars + row.not_for_bars + row.open == row.trades
    # the same trades checked without the tape rules: the left-out prints count as missing
    assert not verify(
        _stored(_run(lean_batches, LEAN_SETTINGS)), BarRules(session_calendar="XNYS")
    ).ok


def test_trades_of_windows_still_open_are_open_not_lost(lean_batches):
    for settings, rules in ((ProcessorSettings(), BarRules()), (LEAN_SETTINGS, LEAN_RULES)):
        report = verify(_stored(_run(lean_batches, settings, finish=False)), rules)
        assert report.ok, report.violations
        assert all(r.open > 0 for r in report.rows)


def test_bars_missing_name_the_symbol_interval_and_the_count(plain):
    bars = plain.bars
    gone = pc.and_(pc.equal(bars.column("symbol"), "IBM"), pc.equal(bars.column("timeframe"), "1m"))
    lost = pc.sum(bars.filter(gone).slice(0, 3).column("trades")).as_py()
    keep = np.ones(bars.num_rows, bool)
    keep[np.flatnonzero(gone.to_numpy(zero_copy_only=False))[:3]] = False
    report = verify(replace(plain, bars=bars.filter(pa.array(keep))), BarRules())
    assert report.violations == [
        f"{DATASET} IBM 1m: {lost:,} trades missing (in a closed window, in no bar): bars hold "
        f"{_sum(bars, 'IBM', '1m') - lost:,}, closed windows {_sum(bars, 'IBM', '1m'):,}"
    ]
    assert {r.timeframe: r.missing for r in report.rows} == {"1s": 0, "1m": lost, "5m": 0}


def _sum(bars, symbol, tf):
    mask = pc.and_(pc.equal(bars.column("symbol"), symbol), pc.equal(bars.column("timeframe"), tf))
    return pc.sum(bars.filter(mask).column("trades")).as_py()


def test_a_whole_interval_missing_is_found_when_the_intervals_are_named(plain):
    without_5m = plain.bars.filter(pc.not_equal(plain.bars.column("timeframe"), "5m"))
    assert verify(replace(plain, bars=without_5m), BarRules()).ok  # nothing says 5m was built
    report = verify(replace(plain, bars=without_5m), BarRules(), ["1s", "1m", "5m"])
    assert len(report.violations) == 4  # each symbol's 5m trades
    assert all(" 5m: " in line and "missing" in line for line in report.violations)


def test_keys_stored_twice_are_named(plain):
    bars = pa.concat_tables([plain.bars.slice(7, 1), plain.bars])  # the copy comes first
    alerts = pa.concat_tables([plain.alerts, plain.alerts.slice(0, 2)])
    copies = [TradeCopy(DATASET, 10, "b.parquet holds the rows of a.parquet")]
    report = verify(replace(plain, bars=bars, alerts=alerts, trade_copies=copies), BarRules())
    bar = plain.bars.slice(7, 1).to_pylist()[0]
    assert not report.ok
    assert report.violations[0].startswith(f"{DATASET} {bar['timeframe']}: bars stored twice or "
                                           f"more: {bar['symbol']} ")  # fmt: skip
    assert any(": alerts stored twice or more: " in v for v in report.violations)
    assert f"{DATASET}: 10 trades stored twice: b.parquet holds the rows of a.parquet" in (
        report.violations
    )
    # a bar twice is a key twice, not trades counted twice (nor another bar left out)
    assert len(report.violations) == 3


def test_late_trades_are_kept_and_in_dlq_and_in_no_bar(lean_batches):
    # the day's first trade again at the end of the day: its bar closed long ago
    batches = [*lean_batches, lean_batches[0].slice(0, 1)]
    stored = _stored(_run(batches, ProcessorSettings(intervals=("1m",))))
    assert stored.dlq.column("reason").to_pylist() == ["late"]
    report = verify(stored, BarRules())
    assert report.ok, report.violations
    assert [(r.trades, r.in_bars, r.not_for_bars) for r in report.rows] == [(388_418, 388_417, 1)]
    assert report.dlq == {DATASET: {"late": 1}}


def test_only_one_dataset(plain):
    assert only_dataset(plain, DATASET).trades.num_rows == 388_417
    with pytest.raises(Exception, match="no rows of dataset 'other'"):
        only_dataset(plain, "other")
