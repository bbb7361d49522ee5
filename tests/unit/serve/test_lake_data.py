"""Which dataset is read when a request names none: the one written last."""

from __future__ import annotations

import numpy as np

from marketpulse.feeds import Simulator
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.serve import LakeData
from marketpulse.stream import ProcessorSettings

from .conftest import START_NS


def _write(root, dataset: str, seed: int, start_ns: int = START_NS) -> None:
    feed = Simulator(symbols=2, rate=50.0, seed=seed, start_ts=start_ns, realtime=False,
                     max_events=1_000)  # fmt: skip
    options = RunnerOptions(lake=str(root), processor=ProcessorSettings(intervals=("1s",)),
                              dataset=dataset)  # fmt: skip
    EmbeddedPipeline(feed, options).run()


def test_the_default_dataset_is_the_one_written_last_not_the_newest_in_time(tmp_path):
    lake = LakeData(tmp_path)
    assert lake.default_dataset() is None and lake.datasets() == []
    _write(tmp_path, "later-times", seed=1, start_ns=START_NS + 86_400 * 10**9)
    _write(tmp_path, "earlier-times", seed=2)
    assert lake.names() == {"later-times", "earlier-times"}
    assert lake.default_dataset() == "earlier-times"  # written last, though its bars are older
    _write(tmp_path, "later-times", seed=3, start_ns=START_NS + 2 * 86_400 * 10**9)
    assert lake.default_dataset() == "later-times"  # written again: now the latest
    listed = {d["dataset"]: d for d in lake.datasets()}
    written = {name: np.datetime64(d["written"].rstrip("Z"), "ns") for name, d in listed.items()}
    assert written["later-times"] > written["earlier-times"]
    # a dataset without bars (only trades, say) is not charted: it is not the default
    (tmp_path / "trades" / "dataset=no-bars" / "period=2024-03-05").mkdir(parents=True)
    assert lake.names() == {"later-times", "earlier-times", "no-bars"}
    assert lake.default_dataset() == "later-times"
    assert {d["dataset"]: d["bars"] for d in lake.datasets()}["no-bars"] == 0
    lake.close()


def test_close_interrupts_a_query_that_keeps_the_connection_and_never_hangs(tmp_path, caplog):
    import threading
    import time

    (tmp_path / "bars").mkdir()
    lake = LakeData(tmp_path)
    lake._query("SELECT 1")  # the connection is open
    interrupted = []
    lake._lake.interrupt = lambda: interrupted.append(True)  # type: ignore[union-attr]
    held, release = threading.Event(), threading.Event()

    def query_that_never_ends() -> None:
        with lake._lock:
            held.set()
            release.wait(10)

    worker = threading.Thread(target=query_that_never_ends)
    worker.start()
    held.wait(5)
    started = time.monotonic()
    lake.close(timeout=0.2)
    took = time.monotonic() - started
    release.set()
    worker.join(5)
    assert interrupted == [True]  # the running query was interrupted first
    assert took < 5  # then the stop went on without it
    assert "a query still runs" in caplog.text
