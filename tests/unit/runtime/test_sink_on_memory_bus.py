"""The sink service on the embedded bus: the lake gets every row sent, once.

Output rows are what :class:`~marketpulse.stream.Processor` makes of some
simulated ticks (bars, indicators, alerts, the dead letters of late ticks,
the trades it kept), appended as Arrow columns to a :class:`MemoryBus`'s
output topics, as the embedded pipeline appends them. The service writes
them as they are (no decoding), and commits after the lake made them durable.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch, MemoryBus
from marketpulse.bus.topics import OUTPUT_TOPICS, Topics
from marketpulse.feeds import Simulator
from marketpulse.runtime.sink import SinkOptions, SinkService
from marketpulse.sinks import TABLES, LakeSink
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.output import Output, alerts_table, dlq_table

S = 10**9
START = 1_381_152_600 * S + 123_456_789  # 2013-10-07 09:30 New York
TOPICS = Topics("m.")
STORED = (*OUTPUT_TOPICS, "trades")  # the processor's outputs, and the trades it kept
DATASET = "sim"


def outputs() -> list[Output]:
    """What the processor makes of 40 s of a simulated market, then of 100 late ticks."""
    feed = Simulator(
        symbols=10, rate=5000, seed=1, start_ts=START, realtime=False, intraday=False,
        max_events=5000 * 40, news_every=5,
    )  # fmt: skip
    processor = Processor(ProcessorSettings(intervals=("1s", "1m")), default_rules())
    out, offset, first = [], 0, None
    for item in feed.batches():
        n = item.data.num_rows
        first = first or item.data
        out.append(
            processor.process(Batch("ticks", 0, offset, offset + n - 1, item.kind, item.data))
        )
        offset += n
    late = first.slice(0, 100)  # behind the watermark by now: dead letters, kept as trades
    out.append(processor.process(Batch("ticks", 0, offset, offset + 99, "trade", late)))
    out.append(processor.finish())
    return out


def tables_of(out: Output) -> dict[str, list[pa.Table | pa.RecordBatch]]:
    """The rows of one output per table, as the embedded pipeline sends them."""
    tables: dict[str, list[pa.Table | pa.RecordBatch]] = {
        "bars": [out.bars], "indicators": [out.indicators], "trades": list(out.trades),
        "alerts": [alerts_table(out.alerts, DATASET)] if out.alerts else [],
        "dlq": [dlq_table(out.dead, START, DATASET)] if out.dead else [],
    }  # fmt: skip
    return {t: [d for d in data if d.num_rows] for t, data in tables.items()}


@pytest.fixture(scope="module")
def sent() -> list[dict[str, list[pa.Table | pa.RecordBatch]]]:
    produced = [tables_of(out) for out in outputs()]
    counts = Counter({t: sum(d.num_rows for o in produced for d in o[t]) for t in STORED})
    # every table has rows, so that the comparison below compares something
    assert all(counts[t] > 0 for t in STORED), counts
    return produced


def bus_with_topics(partitions: int) -> MemoryBus:
    bus = MemoryBus()
    bus.create_topics([TOPICS.name(t) for t in STORED], partitions)  # no custom topic: skipped
    return bus


def publish(bus: MemoryBus, produced: list[dict[str, list[pa.Table | pa.RecordBatch]]]) -> None:
    producer = bus.producer()
    for tables in produced:
        for table, data in tables.items():
            for rows in data:
                producer.send_columns(TOPICS.name(table), table, rows)


def _plain(value: object) -> object:
    """A row value one can count: lists (maps) as tuples, NaN as text."""
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return value


def counted(table: str, data: list[pa.Table | pa.RecordBatch]) -> Counter:
    """The rows of ``data`` in the table's row schema (times as int64 ns), counted."""
    schema = TABLES[table]
    total: Counter = Counter()
    for part in data:
        columns = []
        for field in schema:
            if field.name not in part.schema.names:  # bars without quotes: null quote columns
                columns.append(pa.nulls(part.num_rows, field.type))
                continue
            column = part.column(field.name)
            if pa.types.is_timestamp(column.type):  # the lake's times
                column = column.cast(pa.int64())
            columns.append(column.cast(field.type))
        rows = pa.table(columns, schema=schema).to_pylist()
        total.update(tuple(_plain(v) for v in row.values()) for row in rows)
    return total


