"""The final summary of a run: its rate is the pipeline's, from when it was ready."""

from __future__ import annotations

import marketpulse.runtime.metrics as metrics_module
from marketpulse.runtime import Metrics
from marketpulse.testing import ManualClock


def test_the_clock_starts_when_the_pipeline_is_ready(monkeypatch):
    clock = ManualClock(1000.0)
    monkeypatch.setattr(metrics_module.time, "monotonic", clock)
    metrics = Metrics()
    clock.now += 8.8  # the kernels load (compiled on a first run)
    metrics.start_clock()
    metrics.add(ticks=1_250_000, bars=3, indicators=3)
    clock.now += 20.0
    snap = metrics.snapshot()
    assert snap.elapsed == 20.0
    summary = snap.summary(read_bytes=12_345_678, lake_written=(1_021, 269_123_456))
    assert summary.startswith("done: ticks in 1,250,000 (12.3 MB read), bars 3,")
    assert summary.endswith(", lake files 1,021 (269.1 MB), 62,500 ticks/s over 20.0 s")
    assert "(" not in snap.summary().split(",")[0]  # no bytes when nothing was read


def test_the_rate_runs_from_the_first_tick_not_from_the_kernels_compiling(monkeypatch):
    clock = ManualClock(1000.0)
    monkeypatch.setattr(metrics_module.time, "monotonic", clock)
    metrics = Metrics()
    metrics.start_clock()
    clock.now += 25.0  # a first run compiles its kernels: no tick yet
    metrics.add(bars=0)
    metrics.add(ticks=5_000)
    clock.now += 10.0
    metrics.add(ticks=45_000)
    snap = metrics.snapshot()
    assert snap.elapsed == 10.0
    assert snap.summary().endswith(", 5,000 ticks/s over 10.0 s")
