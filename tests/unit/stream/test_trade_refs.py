"""The kept trades by reference: what a reference names, and the records a sink makes of it."""

from __future__ import annotations

import threading

import msgspec
import numpy as np
import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch, Message, RecordsGone
from marketpulse.bus.codec import decode_rows, encode_rows
from marketpulse.bus.memory import MemoryBus
from marketpulse.exceptions import BusError
from marketpulse.stream import trade_refs
from marketpulse.stream.decode import decode_batch, from_plain
from marketpulse.stream.output import Constant, stamp
from marketpulse.stream.trade_refs import (
    TradeRef,
    TradeResolver,
    is_ref,
    refs_of,
    slices,
    trade_records,
)

TICKS = "p.ticks"


def trades_table(n: int, first_ts: int = 1_000) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array([("AAA", "BBB")[i % 2] for i in range(n)]),
            "ts": pa.array([first_ts + i for i in range(n)], pa.int64()),
            "price": pa.array([100.0 + i / 8 for i in range(n)]),
            "size": pa.array([float(1 + i) for i in range(n)]),
        }
    )


def ticks_batch(values: list[bytes], first: int = 100, partition: int = 2) -> Batch:
    messages = [Message(b"k", value, first + i) for i, value in enumerate(values)]
    return Batch(TICKS, partition, first, first + len(values) - 1, messages=messages)


class LogBus:
    """``ticks`` partitions held as messages; :meth:`read_range` as Kafka's reads them."""

    def __init__(self, batches: list[Batch], fail: int = 0) -> None:
        self.batches = {b.partition: b for b in batches}
        self.reads: list[tuple[int, int, int]] = []
        self.fail = fail  # reads that time out first (the broker away)

    def read_range(self, topic, partition, first, last, timeout=60.0, stop=None):
        assert topic == TICKS
        self.reads.append((partition, first, last))
        if self.fail:
            self.fail -= 1
            raise BusError(f"read {topic}[{partition}]: not reached within {timeout:.0f} s")
        batch = self.batches[partition]
        if first < batch.first_offset:
            raise RecordsGone(f"{topic}[{partition}] no longer holds offset {first}")
        held = [m for m in batch.messages if first <= m.offset <= last]
        return [Batch(topic, partition, held[0].offset, held[-1].offset, messages=held)]


def kept_like_the_processor(batch: Batch, refused: set[int], dataset: str) -> pa.RecordBatch:
    """The trades the processor keeps of ``batch``: decoded, the refused left out, stamped."""
    decoded, _ = decode_batch(batch)
    trades = next(data for kind, data in decoded if kind == "trade")
    keep = [o not in refused for o in trades.column("offset").to_pylist()]
    return stamp(trades.filter(pa.array(keep)), Constant(dataset))


def test_runs_name_every_kept_offset_and_nothing_else():
    offsets = np.array([5, 6, 7, 9, 10, 20], np.int64)
    (record,) = refs_of(TICKS, 3, offsets, "lean")
    assert is_ref(record)
    assert msgspec.json.decode(record) == {
        "kept_from": TICKS, "partition": 3, "runs": [5, 7, 9, 10, 20, 20], "dataset": "lean"
    }  # fmt: skip
    ref = msgspec.json.decode(record, type=TradeRef)
    assert ref.offsets().tolist() == offsets.tolist()
    assert refs_of(TICKS, 3, np.empty(0, np.int64), "lean") == []


@pytest.mark.parametrize("offsets", [[41], [41, 42, 43, 44], [7, 8, 10], [3, 5, 6, 7]])
def test_offsets_without_a_gap_are_one_run_as_the_general_path_writes_it(offsets):
    """The one-run shortcut writes the record the run-splitting path writes for them."""
    offsets = np.array(offsets, np.int64)
    (record,) = refs_of(TICKS, 2, offsets, "lean")
    values = offsets.tolist()
    starts = [o for i, o in enumerate(values) if i == 0 or values[i - 1] != o - 1]
    ends = [o for i, o in enumerate(values) if i == len(values) - 1 or values[i + 1] != o + 1]
    runs = [x for pair in zip(starts, ends, strict=True) for x in pair]
    assert record == msgspec.json.encode(TradeRef(TICKS, 2, runs, "lean"))
    assert msgspec.json.decode(record, type=TradeRef).offsets().tolist() == offsets.tolist()


def test_a_batch_of_many_runs_is_split_into_records_that_name_them_all(monkeypatch):
    monkeypatch.setattr(trade_refs, "_MAX_RUNS", 3)
    offsets = np.arange(0, 20, 2, dtype=np.int64)  # 10 runs of one
    records = refs_of(TICKS, 0, offsets, None)
    assert len(records) == 4  # 3 + 3 + 3 + 1 runs
    named = np.concatenate([msgspec.json.decode(r, type=TradeRef).offsets() for r in records])
    assert named.tolist() == offsets.tolist()


def test_a_copy_of_a_trade_is_no_reference():
    copy = encode_rows("trades", trades_table(1))[1][0]
    assert not is_ref(copy) and not is_ref(None) and not is_ref(b"")


def test_resolved_references_are_the_records_a_copy_would_have_carried_bit_for_bit():
    values = encode_rows("trade", trades_table(12))[1]  # plain records, as `produce` writes
    batch = ticks_batch(values)
    kept = kept_like_the_processor(batch, refused={103, 107, 108}, dataset="lean")
    assert from_plain(kept)
    copies = trade_records(kept, batch, "lean")
    refs = refs_of(TICKS, batch.partition, kept.column("offset").to_numpy(), "lean")
    assert len(refs) == 1 and len(copies) == 9

    bus = LogBus([batch])
    got, origin, failed = TradeResolver(bus).records(refs)
    assert got == copies and origin == [0] * 9 and failed == []
    assert bus.reads == [(2, 100, 111)]  # one read, from the first kept offset to the last
    rows, errors = decode_rows("trades", got)
    assert errors == [] and rows.column("dataset").to_pylist() == ["lean"] * 9


