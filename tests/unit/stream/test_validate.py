"""Validation reasons of trades, one per row, in the order the checks apply."""

import math

import pyarrow as pa
import pytest

from marketpulse.bus import Batch
from marketpulse.models import BAR_SCHEMA, TRADE_SCHEMA
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.validate import (
    EARLIEST_BAR,
    EARLIEST_TRADE,
    LATEST,
    MAX_CLOCK_SKEW,
    MAX_PRICE,
    MAX_SIZE,
    MIN_PRICE,
    REASONS,
    check_bars,
    check_trades,
)

INF, NAN = math.inf, math.nan


def test_each_bad_trade_gets_its_reason_and_good_ones_none():
    rows = [
        ("AAPL", 1, 10.0, 5.0, ""),
        ("AAPL", 1, NAN, 5.0, "nan"),
        ("AAPL", 1, 10.0, NAN, "nan"),
        ("AAPL", 1, 0.0, 5.0, "price"),
        ("AAPL", 1, -INF, 5.0, "price"),
        ("AAPL", 1, 10.0, -1.0, "size"),
        ("AAPL", 1, 10.0, -INF, "size"),
        ("AAPL", 1, INF, 5.0, "nan"),
        ("AAPL", 1, 10.0, INF, "nan"),
        ("AAPL", 1, 10.0, 0.0, ""),
        ("BAD SYMBOL", 1, NAN, 5.0, "symbol"),
        (None, 1, 10.0, 5.0, "symbol"),
        ("AAPL", None, -1.0, 5.0, "schema"),
    ]
    data = pa.RecordBatch.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.float64()),
            pa.array([r[3] for r in rows], pa.float64()),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
        ],
        schema=TRADE_SCHEMA,
    )
    assert [REASONS[c] for c in check_trades(data)] == [r[4] for r in rows]


S = 10**9
T0 = 1_381_132_800 * S  # 2013-10-07
YEAR_1900 = -2_208_988_800 * S
YEAR_2030 = 1_893_456_000 * S


def _trades(rows):
    return pa.RecordBatch.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.float64()),
            pa.array([r[3] for r in rows], pa.float64()),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
        ],
        schema=TRADE_SCHEMA,
    )


def test_implausible_magnitudes_and_times_of_trades_get_their_reason():
    rows = [
        ("SPY", T0, 167.41, 100.0, ""),
        ("SPY", T0, 1e308, 100.0, "price"),
        ("SPY", T0, 1e-320, 100.0, "price"),  # a subnormal: positive, but no price
        ("SPY", T0, MAX_PRICE, 100.0, ""),
        ("SPY", T0, MIN_PRICE, 100.0, ""),
        ("SPY", T0, MAX_PRICE * 1.001, 100.0, "price"),
        ("SPY", T0, 167.41, 1e30, "size"),
        ("SPY", T0, 167.41, MAX_SIZE, ""),
        ("SPY", YEAR_1900, 167.41, 100.0, "time"),
        ("SPY", -1, 167.41, 100.0, "time"),  # one ns before the epoch
        ("SPY", EARLIEST_TRADE, 167.41, 100.0, ""),
        ("SPY", YEAR_2030, 167.41, 100.0, ""),  # only the wall clock (live) or the partition
        ("SPY", LATEST + 1, 167.41, 100.0, "future"),
        ("SPY", 2**63 - 1, 167.41, 100.0, "future"),
    ]
    assert [REASONS[c] for c in check_trades(_trades(rows))] == [r[4] for r in rows]


def test_live_trades_ahead_of_the_wall_clock_are_future():
    now = T0
    data = _trades(
        [
            ("SPY", now + MAX_CLOCK_SKEW, 10.0, 1.0),
            ("SPY", now + MAX_CLOCK_SKEW + 1, 10.0, 1.0),
            ("SPY", YEAR_2030, 10.0, 1.0),
        ]
    )
    assert [REASONS[c] for c in check_trades(data, now=now)] == ["", "future", "future"]
    assert not check_trades(data).any()  # not live: the wall clock is not a bound


def _bars(rows):
    names = ("symbol", "timeframe", "bar_start", "bar_end", "open", "high", "low", "close",
             "volume", "vwap", "trades")  # fmt: skip
    columns = {name: [r[i] for r in rows] for i, name in enumerate(names)}
    columns["dataset"] = [None] * len(rows)
    return pa.RecordBatch.from_pydict(columns, schema=BAR_SCHEMA)


def test_implausible_bars_get_their_reason():
    day = 86_400 * S
    year_1965 = -157_766_400 * S  # the Kaggle index data starts in 1965

    def bar(start=T0, end=None, o=10.0, h=12.0, lo=9.0, c=11.0, v=100.0, vwap=None):
        end = start + day if end is None else end
        return ("SPY", "1d", start, end, o, h, lo, c, v, vwap, None)

    rows = [
        (bar(), ""),
        (bar(start=year_1965), ""),
        (bar(vwap=10.5), ""),
        (bar(vwap=NAN), ""),  # a vwap not known
        (bar(h=1e308), "price"),
        (bar(lo=1e-320), "price"),
        (bar(vwap=INF), "nan"),
        (bar(vwap=1e300), "price"),
        (bar(v=1e30), "size"),
        (bar(start=EARLIEST_BAR - day), "time"),
        (bar(end=T0), "time"),  # ends where it starts
        (bar(start=LATEST + 1), "future"),
        (bar(h=8.0), "ohlc"),  # high below low
        (bar(o=13.0), "ohlc"),  # open above high
        (bar(c=8.5), "ohlc"),  # close below low
    ]
    codes = check_bars(_bars([r[0] for r in rows]))
    assert [REASONS[c] for c in codes] == [r[1] for r in rows]
    live = check_bars(_bars([bar(start=T0 + 2 * MAX_CLOCK_SKEW)]), now=T0)
    assert [REASONS[c] for c in live] == ["future"]


def test_accepted_extremes_make_no_infinity_in_a_bar():
    """The largest price and size accepted, many times over: the bar's sums stay finite."""
    n = 10_000
    data = _trades([("SPY", T0 + i, MAX_PRICE, MAX_SIZE) for i in range(n)])
    assert not check_trades(data).any()
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    proc.process(Batch("ticks", 0, 0, n - 1, kind="trade", columns=data))
    (bar,) = proc.finish().bars.to_pylist()
    assert bar["volume"] == pytest.approx(n * MAX_SIZE)
    assert math.isfinite(bar["vwap"]) and bar["vwap"] == pytest.approx(MAX_PRICE)
