"""Daily and weekly bars built from trades follow the exchange's sessions."""

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus import Batch
from marketpulse.models import TRADE_SCHEMA
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.checkpoint import CheckpointError
from marketpulse.stream.sessions import session_windows
from marketpulse.stream.windows import LATE, WindowState

S = 1_000_000_000
MINUTE, HOUR, DAY = 60 * S, 3600 * S, 86_400 * S


def utc(text):
    return int(np.datetime64(text, "ns").astype(np.int64))


def add(state, rows):
    """Add (sid, time, price, size) rows; return the flags and closed bars as dicts."""
    sid, ts, price, size = (np.array(c) for c in zip(*rows, strict=True))
    flags, closed = state.add(sid.astype(np.int64), ts.astype(np.int64), price.astype(float),
                              size.astype(float))  # fmt: skip
    return flags, bars(closed)


def bars(closed):
    names = ("interval", "sid", "start", "end", "open", "high", "low", "close", "volume", "count")
    return [dict(zip(names, row, strict=True)) for row in zip(
        *(getattr(closed, n).tolist() for n in names), strict=True)]  # fmt: skip


def daily_state(*units, calendar="XNYS", tz="UTC", lateness=0):
    tables = [session_windows(unit, calendar, tz) for unit in units]
    return WindowState([MINUTE] + [0] * len(units), lateness, sessions=tables)


def test_a_daily_bar_spans_the_session_and_takes_only_its_trades():
    state = daily_state("d")
    _, closed = add(state, [
        (0, utc("2013-10-07T12:00"), 9.0, 1),    # pre-market: in the minute bars only
        (0, utc("2013-10-07T13:30"), 10.0, 2),   # the open
        (0, utc("2013-10-07T15:00"), 12.0, 3),
        (0, utc("2013-10-07T19:59:59"), 11.0, 4),
        (0, utc("2013-10-07T20:00"), 50.0, 5),   # the close: after hours
        (0, utc("2013-10-07T20:05"), 1.0, 6),    # closes the day
    ])  # fmt: skip
    daily = [b for b in closed if b["interval"] == 1]
    assert daily == [{
        "interval": 1, "sid": 0, "start": utc("2013-10-07T13:30"), "end": utc("2013-10-07T20:00"),
        "open": 10.0, "high": 12.0, "low": 10.0, "close": 11.0, "volume": 9.0, "count": 3,
    }]  # fmt: skip
    # the watermark passed the close (20:05): the day closed before the end of the stream
    assert sum(b["volume"] for b in closed if b["interval"] == 0) + 6 == 21


def test_an_early_close_ends_the_bar_early_and_a_holiday_has_none():
    state = daily_state("d", "w")
    _, closed = add(state, [
        (0, utc("2013-11-25T15:00"), 1.0, 1),    # Monday of Thanksgiving week
        (0, utc("2013-11-28T15:00"), 2.0, 1),    # Thanksgiving: the exchange is closed
        (0, utc("2013-11-29T17:59"), 3.0, 1),    # early close at 13:00 New York, 18:00 UTC
        (0, utc("2013-11-29T18:30"), 4.0, 1),    # after the early close
    ])  # fmt: skip
    closed += bars(state.close_all())
    daily = [(b["start"], b["end"], b["close"]) for b in closed if b["interval"] == 1]
    assert daily == [
        (utc("2013-11-25T14:30"), utc("2013-11-25T21:00"), 1.0),
        (utc("2013-11-29T14:30"), utc("2013-11-29T18:00"), 3.0),
    ]
    weekly = [b for b in closed if b["interval"] == 2]
    assert [(b["start"], b["end"], b["volume"]) for b in weekly] == [
        (utc("2013-11-25T14:30"), utc("2013-11-29T18:00"), 2.0)
    ]


def test_a_24_7_market_has_utc_days_and_weeks_from_monday():
    state = daily_state("d", "w", calendar="24/7")
    _, closed = add(state, [(0, utc("2024-01-06T23:59"), 1.0, 1),
                            (0, utc("2024-01-07T00:00"), 2.0, 1),
                            (0, utc("2024-01-08T00:00"), 3.0, 1)])  # Sat, Sun, Mon  # fmt: skip
    closed += bars(state.close_all())
    assert [(b["start"], b["end"]) for b in closed if b["interval"] == 1] == [
        (utc(f"2024-01-0{d}"), utc(f"2024-01-0{d + 1}")) for d in (6, 7, 8)
    ]
    assert [(b["start"], b["end"], b["volume"]) for b in closed if b["interval"] == 2] == [
        (utc("2024-01-01"), utc("2024-01-08"), 2.0),
        (utc("2024-01-08"), utc("2024-01-15"), 1.0),
    ]


