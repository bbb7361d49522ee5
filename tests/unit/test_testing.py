"""``marketpulse.testing``: list feeds, collecting sinks and a manual clock."""

from __future__ import annotations

import pyarrow as pa
import pytest

import marketpulse.testing as testing
from marketpulse.models import QUOTE_SCHEMA, TRADE_SCHEMA, Quote, Trade
from marketpulse.sinks import TABLES, Sink, SourceRange
from marketpulse.testing import CollectingSink, ListFeed, ManualClock, quote_batch, trade_batch

T0 = 1_700_000_000 * 1_000_000_000


def test_the_exports_stay_as_documented():
    assert sorted(testing.__all__) == [
        "CollectingSink", "ListFeed", "ManualClock", "TradeRow", "quote_batch", "trade_batch",
    ]  # fmt: skip
    for name in testing.__all__:
        if name != "TradeRow":
            assert getattr(testing, name).__doc__, name


def test_trades_and_their_tuples_make_the_same_batch_of_the_trade_schema():
    objects = trade_batch([Trade("A", T0, 10.5, 3.0, exchange="P", condition="I"),
                           Trade("B", T0 + 1, 11.0, 4.0)], dataset="d")  # fmt: skip
    tuples = trade_batch([("A", T0, 10.5, 3.0, "P", "I"), ("B", T0 + 1, 11.0, 4.0)], dataset="d")
    assert objects.schema == TRADE_SCHEMA
    assert objects.equals(tuples)
    assert objects.column("price").to_pylist() == [10.5, 11.0]
    assert objects.column("exchange").to_pylist() == ["P", None]
    with pytest.raises(ValueError, match="a trade row is"):
        trade_batch([("A", T0, 10.5)])


def test_quotes_make_a_batch_of_the_quote_schema():
    batch = quote_batch([Quote("A", T0, 9.9, 100.0, 10.1, None)])
    assert batch.schema == QUOTE_SCHEMA
    assert batch.to_pylist()[0]["ask_size"] is None


def test_a_list_feed_yields_runs_of_one_kind_cut_at_the_batch_size():
    ticks = [("A", T0 + i, 10.0, 1.0) for i in range(5)]
    ticks += [Quote("A", T0 + 5, 9.9, 1.0, 10.1, 1.0), Trade("A", T0 + 6, 10.0, 1.0)]
    feed = ListFeed(ticks, batch_size=2)
    batches = list(feed.batches())
    assert [(b.kind, b.data.num_rows) for b in batches] == [
        ("trade", 2), ("trade", 2), ("trade", 1), ("quote", 1), ("trade", 1),
    ]  # fmt: skip
    assert [b.done for b in batches] == [2, 4, 5, 6, 7] and batches[0].total == 7
    assert len(list(feed.batches())) == 5  # each run reads the list again
    assert feed.realtime is False and not feed.closed
    feed.close()
    assert feed.closed
    with pytest.raises(ValueError, match="batch_size"):
        ListFeed(ticks, batch_size=0)
    with pytest.raises(ValueError, match="expected trades, quotes"):
        ListFeed(["AAPL"])


def test_a_collecting_sink_keeps_each_table_in_order():
    sink = CollectingSink()
    assert isinstance(sink, Sink)
    rows = pa.table({"symbol": ["A", "B"], "close": [1.0, 2.0]})
    sink.write("bars", rows, SourceRange(0, 0, 1))
    sink.write("bars", rows.slice(1).to_batches()[0])
    assert sink.table("bars").column("symbol").to_pylist() == ["A", "B", "B"]
    assert sink.rows("bars")[2] == {"symbol": "B", "close": 2.0}
    assert sink.sources["bars"] == [SourceRange(0, 0, 1), None]
    assert sink.tables == ["bars"]
    assert sink.stats.rows == {"bars": 3}
    empty = sink.table("alerts")
    assert empty.num_rows == 0 and empty.schema == TABLES["alerts"]
    with pytest.raises(ValueError, match="unknown table 'ticks'"):
        sink.write("ticks", rows)
    with pytest.raises(ValueError, match="unknown table 'ticks'"):
        sink.table("ticks")
    assert not sink.due()
    with sink:
        pass
    assert sink.closed
    assert sink.table("bars").num_rows == 3  # still readable once closed


def test_a_manual_clock_moves_only_when_told():
    clock = ManualClock(100.0)
    assert clock() == 100.0 and clock.now_ns() == 100 * 10**9
    assert clock.advance(2.5) == 102.5
    clock.sleep(0.5)
    clock.sleep(1.0)
    assert clock() == 104.0
    assert clock.slept == [0.5, 1.0]
    clock.now = 7.0
    assert clock() == 7.0
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1.0)
