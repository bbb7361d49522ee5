"""The process service on the in-memory bus: the same outputs as the processor fed directly.

Simulated ticks of ten symbols go to a :class:`MemoryBus` ``ticks`` topic of
three partitions (keyed by symbol, as on Kafka), then the first ticks of each
partition again, late by then (dead letters, and kept as trades). The
:class:`ProcessService` consumes them in a consumer group and commits its
outputs, its state and the consumed offsets in the memory bus's transactions.
What the output topics hold once it is idle must be what a :class:`Processor`
makes of the same records fed to it directly, partition by partition: once,
even when an instance crashes with a transaction open, loses its partitions
(:meth:`MemoryBus.lose`), or shares them with a second instance that joins.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pyarrow as pa
import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import MemoryBus, TopicPartition, memory
from marketpulse.bus.base import TransactionAborted
from marketpulse.bus.topics import TOPICS as SHORT_NAMES
from marketpulse.bus.topics import Topics
from marketpulse.feeds import Simulator
from marketpulse.runtime.outputs import OutputCounts
from marketpulse.runtime.process import ProcessService
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.output import alerts_table

from .conftest import process_options

S = 10**9
START = 1_381_152_600 * S + 123_456_789  # 2013-10-07 09:30 New York
TOPICS = Topics("m.")
PARTITIONS = 3
#: The outputs compared, with the columns that tell their rows apart.
COMPARED = ("bars", "indicators", "trades", "alerts", "dlq")
#: Dead letters get their ``ts`` when sent: compared without it.
DLQ_COLUMNS = ("reason", "key", "source_topic", "source_partition", "source_offset")


def settings() -> ProcessorSettings:
    # no closing by processing time: the outputs depend on the input alone
    return ProcessorSettings(intervals=("1s", "1m"), idle_timeout=None)


def processor() -> Processor:
    return Processor(settings(), default_rules())


def loaded_bus() -> MemoryBus:
    """Every topic with three partitions; 30 s of ticks on ``ticks``, then late ones."""
    bus = MemoryBus(retain=True)
    bus.create_topics([TOPICS.name(short) for short in SHORT_NAMES], PARTITIONS)
    feed = Simulator(
        symbols=10, rate=4000, seed=3, start_ts=START, realtime=False, intraday=False,
        max_events=4000 * 30, news_every=5,
    )  # fmt: skip
    producer = bus.producer()
    first = None
    for item in feed.batches():
        first = first or item.data
        producer.send_columns(TOPICS.ticks, item.kind, item.data)
    producer.send_columns(TOPICS.ticks, "trade", first.slice(0, 60))  # behind the watermark
    return bus


def rows(table: pa.Table, short: str) -> list[tuple[Any, ...]]:
    if short == "dlq":
        table = table.select(list(DLQ_COLUMNS))
    return [_frozen(row) for row in table.to_pylist()]


def _frozen(value: Any) -> Any:
    """``value`` hashable: dicts and lists (an alert's ``details``) as sorted tuples."""
    if isinstance(value, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(sorted(map(_frozen, value), key=repr))
    return value


def reference(bus: MemoryBus) -> dict[str, Counter]:
    """The rows a processor makes of each ``ticks`` partition, fed its batches directly."""
    direct = processor()
    made: dict[str, Counter] = {short: Counter() for short in COMPARED}
    for batch in bus.read_all(TOPICS.ticks):
        out = direct.process(batch)
        tables = {"bars": [out.bars], "indicators": [out.indicators], "trades": out.trades,
                  "alerts": [alerts_table(out.alerts)]}  # fmt: skip
        for short, data in tables.items():
            for table in data:
                made[short].update(rows(table, short))
        for letter in out.dead:
            made["dlq"][_letter_row(letter)] += 1
    return made


def _letter_row(letter: Any) -> tuple[Any, ...]:
    fields = {"reason": letter.reason, "key": letter.key, "source_topic": letter.topic,
              "source_partition": letter.partition, "source_offset": letter.offset}  # fmt: skip
    return _frozen(fields)


def committed(bus: MemoryBus) -> dict[str, Counter]:
    """The rows the output topics hold (committed transactions only, on this bus)."""
    held: dict[str, Counter] = {short: Counter() for short in COMPARED}
    for short in COMPARED:
        for batch in bus.read_all(TOPICS.name(short)):
            assert batch.columns is not None
            held[short].update(rows(pa.table(batch.columns), short))
    return held


@pytest.fixture(scope="module")
def expected() -> dict[str, Counter]:
    made = reference(loaded_bus())
    # every output has rows, so that each comparison compares something
    assert all(made[short] for short in COMPARED), {s: len(c) for s, c in made.items()}
    return made


def service(bus: MemoryBus, instance: str, **options: Any) -> ProcessService:
    opts = process_options(instance=instance, exit_when_idle=0.5, **options)
    return ProcessService(bus, TOPICS, processor(), opts)


def assert_same(bus: MemoryBus, expected: dict[str, Counter]) -> None:
    held = committed(bus)
    for short in COMPARED:
        duplicates = +(held[short] - expected[short])
        missing = +(expected[short] - held[short])
        assert not duplicates and not missing, (short, len(duplicates), len(missing))


def test_the_service_commits_what_the_processor_makes_of_the_same_ticks(expected):
    bus = loaded_bus()
    stats = service(bus, "one").run()

    assert_same(bus, expected)
    assert stats.records == sum(bus.end_offsets(TOPICS.ticks))
    assert stats.transactions >= 1
    # the state of every partition went to ``state``, where a restore reads it
    assert all(bus.read_partition(TOPICS.state, p) for p in range(PARTITIONS))
    # and the group's offsets are the ends of the ticks partitions
    consumer = bus.consumer("marketpulse-process", [TOPICS.ticks])
    tps = [TopicPartition(TOPICS.ticks, p) for p in range(PARTITIONS)]
    ends = bus.end_offsets(TOPICS.ticks)
    assert consumer.committed(tps) == dict(zip(tps, ends, strict=True))


class Crash(Exception):
    pass


def test_an_instance_taking_over_from_a_crashed_one_redoes_its_open_transaction_once(expected):
    bus = loaded_bus()
    seen = []

    def crash(out, batch):
        seen.append(out)
        if len(seen) == 40:
            raise Crash("killed mid-transaction")

    # small polls, each committed: the crash comes after some commits, one open
    first = service(bus, "one", max_batch=1000, commit_interval=0.0)
    first.on_output = crash
    with pytest.raises(Crash):
        first.run()
    assert first.stats.transactions >= 2
    partial = committed(bus)
    assert 0 < sum(partial["bars"].values()) < sum(expected["bars"].values())

    second = service(bus, "two")
    second.run()

    assert second.stats.restored == PARTITIONS
    assert_same(bus, expected)


def test_partitions_lost_and_shared_with_a_second_instance_are_processed_once(expected):
    bus = loaded_bus()
    errors: list[BaseException] = []
    first = service(bus, "one", max_batch=1000, commit_interval=0.0)
    second = service(bus, "two", max_batch=1000, commit_interval=0.0)

    def run(instance: ProcessService) -> None:
        try:
            instance.run()
        except BaseException as exc:  # noqa: BLE001 - asserted by the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in (first, second)]
    outputs = 0

    def on_output(out, batch):
        nonlocal outputs
        outputs += 1
        if outputs == 20:  # a second member joins: the first revokes some partitions
            threads[1].start()
        if outputs == 60:  # then the first misses its session: what it held is lost
            bus.lose(first._consumer)

    first.on_output = on_output
    threads[0].start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()

    assert not errors, errors
    assert outputs >= 60
    assert first.stats.restored + second.stats.restored > PARTITIONS  # partitions moved
    assert_same(bus, expected)


def test_an_aborted_transactions_outputs_are_counted_once_when_redone(expected, monkeypatch):
    """The service's figures count what its commits made visible: the outputs of an aborted
    transaction are made again after the rewind, and counted then, not twice."""
    bus = loaded_bus()
    commit = memory._MemoryTransactionalProducer.commit
    calls = 0

    def abort_the_third(producer, offsets, consumer, timeout=60.0, meanwhile=None):
        nonlocal calls
        calls += 1
        if calls == 3:  # its outputs are sent: the broker aborts it
            producer._pending = None
            raise TransactionAborted("aborted by the test")
        commit(producer, offsets, consumer, timeout, meanwhile)

    monkeypatch.setattr(memory._MemoryTransactionalProducer, "commit", abort_the_third)
    counted: list[OutputCounts] = []
    instance = service(bus, "one", max_batch=1000, commit_interval=0.0)
    instance.on_commit = counted.append
    stats = instance.run()

    assert stats.aborted == 1  # the abort happened, and the work was redone
    assert_same(bus, expected)
    held = committed(bus)
    assert stats.bars == sum(held["bars"].values()) == sum(c.bars for c in counted)
    assert stats.indicators == sum(held["indicators"].values())
    assert stats.alerts == sum(held["alerts"].values()) == sum(c.alerts for c in counted)
    assert stats.dead == sum(held["dlq"].values()) > 0
