"""A partition holds at most ``max_symbols`` symbols; rows of further ones go to the DLQ."""

import msgspec
import pyarrow as pa
import pytest

from marketpulse.bus import Batch, Message
from marketpulse.models import BAR_SCHEMA, Trade
from marketpulse.stream import Processor, ProcessorSettings

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC
DAY = 86_400 * S


def messages(symbols, first=0):
    """One trade per symbol, a second apart, as raw records of the ticks topic."""
    values = [Trade(s, T0 + (first + i) * S, 100.0 + i, 1.0) for i, s in enumerate(symbols)]
    return Batch(
        "ticks", 0, first, first + len(values) - 1,
        messages=[Message(t.symbol.encode(), msgspec.json.encode(t), first + i)
                  for i, t in enumerate(values)],
    )  # fmt: skip


def settings(limit):
    return ProcessorSettings(intervals=("1s",), idle_timeout=None, max_symbols=limit)


def test_trades_of_symbols_beyond_the_limit_go_to_the_dlq_with_their_own_reason():
    proc = Processor(settings(2))
    out = proc.process(messages(["A", "B", "C", "A", "D", "B"]))
    assert out.accepted == 4
    assert [(d.reason, d.key, d.offset) for d in out.dead] == [
        ("max_symbols", "C", 2),
        ("max_symbols", "D", 4),
    ]
    assert "max_symbols" in out.dead[0].error and "--max-symbols" in out.dead[0].error
    later = proc.process(messages(["C", "A"], first=6))  # a refused symbol stays refused
    assert later.accepted == 1 and [d.key for d in later.dead] == ["C"]
    bars = [out.bars, later.bars, proc.finish().bars]
    assert sorted({s for b in bars for s in b.column("symbol").to_pylist()}) == ["A", "B"]
    assert list(proc.state("ticks", 0).sids) == ["A", "B"]  # no state was made for C or D


def test_the_limit_holds_on_the_merged_path_of_a_poll():
    proc = Processor(settings(3))
    batches = [messages(["A", "B"]), messages(["C", "D", "A"], first=2)]
    batches[1] = Batch("ticks", 1, 2, 4, messages=batches[1].messages)
    outs = proc.process_each(batches)
    assert [o.accepted for o in outs] == [2, 3]  # three symbols in each partition at most
    proc.process_each([messages(["E", "F", "G"], first=5)])
    assert [d.key for d in proc.process(messages(["H"], first=8)).dead] == ["H"]


def test_bars_of_symbols_beyond_the_limit_go_to_the_dlq():
    proc = Processor(settings(1))
    data = pa.RecordBatch.from_pydict(
        {
            "symbol": ["HSI", "N225", "HSI"], "timeframe": ["1d"] * 3,
            "bar_start": [T0 - T0 % DAY + i * DAY for i in range(3)],
            "bar_end": [T0 - T0 % DAY + (i + 1) * DAY for i in range(3)],
            "open": [1.0] * 3, "high": [1.0] * 3, "low": [1.0] * 3, "close": [1.0] * 3,
            "volume": [0.0] * 3, "vwap": [None] * 3, "trades": [0] * 3, "dataset": [None] * 3,
        },
        schema=BAR_SCHEMA,
    )  # fmt: skip
    out = proc.process(Batch("ticks", 0, 10, 12, kind="bar", columns=data))
    assert out.bars.column("symbol").to_pylist() == ["HSI", "HSI"]
    assert [(d.reason, d.key, d.offset) for d in out.dead] == [("max_symbols", "N225", 11)]


def test_a_restored_partition_keeps_its_symbols_under_a_lower_limit():
    proc = Processor(settings(3))
    proc.process(messages(["A", "B", "C"]))
    records = dict(proc.checkpoint("ticks", 0))
    lower = Processor(settings(2))
    assert lower.restore("ticks", 0, records) == 3
    out = lower.process(messages(["C", "D"], first=3))
    assert out.accepted == 1 and [d.key for d in out.dead] == ["D"]


def test_the_limit_must_be_positive():
    with pytest.raises(ValueError, match="max_symbols"):
        ProcessorSettings(max_symbols=0)