def test_records_other_than_plain_trades_are_encoded_from_their_columns_with_the_dataset():
    values = encode_rows("trade", trades_table(4))[1]
    quote = b'{"type":"quote","symbol":"AAA","ts":1001,"bid":1.0,"bid_size":1.0,"ask":2.0,"ask_size":1.0}'  # noqa: E501
    values.insert(1, quote)  # a quote among the trades: the batch is no longer all plain
    batch = ticks_batch(values)
    kept = kept_like_the_processor(batch, refused=set(), dataset="mixed")
    copies = trade_records(kept, batch, "mixed")
    refs = refs_of(TICKS, 2, kept.column("offset").to_numpy(), "mixed")
    assert msgspec.json.decode(refs[0])["runs"] == [100, 100, 102, 104]  # the quote left out
    got, _, failed = TradeResolver(LogBus([batch])).records(refs)
    assert failed == []
    assert decode_rows("trades", got)[0] == decode_rows("trades", copies)[0]
    assert decode_rows("trades", got)[0].column("dataset").to_pylist() == ["mixed"] * 4


def test_copies_pass_through_and_each_record_says_where_it_came_from():
    values = encode_rows("trade", trades_table(3))[1]
    batch = ticks_batch(values, first=0, partition=0)
    copy = encode_rows("trades", trades_table(1, first_ts=5))[1][0]
    ref = refs_of(TICKS, 0, np.array([0, 2]), None)[0]
    got, origin, failed = TradeResolver(LogBus([batch])).records([copy, ref, copy])
    assert origin == [0, 1, 1, 2] and failed == []
    assert got[0] == got[3] == copy and got[1:3] == [values[0], values[2]]  # no dataset: as sent


def test_references_that_cannot_be_resolved_are_named_and_the_others_kept():
    batch = ticks_batch(encode_rows("trade", trades_table(3))[1], first=50, partition=1)
    gone = refs_of(TICKS, 1, np.array([10, 11]), None)[0]  # before the partition's start
    short = refs_of(TICKS, 1, np.array([51, 52, 53]), None)[0]  # 53: no such record
    good = refs_of(TICKS, 1, np.array([50]), None)[0]
    broken = b'{"kept_from":"p.ticks","partition":"one"}'
    got, origin, failed = TradeResolver(LogBus([batch])).records([gone, good, short, broken])
    assert origin == [1] and len(got) == 1
    assert [index for index, _ in failed] == [0, 2, 3]
    assert "no longer holds offset 10" in failed[0][1]
    assert "holds 2 of the 3 trades kept from offsets 51 to 53" in failed[1][1]
    assert failed[2][1].startswith("a reference to kept trades not resolved: ")


def test_a_read_that_times_out_is_tried_again_until_it_succeeds_or_the_caller_stops():
    batch = ticks_batch(encode_rows("trade", trades_table(2))[1], first=0, partition=0)
    ref = refs_of(TICKS, 0, np.array([0, 1]), None)[0]
    bus = LogBus([batch], fail=2)
    got, _, failed = TradeResolver(bus).records([ref])
    assert len(bus.reads) == 3 and len(got) == 2 and failed == []  # two failures, then read

    stop = threading.Event()
    stop.set()
    bus = LogBus([batch], fail=1)
    assert TradeResolver(bus, stop).records([ref]) is None  # stopping: nothing half-resolved
    assert len(bus.reads) == 1


def test_on_the_memory_bus_a_range_is_read_as_the_columns_it_holds():
    bus = MemoryBus()
    bus.create_topics([TICKS], 1)
    producer = bus.producer()
    producer.send_columns(TICKS, "trade", trades_table(5))
    producer.send_columns(TICKS, "trade", trades_table(5, first_ts=2_000))
    batches = bus.read_range(TICKS, 0, 3, 6)
    assert [(b.first_offset, b.last_offset, b.columns.num_rows) for b in batches] == [
        (3, 4, 2), (5, 6, 2)
    ]  # fmt: skip
    ref = refs_of(TICKS, 0, np.array([3, 6]), "mem")[0]
    got, _, failed = TradeResolver(bus).records([ref])
    rows = decode_rows("trades", got)[0]
    assert failed == [] and rows.column("ts").to_pylist() == [1_003, 2_001]
    assert rows.column("dataset").to_pylist() == ["mem", "mem"]


def test_a_backlog_of_references_is_cut_into_slices_of_at_most_so_many_trades():
    ref = refs_of(TICKS, 0, np.array([0, 1, 2, 5, 6]), None)[0]  # names 5 trades
    big = refs_of(TICKS, 0, np.arange(100, 120), None)[0]  # 20
    copy = encode_rows("trades", trades_table(1))[1][0]
    values = [ref, ref, copy, big, ref, copy, copy, b'{"kept_from":broken']
    # 5 + 5 + 1 > 10: the copy starts the next slice; with the 20 it is more than 10 again
    assert slices(values, 10) == [(0, 2), (2, 3), (3, 4), (4, 8)]
    assert slices(values, 11) == [(0, 3), (3, 4), (4, 8)]
    assert slices(values, 1_000) == [(0, 8)]
    assert slices([], 10) == []
    assert slices([big], 10) == [(0, 1)]  # more than the most, alone
