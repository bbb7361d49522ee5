import threading
import time

import pyarrow as pa

from marketpulse.feeds.base import FeedBatch
from marketpulse.pipeline.pacing import paced

S = 1_000_000_000


def _batch(ts, done):
    data = pa.record_batch({"ts": pa.array(ts, pa.int64())})
    return FeedBatch("trade", data, [], done, 100)


def test_speed_paces_by_event_time_and_progress_follows_the_rows():
    batches = [_batch([0, S // 2, S], 50), _batch([2 * S, 3 * S], 100)]
    start = time.monotonic()
    out = list(paced(iter(batches), speed=10.0, stop=threading.Event()))
    elapsed = time.monotonic() - start
    assert elapsed >= 0.3 * 0.95  # 3 s of event time at 10x
    assert elapsed < 5
    rows = [ts for b in out for ts in b.data.column("ts").to_pylist()]
    assert rows == [0, S // 2, S, 2 * S, 3 * S]
    dones = [b.done for b in out]
    assert dones == sorted(dones) and dones[-1] == 100 and dones[0] < 50


def test_stop_interrupts_the_wait():
    stop = threading.Event()
    stop.set()
    out = list(paced(iter([_batch([0, 100 * S], 1)]), speed=1.0, stop=stop))
    assert [b.data.num_rows for b in out] == [1]
