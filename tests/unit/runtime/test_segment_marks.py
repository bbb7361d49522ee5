"""A replay's segment marks on the in-memory bus: a segment ends once it ended everywhere."""

from __future__ import annotations

import threading

import pyarrow as pa

from marketpulse.bus import MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.runtime.segments import MARK_KIND, begin_mark, end_mark, source_end_mark
from marketpulse.runtime.sink import SinkOptions, SinkService
from marketpulse.sinks import InputSegment

TOPICS = Topics("m.")
ORIGIN = "0123456789abcdef"


class Recording:
    """A sink that records what it is told, in order."""

    name = "rec"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def write(self, table, rows, source=None) -> None:
        self.calls.append(("write", table, rows.num_rows, source))

    def end_segment(self, origin, first, last) -> None:
        self.calls.append(("end_segment", first, last))

    def end_source(self, origin) -> None:
        self.calls.append(("end_source",))

    def due(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def bars(n: int) -> pa.Table:
    return pa.table({"symbol": ["A"] * n, "close": [1.0] * n})


def test_rows_go_under_their_segment_and_it_ends_once_every_partition_ended_it():
    bus = MemoryBus()
    names = [TOPICS.name(t) for t in ("bars", "indicators", "alerts", "dlq")]
    bus.create_topics(names, 2)
    sink = Recording()
    service = SinkService(bus, TOPICS, sink, SinkOptions(group="s", origin=ORIGIN),
                          threading.Event())  # fmt: skip
    out = bus.producer()
    for name in names:  # every partition: segment 1 begins
        for p in (0, 1):
            out.send_rows(name, MARK_KIND, begin_mark(1), p)
    out.send_rows(TOPICS.name("bars"), "bars", bars(3), 0)
    out.send_rows(TOPICS.name("bars"), "bars", bars(2), 1)
    for name in names:  # partition 0 ends segment 1 everywhere; partition 1 not yet
        out.send_rows(name, MARK_KIND, end_mark(1, 10), 0)
    thread = threading.Thread(target=service.run)
    thread.start()
    try:
        deadline = threading.Event()
        while not service.caught_up() and not deadline.wait(0.01):
            pass
        writes = [c for c in sink.calls if c[0] == "write"]
        assert sorted(c[2] for c in writes) == [2, 3]
        assert all(c[3] == InputSegment(ORIGIN, 1) for c in writes)
        assert not [c for c in sink.calls if c[0] != "write"]  # partition 1 has not ended it
        for name in names:
            out.send_rows(name, MARK_KIND, source_end_mark(), 1)  # the input ends,
        for name in names:
            out.send_rows(name, MARK_KIND, source_end_mark(), 0)
        for name in names:  # then its last segment, on partition 1 too
            out.send_rows(name, MARK_KIND, end_mark(1, 10), 1)
        while ("end_source",) not in sink.calls and not deadline.wait(0.01):
            pass
    finally:
        service.stop.set()
        thread.join(10)
    assert [c for c in sink.calls if c[0] != "write"] == [("end_segment", 1, 10), ("end_source",)]
