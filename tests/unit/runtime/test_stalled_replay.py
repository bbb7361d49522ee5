"""A replay at full speed gives the same bars however its feed is delayed."""

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from marketpulse.bus.base import partition_for
from marketpulse.feeds.base import FeedBatch
from marketpulse.models import TRADE_SCHEMA
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.stream.processor import ProcessorSettings

S = 1_000_000_000
T0 = 1_381_150_800 * S  # 2013-10-07 13:00 UTC


def _trades(symbol: str, second: int) -> pa.RecordBatch:
    """100 trades of ``symbol`` in one second of event time, 10 ms apart."""
    ts = T0 + second * S + np.arange(100, dtype=np.int64) * (S // 100)
    return pa.record_batch(
        [pa.array([symbol] * 100).dictionary_encode(), ts, 100 + np.arange(100) / 100,
         np.full(100, 100.0), pa.array(["P"] * 100), pa.nulls(100, pa.string()),
         pa.nulls(100, pa.string())],
        schema=TRADE_SCHEMA,
    )  # fmt: skip


class _StallingReplay:
    """Two symbols in two partitions, one second per batch. Before second 3 the
    feed stalls (a loaded machine), and that second's AIG trades come after
    its SPY trades have been processed alone: AIG's partition is quiet a while."""

    name = "stalling.csv"
    realtime = False  # a file read as fast as it can be

    def __init__(self, pause: float) -> None:
        self._pause = pause

    def batches(self):
        for second in range(6):
            if second == 3:
                time.sleep(self._pause)
                yield FeedBatch("trade", _trades("SPY", second))
                time.sleep(self._pause / 3)
                yield FeedBatch("trade", _trades("AIG", second))
                continue
            both = pa.Table.from_batches([_trades("SPY", second), _trades("AIG", second)])
            yield FeedBatch("trade", both.sort_by("ts").combine_chunks().to_batches()[0])

    def close(self) -> None:
        pass


def _replay(lake: Path, pause: float):
    settings = ProcessorSettings(lateness=0.0, idle_timeout=0.05)
    options = RunnerOptions(lake=str(lake), processor=settings, partitions=2)
    snap = EmbeddedPipeline(_StallingReplay(pause), options).run()
    bars = pq.read_table(lake / "bars")
    bars = bars.sort_by([("symbol", "ascending"), ("bar_start", "ascending")])
    return snap, bars.drop_columns(["period"])


def test_quiet_spells_of_a_full_speed_replay_close_no_window_by_the_clock(tmp_path):
    assert partition_for("AIG", 2) != partition_for("SPY", 2)
    # AIG's partition is quiet for about 2 s: were its windows closed by the
    # clock, its 1s window of second 3 would close and those trades be late
    stalled, stalled_bars = _replay(tmp_path / "stalled", pause=2.0)
    smooth, smooth_bars = _replay(tmp_path / "smooth", pause=0.0)
    assert stalled.ticks_in == smooth.ticks_in == 1_200
    assert stalled.dlq == smooth.dlq == 0
    assert stalled_bars.num_rows == smooth_bars.num_rows > 12
    assert stalled_bars.equals(smooth_bars)