def test_without_a_calendar_days_are_local_dates_of_the_time_zone():
    state = daily_state("d", calendar="", tz="America/New_York")
    add(state, [(0, utc("2013-11-03T12:00"), 1.0, 1)])  # the clocks go back: a 25 h day
    (bar,) = [b for b in bars(state.close_all()) if b["interval"] == 1]
    assert (bar["start"], bar["end"]) == (utc("2013-11-03T04:00"), utc("2013-11-04T05:00"))


def test_with_session_intervals_only_a_trade_of_a_closed_session_is_late():
    state = WindowState([0], 0, sessions=[session_windows("d", "XNYS")])
    flags, _ = add(state, [
        (0, utc("2013-10-08T14:00"), 1.0, 1), (0, utc("2013-10-07T15:00"), 2.0, 1),
        (0, utc("2013-10-08T13:00"), 3.0, 1), (0, utc("2013-10-08T15:00"), 4.0, 1),
    ])  # fmt: skip
    assert flags.tolist() == [0, LATE, LATE, 0]
    (bar,) = bars(state.close_all())
    assert (bar["open"], bar["close"], bar["count"]) == (1.0, 4.0, 2)


def test_session_intervals_must_come_after_the_fixed_ones():
    with pytest.raises(ValueError, match="session-aligned last"):
        WindowState([0, MINUTE], 0, sessions=[session_windows("d", "XNYS")])


# Streaming equals batch, and a checkpoint continues exactly, with daily bars.

SETTINGS = ProcessorSettings(
    intervals=("1m", "4h", "1d", "1w"), lateness=2.0, session_calendar="XNYS"
)


def trades(n=6_000, seed=3):
    """Trades of 3 symbols over two weeks around Thanksgiving 2013, day and night."""
    rng = np.random.default_rng(seed)
    ts = np.sort(utc("2013-11-20T12:00") + rng.integers(0, 14 * DAY, n))
    ts += rng.integers(-S, S, n)  # a little out of order, within the lateness
    symbols = pa.array(rng.choice(["AAA", "BBB", "CCC"], n)).dictionary_encode()
    columns = {
        "symbol": symbols, "ts": pa.array(ts), "price": pa.array(100 + rng.normal(0, 1, n)),
        "size": pa.array(rng.integers(1, 500, n).astype(float)),
        "exchange": pa.nulls(n, pa.string()), "condition": pa.nulls(n, pa.string()),
        "dataset": pa.nulls(n, pa.string()),
    }  # fmt: skip
    return pa.RecordBatch.from_pydict(columns, schema=TRADE_SCHEMA)


def batches(data, cuts):
    edges = [0, *cuts, data.num_rows]
    return [Batch("ticks", 0, lo, hi - 1, "trade", data.slice(lo, hi - lo))
            for lo, hi in zip(edges, edges[1:], strict=False) if hi > lo]  # fmt: skip


def run(processor, parts):
    outputs = [processor.process(b) for b in parts]
    return outputs


def rows(outputs):
    bars = pa.concat_tables([o.bars for o in outputs]).to_pylist()
    indicators = pa.concat_tables([o.indicators for o in outputs]).to_pylist()
    return bars, indicators


def test_daily_bars_streaming_equals_batch_and_survive_a_checkpoint():
    data = trades()
    whole = Processor(SETTINGS)
    expected = rows([*run(whole, batches(data, [])), whole.finish()])
    daily = [b for b in expected[0] if b["timeframe"] == "1d"]
    # 8 sessions with trades: Nov 20-22, 25-27, 29 (early close), Dec 2-3 (no Thanksgiving)
    assert len(daily) == 3 * 9
    assert {b["bar_end"] - b["bar_start"] for b in daily} == {int(6.5 * HOUR), int(3.5 * HOUR)}
    assert len([b for b in expected[0] if b["timeframe"] == "1w"]) == 3 * 3

    rng = np.random.default_rng(11)
    for _ in range(3):
        cuts = sorted(rng.choice(np.arange(1, data.num_rows), 25, replace=False).tolist())
        first = Processor(SETTINGS)
        parts = batches(data, cuts)
        split = len(parts) // 2
        outputs = run(first, parts[:split])
        compacted = dict(first.checkpoint("ticks", 0))
        second = Processor(SETTINGS)
        second.restore("ticks", 0, compacted)
        outputs += [*run(second, parts[split:]), second.finish()]
        assert rows(outputs) == expected


