import threading

import pyarrow as pa
import pytest

from marketpulse.feeds.base import FeedBatch
from marketpulse.runtime.pacing import paced

S = 1_000_000_000


def _batch(ts, done):
    data = pa.record_batch({"ts": pa.array(ts, pa.int64())})
    return FeedBatch("trade", data, [], done, 100)


class FakeTime:
    """A wall clock that moves only when paced() waits on it (its ``stop.wait``)."""

    def __init__(self):
        self.now = 100.0
        self.waits = []

    def clock(self):
        return self.now

    def is_set(self):
        return False

    def wait(self, seconds):
        self.waits.append(seconds)
        self.now += seconds
        return False  # not stopped


def test_speed_paces_by_event_time_and_progress_follows_the_rows():
    batches = [_batch([0, S // 2, S], 50), _batch([2 * S, 3 * S], 100)]
    fake = FakeTime()
    out = []
    for batch in paced(iter(batches), speed=10.0, stop=fake, clock=fake.clock):
        out.append((fake.now - 100.0, batch))
    # each row goes out no sooner than its event time / 10 after the first, and on time
    for sent_at, batch in out:
        first = batch.data.column("ts")[0].as_py()
        assert sent_at == pytest.approx(first / S / 10)
    assert sum(fake.waits) == pytest.approx(0.3)  # 3 s of event time at 10x
    rows = [ts for _, b in out for ts in b.data.column("ts").to_pylist()]
    assert rows == [0, S // 2, S, 2 * S, 3 * S]
    dones = [b.done for _, b in out]
    assert dones == sorted(dones) and dones[-1] == 100 and dones[0] < 50


def test_without_speed_nothing_waits():
    fake = FakeTime()
    batches = [_batch([0, S], 1), _batch([10 * S], 2)]
    out = list(paced(iter(batches), speed=None, stop=fake, clock=fake.clock))
    assert out == batches and fake.waits == []


def test_stop_interrupts_the_wait():
    stop = threading.Event()
    stop.set()
    out = list(paced(iter([_batch([0, 100 * S], 1)]), speed=1.0, stop=stop))
    assert [b.data.num_rows for b in out] == [1]
