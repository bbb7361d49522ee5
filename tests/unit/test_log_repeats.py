"""Repeated warnings are rate-limited: a burst through per period, then one summary record."""

import logging

import pytest

from marketpulse.log_repeats import RepeatFilter
from marketpulse.testing import ManualClock


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def logged():
    """A logger whose handler rate-limits (burst 3 per 60 s) and keeps what goes out."""
    clock = ManualClock(1000.0)
    handler = Collect()
    repeats = RepeatFilter(burst=3, period=60.0, clock=clock)
    repeats.emit = handler.handle
    handler.addFilter(repeats)
    log = logging.getLogger("test.repeats")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log, handler.records, clock, repeats
    log.handlers.clear()


def _summaries(records):
    return [r for r in records if hasattr(r, "repeats")]


def test_a_burst_goes_through_and_the_rest_is_counted_in_one_summary(logged):
    log, records, clock, _ = logged
    for attempt in range(1326):
        clock.now += 0.03  # about 40 s of failed connects
        log.warning("connect to 127.0.0.1:%d failed (after %d ms)", 9092, attempt % 7)
    assert len(records) == 3  # numbers alone differ: one kind
    assert _summaries(records) == []
    clock.now += 30  # the period is over: the next one of the kind brings the count first
    log.warning("connect to 127.0.0.1:%d failed (after %d ms)", 9092, 1)
    summary, fresh = records[3], records[4]
    assert summary.repeats == 1326 - 3
    assert summary.levelno == logging.WARNING and summary.name == "test.repeats"
    assert summary.repeat_period == pytest.approx(1326 * 0.03 + 30 - 0.03)
    assert not hasattr(fresh, "repeats")  # a new period: its burst goes through again
    assert len(records) == 5


def test_kinds_are_counted_apart_and_info_is_never_held_back(logged):
    log, records, clock, _ = logged
    for _ in range(10):
        log.warning("broker down")
        log.error("broker down")  # another level: another kind
        log.warning("sink failed")
        log.info("progress: %d rows", 5)
    assert [r.levelno for r in records].count(logging.INFO) == 10
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 3 * 3


def test_a_kind_that_went_quiet_is_summarised_by_later_records_or_at_exit(logged):
    log, records, clock, repeats = logged
    for _ in range(5):
        log.warning("vendor refused")
    clock.now += 61
    log.warning("something else")  # the period of the quiet kind is over
    assert [r.repeats for r in _summaries(records)] == [2]
    for _ in range(4):
        log.warning("something else")
    repeats.flush()  # at exit: what was left out is counted
    assert [r.repeats for r in _summaries(records)] == [2, 2]
    repeats.flush()
    assert len(_summaries(records)) == 2  # counted once


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        RepeatFilter(burst=0)
    with pytest.raises(ValueError):
        RepeatFilter(period=0)
