import pyarrow as pa

from marketpulse.bus import MemoryBus, TopicPartition, partition_for


def _batch(symbols):
    return pa.record_batch({"symbol": symbols, "x": list(range(len(symbols)))})


def test_offsets_poll_commit_and_resume():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], partitions=1)
    producer = bus.producer()
    producer.send_columns("t", "trade", _batch(["A", "B", "C"]))
    producer.send_columns("t", "trade", _batch(["D"]))
    consumer = bus.consumer("g", ["t"])
    batches = consumer.poll(max_records=2)
    assert [(b.first_offset, b.last_offset) for b in batches] == [(0, 1)]
    consumer.commit({TopicPartition("t", 0): 2})
    consumer.close()  # a member of the group holds the partition until it leaves
    again = bus.consumer("g", ["t"]).poll()
    # consecutive appends of one kind come back as one batch
    assert [(b.first_offset, b.last_offset) for b in again] == [(2, 3)]
    assert again[0].columns.column("symbol").to_pylist() == ["C", "D"]


def test_rows_go_to_the_partition_of_their_key():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], partitions=4)
    symbols = ["AAPL", "MSFT", "SPY", "IBM", "AAPL", "BAC"]
    bus.producer().send_columns("t", "trade", _batch(symbols))
    seen = {}
    for batch in bus.read_all("t"):
        for symbol in batch.columns.column("symbol").to_pylist():
            seen.setdefault(symbol, set()).add(batch.partition)
    assert all(parts == {partition_for(s, 4)} for s, parts in seen.items())
    assert sum(bus.end_offsets("t")) == len(symbols)


def test_murmur2_matches_the_java_client():
    # values of org.apache.kafka.common.utils.Utils.murmur2 for these keys, as
    # published in the Kafka client's own tests (UtilsTest.testMurmur2)
    from marketpulse.bus.base import _murmur2

    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, expected in cases.items():
        assert _murmur2(key) == expected & 0xFFFFFFFF


def test_committed_segments_are_dropped():
    bus = MemoryBus()
    bus.create_topics(["t"])
    bus.producer().send_columns("t", "trade", _batch(["A"] * 10))
    consumer = bus.consumer("g", ["t"])
    consumer.poll()
    consumer.commit(consumer.position())
    assert bus.read_all("t") == []
    assert consumer.lag() == {TopicPartition("t", 0): 0}


def test_batches_of_different_kinds_stay_apart():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"])
    producer = bus.producer()
    producer.send_columns("t", "trade", _batch(["A"]))
    producer.send_columns("t", "bar", _batch(["B"]))
    producer.send_columns("t", "trade", _batch(["C", "D"]))
    batches = bus.consumer("g", ["t"]).poll()
    assert [(b.kind, b.first_offset, b.last_offset) for b in batches] == [
        ("trade", 0, 0),
        ("bar", 1, 1),
        ("trade", 2, 3),
    ]


def _pooled_batch(rows, start):
    # built from Python lists: the buffers come from Arrow's memory pool, so that
    # pa.total_allocated_bytes() sees them (numpy-backed arrays would not count)
    return pa.record_batch(
        {
            "symbol": pa.array([f"S{i % 7}" for i in range(start, start + rows)]),
            "x": pa.array(list(range(start, start + rows)), pa.int64()),
        }
    )


def test_consumed_buffers_are_released_after_many_cycles():
    bus = MemoryBus()
    bus.create_topics(["t"])
    producer = bus.producer()
    consumer = bus.consumer("g", ["t"])
    rows, cycles = 1000, 200
    baseline = pa.total_allocated_bytes()
    for cycle in range(cycles):
        producer.send_columns("t", "trade", _pooled_batch(rows, cycle * rows))
        (batch,) = consumer.poll()
        assert batch.columns.column("x")[0].as_py() == cycle * rows
        del batch
        consumer.commit(consumer.position())
    published = rows * cycles * 8  # the int64 column alone, of every batch published
    assert bus.end_offsets("t") == [rows * cycles]
    assert bus.retained("t") == (0, 0)
    # no buffer of a consumed batch stays alive (an empty slice would hold its parent's)
    assert pa.total_allocated_bytes() - baseline < published // 100


def test_a_segment_is_held_until_every_reading_group_commits_past_it():
    bus = MemoryBus()
    bus.create_topics(["t"])
    producer = bus.producer()
    fast, slow = bus.consumer("fast", ["t"]), bus.consumer("slow", ["t"])
    for start in range(0, 30, 10):
        producer.send_columns("t", "trade", _pooled_batch(10, start))
    fast.poll()
    fast.commit(fast.position())
    assert bus.retained("t")[0] == 3
    (first,) = slow.poll(max_records=15)
    slow.commit(slow.position())  # offset 15: only the first segment is wholly behind
    assert bus.retained("t")[0] == 2
    assert first.last_offset == 14
    (rest,) = slow.poll()
    assert rest.columns.column("x").to_pylist() == list(range(15, 30))
    slow.commit(slow.position())
    assert bus.retained("t") == (0, 0)


def test_end_and_committed_offsets_are_read_without_joining_the_group():
    bus = MemoryBus(retain=True)
    bus.create_topics(["t"], partitions=2)
    bus.producer().send_columns("t", "trade", _batch(["A", "B", "C"]))
    ends = bus.end_offsets("t")
    assert sum(ends) == 3
    assert bus.committed_offsets("g", "t") == [-1, -1]
    consumer = bus.consumer("g", ["t"])
    consumer.poll()
    consumer.commit({TopicPartition("t", p): n for p, n in enumerate(ends)})
    assert bus.committed_offsets("g", "t") == ends