# Filling the intervals without trades.


def test_filling_closes_empty_intervals_with_the_previous_close():
    state = WindowState([MINUTE, 0], 0, sessions=[session_windows("d", "XNYS")], fill=True)
    t0 = utc("2013-10-07T14:00")
    flags, closed = add(state, [
        (0, t0, 10.0, 2), (0, t0 + 30 * S, 11.0, 1),
        (1, t0 + 3 * MINUTE, 7.0, 1),              # symbol 1 first trades at 14:03
        (0, t0 + 3 * MINUTE + S, 12.0, 1),         # 14:01 and 14:02 without trades
        (1, utc("2013-10-09T14:00"), 8.0, 1),      # 10-08: a session without trades
    ])  # fmt: skip
    assert not flags.any()
    closed += bars(state.close_all())
    minute = [(b["sid"], (b["start"] - t0) // MINUTE, b["close"], b["volume"], b["count"])
              for b in closed if b["interval"] == 0]  # fmt: skip
    # nothing before a symbol's first bar; every minute after it, up to the newest trade
    assert minute[:6] == [
        (0, 0, 11.0, 3.0, 2), (0, 1, 11.0, 0.0, 0), (0, 2, 11.0, 0.0, 0),
        (0, 3, 12.0, 1.0, 1), (1, 3, 7.0, 1.0, 1), (0, 4, 12.0, 0.0, 0),
    ]  # fmt: skip
    last = (utc("2013-10-09T14:00") - t0) // MINUTE
    assert [m[1] for m in minute if m[0] == 0] == list(range(last + 1))
    assert [m[1] for m in minute if m[0] == 1] == list(range(3, last + 1))
    fills = [b for b in closed if b["count"] == 0]
    assert all(b["open"] == b["high"] == b["low"] == b["close"] for b in fills)
    daily = [(b["sid"], b["start"], b["close"], b["count"]) for b in closed if b["interval"] == 1]
    assert daily == [
        (0, utc("2013-10-07T13:30"), 12.0, 3),
        (1, utc("2013-10-07T13:30"), 7.0, 1),
        (0, utc("2013-10-08T13:30"), 12.0, 0),
        (1, utc("2013-10-08T13:30"), 7.0, 0),
        (0, utc("2013-10-09T13:30"), 12.0, 0),  # filled: it starts before the newest trade
        (1, utc("2013-10-09T13:30"), 8.0, 1),
    ]


FILLED = ProcessorSettings(
    intervals=("1m", "4h", "1d"), lateness=2.0, session_calendar="XNYS", fill_gaps=True
)


def test_filled_bars_streaming_equals_batch_across_a_checkpoint():
    data = trades(n=1_500)
    whole = Processor(FILLED)
    expected = rows([*run(whole, batches(data, [])), whole.finish()])
    filled = [b for b in expected[0] if b["trades"] == 0]
    assert len(filled) > 10_000 and all(b["volume"] == 0 for b in filled)
    rng = np.random.default_rng(5)
    cuts = sorted(rng.choice(np.arange(1, data.num_rows), 40, replace=False).tolist())
    first = Processor(FILLED)
    parts = batches(data, cuts)
    outputs = run(first, parts[:20])
    compacted = dict(first.checkpoint("ticks", 0))
    second = Processor(FILLED)
    second.restore("ticks", 0, compacted)
    outputs += [*run(second, parts[20:]), second.finish()]
    assert rows(outputs) == expected
    # a state written with filling is refused without it, and the reverse
    with pytest.raises(CheckpointError, match="written with --fill-gaps"):
        Processor(SETTINGS_1M_1D).restore("ticks", 0, compacted)


SETTINGS_1M_1D = ProcessorSettings(
    intervals=("1m", "4h", "1d"), lateness=2.0, session_calendar="XNYS"
)
