"""Stopping the in-memory pipeline: a stage that is slow but reading is waited for.

The feed of a finite replay is produced long before a slow processor has read
it. :meth:`Runner._drain` lets a stage catch up however long that takes while
it keeps reading, and gives up (with a warning naming what is left) only on
one that reads nothing for ``drain_timeout`` seconds.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest

from marketpulse.bus import MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.config import ProcessSettings
from marketpulse.feeds import Simulator
from marketpulse.runtime import runner as runner_module
from marketpulse.runtime.runner import PipelineIncomplete, Runner, RunnerOptions
from marketpulse.stream import Processor, ProcessorSettings

S = 10**9
START = 1_381_152_600 * S  # 2013-10-07 09:30 New York
DRAIN_TIMEOUT = 0.5


def feed() -> Simulator:
    return Simulator(symbols=5, rate=500, seed=3, start_ts=START, realtime=False,
                     intraday=False, max_events=6000)  # fmt: skip


def run(tmp_path, processor_class: type[Processor], name: str, bus_class=MemoryBus):
    options = RunnerOptions(
        lake=str(tmp_path / name),
        processor=ProcessorSettings(intervals=("1s",), idle_timeout=None),
        partitions=2, drain_timeout=DRAIN_TIMEOUT, process=ProcessSettings(max_batch=200),
    )  # fmt: skip
    original = runner_module.Processor
    runner_module.Processor = processor_class
    try:
        return Runner(bus_class(), Topics(f"{name}."), feed(), options).run()
    finally:
        runner_module.Processor = original


class SlowProcessor(Processor):
    """Takes 40 ms a poll: the 6,000 ticks (30 polls at least) take over 1.2 s."""

    calls: list[float] = []

    def process_each(self, batches):
        SlowProcessor.calls.append(time.monotonic())
        time.sleep(0.04)
        return super().process_each(batches)


def test_a_slow_processor_is_waited_for_past_the_drain_timeout(tmp_path):
    quick = run(tmp_path, Processor, "quick")
    SlowProcessor.calls.clear()
    slow = run(tmp_path, SlowProcessor, "slow")
    # the fault: it read for longer than the drain timeout, well after the feed ended
    assert SlowProcessor.calls[-1] - SlowProcessor.calls[0] > 2 * DRAIN_TIMEOUT
    assert quick.bars > 0 and quick.ticks_in == 6000
    assert (slow.ticks_in, slow.bars, slow.indicator_rows) == (
        quick.ticks_in, quick.bars, quick.indicator_rows,
    )  # fmt: skip


class StuckProcessor(Processor):
    """Stops reading after its first poll, until the service is told to stop."""

    release = threading.Event()

    def process_each(self, batches):
        StuckProcessor.release.wait(30)
        return super().process_each(batches)


def test_a_stage_that_reads_nothing_is_stopped_after_the_drain_timeout(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="marketpulse.runtime.runner")
    StuckProcessor.release.clear()
    timer = threading.Timer(5.0, StuckProcessor.release.set)  # unblocks the service's stop
    timer.start()
    started = time.monotonic()
    try:
        run(tmp_path, StuckProcessor, "stuck")
    finally:
        timer.cancel()
        StuckProcessor.release.set()
    warned = [r.getMessage() for r in caplog.records if "read nothing" in r.getMessage()]
    assert len(warned) == 1, warned
    left = re.search(r"with ([\d,]+) records left", warned[0])
    assert warned[0].startswith("pipeline stopping: process read nothing for"), warned
    assert left is not None and int(left[1].replace(",", "")) > 0, warned
    assert time.monotonic() - started < 30


class SlowWarmProcessor(Processor):
    """Takes 0.6 s to load its kernels; notes when it is done."""

    warm_at: list[float] = []

    def warm_up(self, columns=False):
        if not self._warm:
            time.sleep(0.6)
        super().warm_up(columns)
        SlowWarmProcessor.warm_at.append(time.monotonic())


class NotedFeed(Simulator):
    """A simulator noting when its stream was first asked for."""

    asked_at: list[float] = []

    def batches(self):
        NotedFeed.asked_at.append(time.monotonic())
        yield from super().batches()


def started_feed(tmp_path, name: str, realtime: bool) -> tuple[float, float]:
    """When the feed started and when the kernels were loaded, in a run of ``name``."""
    NotedFeed.asked_at.clear()
    SlowWarmProcessor.warm_at.clear()
    source = NotedFeed(symbols=5, rate=500, seed=3, realtime=realtime, intraday=False,
                       max_events=None if realtime else 2000)  # fmt: skip
    options = RunnerOptions(
        lake=str(tmp_path / name), processor=ProcessorSettings(intervals=("1s",)),
        partitions=2, duration=0.5 if realtime else None,
    )  # fmt: skip
    original = runner_module.Processor
    runner_module.Processor = SlowWarmProcessor
    try:
        Runner(MemoryBus(), Topics(f"{name}."), source, options).run()
    finally:
        runner_module.Processor = original
    return NotedFeed.asked_at[0], SlowWarmProcessor.warm_at[0]


def test_a_feed_on_the_wall_clock_starts_once_the_kernels_are_loaded(tmp_path):
    # its ticks would otherwise wait in the bus for the kernels and reach their bars late
    started, warm = started_feed(tmp_path, "clocked", realtime=True)
    assert started >= warm


def test_a_replay_at_full_speed_reads_ahead_while_the_kernels_load(tmp_path):
    started, warm = started_feed(tmp_path, "ahead", realtime=False)
    assert started < warm - 0.3


class OneThreadBus(MemoryBus):
    """A durable bus whose consumers serve one thread at a time, as Kafka's clients do.

    A call from another thread than the consumer's own waits (2 s here), as one
    to a Kafka client waits for its owner's poll; a stage polling without pause
    starved the pipeline's drain so for good.
    """

    durable = True
    foreign: list[str] = []

    def consumer(self, *args, **kwargs):
        consumer = super().consumer(*args, **kwargs)
        owner = threading.get_ident()
        for name in ("lag", "position", "assignment"):
            method = getattr(consumer, name)

            def guarded(*a, _method=method, _name=name, **kw):
                if threading.get_ident() != owner:
                    OneThreadBus.foreign.append(_name)
                    time.sleep(2)
                return _method(*a, **kw)

            setattr(consumer, name, guarded)
        return consumer


def test_the_drain_on_a_cluster_never_calls_a_stages_client_from_its_own_thread(tmp_path):
    OneThreadBus.foreign.clear()
    options = RunnerOptions(
        lake=str(tmp_path / "lake"), processor=ProcessorSettings(intervals=("1s",)),
        partitions=2, drain_timeout=30.0,
    )  # fmt: skip
    bus = OneThreadBus()
    out = Runner(bus, Topics("one."), feed(), options).run()
    assert OneThreadBus.foreign == []
    assert out.ticks_in == 6000 and out.bars > 0
    assert out.bars == run(tmp_path, Processor, "memory").bars  # the same as on the memory bus


class ClusterLikeBus(MemoryBus):
    """The in-memory bus taken for a cluster: the runner drains as on Kafka."""

    durable = True


def test_on_a_cluster_a_processor_behind_is_waited_for_to_the_end_of_ticks(tmp_path):
    quick = run(tmp_path, Processor, "quick")
    SlowProcessor.calls.clear()
    slow = run(tmp_path, SlowProcessor, "slow", ClusterLikeBus)
    # it was quiet for more than a second at no moment, but read for far longer than
    # the drain timeout after the feed ended: all of it was waited for
    assert SlowProcessor.calls[-1] - SlowProcessor.calls[0] > 2 * DRAIN_TIMEOUT
    assert (slow.ticks_in, slow.bars) == (quick.ticks_in, quick.bars)


def test_on_a_cluster_ticks_left_unprocessed_end_the_run_with_what_is_left(tmp_path):
    StuckProcessor.release.clear()
    timer = threading.Timer(5.0, StuckProcessor.release.set)
    timer.start()
    try:
        with pytest.raises(PipelineIncomplete) as failure:
            run(tmp_path, StuckProcessor, "stuck-cluster", ClusterLikeBus)
    finally:
        timer.cancel()
        StuckProcessor.release.set()
    left = re.search(
        r"^([\d,]+) ticks of stuck-cluster\.ticks were not processed", str(failure.value)
    )
    assert left is not None and 0 < int(left[1].replace(",", "")) <= 6000, failure.value
    assert "--topic-prefix" in str(failure.value)