def expected(produced: list[dict[str, list[pa.Table | pa.RecordBatch]]], table: str) -> Counter:
    return counted(table, [d for tables in produced for d in tables[table]])


def in_lake(root: Path, table: str) -> Counter:
    """The rows of ``table`` in the lake, its partition columns read from the paths."""
    partitioning = ds.HivePartitioning.discover(infer_dictionary=False)
    dataset = ds.dataset(str(root / table), format="parquet", partitioning=partitioning)
    return counted(table, [dataset.to_table()])


def test_the_lake_gets_every_row_sent_on_the_memory_bus(tmp_path, sent):
    bus = bus_with_topics(partitions=3)
    publish(bus, sent)
    lake = tmp_path / "lake"
    options = SinkOptions(group="sink-lake", exit_when_idle=0.3)
    stats = SinkService(bus, TOPICS, LakeSink(lake), options).run()

    for table in STORED:
        assert in_lake(lake, table) == expected(sent, table), table
    assert not (lake / "custom").exists()
    assert stats.rows == {t: sum(expected(sent, t).values()) for t in STORED}
    assert stats.undecodable == 0 and stats.commits >= 1
    # everything committed: a new member of the group finds nothing left to read
    reader = bus.consumer("sink-lake", [TOPICS.name(t) for t in STORED])
    assert reader.poll() == [] and all(n == 0 for n in reader.lag().values())


def test_a_second_sink_run_on_a_new_memory_bus_adds_its_rows(tmp_path, sent):
    # the embedded bus's offsets start at 0 again: files must not be named by them,
    # or the second run's would be taken for the first's and skipped
    lake = tmp_path / "lake"
    for _ in range(2):
        bus = bus_with_topics(partitions=1)
        publish(bus, sent[:5])
        SinkService(bus, TOPICS, LakeSink(lake), SinkOptions(exit_when_idle=0.2)).run()
    twice = expected(sent[:5], "bars")
    assert in_lake(lake, "bars") == twice + twice


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return False


def test_a_member_joining_takes_partitions_the_first_flushed_and_committed(tmp_path, sent):
    bus = bus_with_topics(partitions=2)
    lake = tmp_path / "lake"
    half = len(sent) // 2
    publish(bus, sent[:half])
    first_half = sum(d.num_rows for o in sent[:half] for data in o.values() for d in data)
    options = SinkOptions(group="sink-lake")
    # no flush by size or age: rows become durable (and offsets committed) only when
    # partitions leave a member and when it stops
    first = SinkService(bus, TOPICS, LakeSink(lake, max_age_s=3600), options)
    second = SinkService(bus, TOPICS, LakeSink(lake, max_age_s=3600), options)
    revoked: list = []
    on_revoke = first._revoked
    first._revoked = lambda partitions: (revoked.extend(partitions), on_revoke(partitions))
    threads = [threading.Thread(target=s.run) for s in (first, second)]
    threads[0].start()
    try:
        assert wait_until(lambda: first.stats.records == first_half), first.stats
        assert first.stats.commits == 0  # nothing durable yet
        threads[1].start()
        # the second member joins: the first revokes one of the two partitions of each
        # topic, flushing and committing, and the second reads them from there
        assert wait_until(lambda: len(second._consumer.assignment()) == len(STORED) if
                          second._consumer else False)  # fmt: skip
        assert sorted({tp.topic for tp in revoked}) == sorted(TOPICS.name(t) for t in STORED)
        assert first.stats.commits == 1 and second.stats.records == 0
        publish(bus, sent[half:])
        total = sum(d.num_rows for o in sent for data in o.values() for d in data)
        assert wait_until(lambda: first.stats.records + second.stats.records == total)
    finally:
        for service in (first, second):
            service.stop.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert second.stats.records > 0  # the second member stored part of the second half
    for table in STORED:
        assert in_lake(lake, table) == expected(sent, table), table
