"""The Spark operator closes a quiet bucket's bars by processing-time timers, as ``process`` does.

Driven by pyspark's own in-memory harness (``TwsTester``: the operator's state and
timers without a JVM), with Spark's micro-batch times set by hand.
"""

import msgspec
import pandas as pd
import pytest
from pyspark.sql.streaming.tws_tester import TwsTester

from marketpulse.models import Trade, encode
from marketpulse.spark.bucket_operator import BucketOperator
from marketpulse.stream import ProcessorSettings

T0 = 1_381_150_800 * 10**9  # 2013-10-07 13:00:00 UTC
SECOND = 10**9


def operator(run, idle_timeout=1.0):
    settings = ProcessorSettings(intervals=("1s", "1m"), lateness=0.5, idle_timeout=idle_timeout)
    return BucketOperator(settings, [], "t.", store_trades=False, quotes=None, run=run)


def ticks(*trades, first_offset=0):
    return pd.DataFrame({
        "key": [t.symbol.encode() for t in trades],
        "value": [encode(t) for t in trades],
        "partition": [0] * len(trades),
        "offset": range(first_offset, first_offset + len(trades)),
        "timestamp": [t.ts // 1_000_000 for t in trades],
    })  # fmt: skip


def bars(frame):
    """The bars records of an operator's output: (timeframe, bar_start, close, volume)."""
    if len(frame.columns) == 0:  # the harness's output where no timer fired
        return []
    rows = [msgspec.json.decode(v) for t, v in zip(frame["topic"], frame["value"], strict=True)
            if t == "t.bars"]  # fmt: skip
    return [(r["timeframe"], r["bar_start"], r["close"], r["volume"]) for r in rows]


TRADES = (Trade("AIG", T0, 30.0, 100.0), Trade("AIG", T0 + 400_000_000, 30.5, 50.0))


def test_a_quiet_buckets_one_second_bar_closes_by_the_clock_once_its_watermark_passes():
    tester = TwsTester(operator("clock-a"), timeMode="ProcessingTime")
    tester.setProcessingTime(10_000)
    assert bars(tester.testInPandas(0, ticks(*TRADES))) == []  # no input closes it
    # 1 s quiet: the watermark is the newest tick - lateness + 1 s = T0 + 0.9 s: still open
    assert bars(tester.setProcessingTime(11_000)) == []
    # 2 s quiet: T0 + 1.9 s passes the bar's end
    assert bars(tester.setProcessingTime(12_000)) == [("1s", T0, 30.5, 150.0)]
    assert bars(tester.setProcessingTime(13_000)) == []  # closed once
    # a minute of quiet later, the 1-minute bar too
    assert bars(tester.setProcessingTime(71_000)) == [("1m", T0, 30.5, 150.0)]


def test_input_moves_the_timer_on():
    tester = TwsTester(operator("clock-b"), timeMode="ProcessingTime")
    tester.setProcessingTime(10_000)
    tester.testInPandas(0, ticks(TRADES[0]))
    tester.setProcessingTime(10_900)
    tester.testInPandas(0, ticks(TRADES[1], first_offset=1))  # quiet from 10.9 s on
    assert bars(tester.setProcessingTime(12_000)) == []  # 1.1 s quiet: T0 + 1.0 s not passed
    assert bars(tester.setProcessingTime(13_000)) == [("1s", T0, 30.5, 150.0)]  # a step on


def test_a_timer_run_again_on_the_stored_state_closes_the_same_bars():
    """A micro-batch Spark runs again (a retried task, a restarted driver) starts from the
    store as it was before the batch, in a worker without the processor: the same bars."""
    first = TwsTester(operator("clock-c"), timeMode="ProcessingTime")
    first.setProcessingTime(10_000)
    first.testInPandas(0, ticks(*TRADES))
    stored = {name: first.peekValueState(name, 0) for name in ("next_offset", "clock")} | {
        "processor_state": first.peekMapState("processor_state", 0)
    }
    closed = bars(first.setProcessingTime(12_000))

    again = TwsTester(operator("clock-d"), timeMode="ProcessingTime")  # another run: restored
    again.updateValueState("next_offset", 0, stored["next_offset"])
    again.updateValueState("clock", 0, stored["clock"])
    again.updateMapState("processor_state", 0, stored["processor_state"])
    again.handle.setGroupingKey(0)
    again.handle.registerTimer(11_000)  # as the first run left its timer
    again.testInPandas(0, ticks())  # no input (the harness answers in frames from here on)
    assert bars(again.setProcessingTime(12_000)) == closed == [("1s", T0, 30.5, 150.0)]


def test_without_an_idle_timeout_bars_close_by_input_alone():
    tester = TwsTester(operator("clock-e", idle_timeout=None), timeMode="ProcessingTime")
    tester.setProcessingTime(10_000)
    tester.testInPandas(0, ticks(*TRADES))
    assert bars(tester.setProcessingTime(600_000)) == []
    later = Trade("AIG", T0 + 2 * SECOND, 31.0, 10.0)
    assert bars(tester.testInPandas(0, ticks(later, first_offset=2))) == [("1s", T0, 30.5, 150.0)]


@pytest.fixture(autouse=True)
def _forget_kept_processors():
    """Each test's operator restores from its own state, not from a processor kept earlier."""
    from marketpulse.spark import bucket_operator

    bucket_operator._KEPT.clear()
    yield
    bucket_operator._KEPT.clear()
