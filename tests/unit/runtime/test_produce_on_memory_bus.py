"""The produce service on the embedded bus: the ticks topic holds the feed, keyed by symbol.

A slice of a real day of trades (LEAN's 2013-10-07 sample: SPY, BAC, AIG,
IBM), with two rows a file feed cannot read put in, is produced by
:class:`ProduceService` onto a :class:`MemoryBus` with 3-partition ``ticks``
and ``dlq`` topics, as it is onto Kafka: every trade lands in the partition of
its symbol (:func:`partition_for`), in feed order per symbol, as the feed's
Arrow columns; the unreadable rows are dead letters in ``dlq`` with the file,
line and dataset.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest

from marketpulse.bus import MemoryBus
from marketpulse.bus.base import partition_for
from marketpulse.bus.topics import Topics
from marketpulse.feeds import FileReplay
from marketpulse.feeds.dataset import feed_dataset
from marketpulse.runtime.produce import ProduceOptions, ProduceService

DAY = Path(__file__).parents[3] / ".." / "shared" / "data" / "lean-2013-10-07" / "trades.csv.gz"
TOPICS = Topics("m.")
PARTITIONS = 3
BAD_ROWS = {  # line number in the slice -> row
    5: "2013-10-07T09:31:00.000Z,IBM,abc,100,P,0,0",  # not a number
    900: "2013-10-07T09:31:00.000Z,BAC,14.1",  # fields short
}


def day_slice(path: Path, every: int = 97) -> int:
    """Write every ``every``-th trade of the day and the bad rows to ``path``; return trades."""
    with gzip.open(DAY, "rt") as file:
        header, *rows = file.read().splitlines()
    kept = rows[::every]
    lines = [header]
    for row in kept:
        while len(lines) + 1 in BAD_ROWS:  # line numbers count from 1, the header included
            lines.append(BAD_ROWS[len(lines) + 1])
        lines.append(row)
    path.write_text("\n".join(lines) + "\n")
    return len(kept)


def columns_of(batches) -> dict[int, pa.Table]:
    """The rows of each partition, in offset order, checked to be contiguous."""
    parts: dict[int, list] = defaultdict(list)
    for batch in sorted(batches, key=lambda b: (b.partition, b.first_offset)):
        held = parts[batch.partition]
        assert batch.first_offset == sum(len(t) for t in held)  # no gap, no overlap
        held.append(pa.Table.from_batches([batch.columns]) if isinstance(
            batch.columns, pa.RecordBatch) else batch.columns)  # fmt: skip
    return {p: pa.concat_tables(tables) for p, tables in parts.items()}


@pytest.fixture
def produced(tmp_path):
    if not DAY.exists():
        pytest.fail(f"the sample day is missing: {DAY}")
    path = tmp_path / "lean-2013-10-07-slice.csv"
    trades = day_slice(path)
    bus = MemoryBus(retain=True)
    bus.create_topics([TOPICS.ticks, TOPICS.name("dlq")], PARTITIONS)
    feed = FileReplay(path, batch_size=500)
    stats = ProduceService(bus, TOPICS, feed, ProduceOptions()).run()
    return path, trades, bus, stats


def test_every_trade_lands_in_its_symbols_partition_in_feed_order(produced):
    path, trades, bus, stats = produced
    expected: dict[str, list[tuple]] = defaultdict(list)  # what the feed yields, per symbol
    for batch in FileReplay(path, batch_size=500).batches():
        data = batch.data
        for row in zip(*(data.column(n).to_pylist() for n in ("symbol", "ts", "price", "size")),
                       strict=True):  # fmt: skip
            expected[row[0]].append(row[1:])
    assert sum(map(len, expected.values())) == trades > 3000
    assert stats.ticks == trades and stats.exhausted and stats.ok

    batches = bus.read_all(TOPICS.ticks)
    assert {b.kind for b in batches} == {"trade"}
    held = columns_of(batches)
    # columns are the transport here: the file's lines stay, for the processor's dead letters
    assert "line" in held[next(iter(held))].column_names
    got: dict[str, list[tuple]] = defaultdict(list)
    for partition, table in held.items():
        columns = [table.column(n).to_pylist() for n in ("symbol", "ts", "price", "size")]
        for symbol, *rest in zip(*columns, strict=True):
            assert partition_for(symbol, PARTITIONS) == partition, symbol
            got[symbol].append(tuple(rest))
    assert len(held) > 1  # the symbols are spread over partitions
    assert set(got) == {"SPY", "BAC", "AIG", "IBM"}
    assert got == expected  # every trade once, in feed order per symbol
    assert bus.end_offsets(TOPICS.ticks) == [len(held.get(p, [])) for p in range(PARTITIONS)]


def test_the_feeds_dead_letters_go_to_dlq_with_their_dataset(produced):
    path, _, bus, stats = produced
    dataset = feed_dataset(FileReplay(path))
    assert dataset
    assert stats.dead == len(BAD_ROWS)
    batches = bus.read_all(TOPICS.name("dlq"))
    assert {b.kind for b in batches} == {"dlq"}
    rows = pa.concat_tables(columns_of(batches).values()).to_pylist()
    assert sorted(r["source_line"] for r in rows) == sorted(BAD_ROWS)
    for row in rows:
        assert row["dataset"] == dataset
        assert row["source_file"] == str(path)
        assert row["value"].decode() == BAD_ROWS[row["source_line"]]
        assert row["reason"]
    assert bus.end_offsets(TOPICS.ticks) != [0] * PARTITIONS


def test_a_dataset_given_names_the_dead_letters(tmp_path):
    path = tmp_path / "trades.csv"
    day_slice(path, every=20_000)
    bus = MemoryBus(retain=True)
    bus.create_topics([TOPICS.ticks, TOPICS.name("dlq")], PARTITIONS)
    ProduceService(bus, TOPICS, FileReplay(path), ProduceOptions(dataset="day-1")).run()
    rows = [row for b in bus.read_all(TOPICS.name("dlq")) for row in b.columns.to_pylist()]
    assert len(rows) == 1 and rows[0]["dataset"] == "day-1"  # the slice is too short for line 900
