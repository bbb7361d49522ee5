"""Bounded retries: each retried failure is reported, the budget ends them."""

import pytest

from marketpulse.exceptions import RunFailure
from marketpulse.sinks.exceptions import SinkUnavailableError, StorageLostError
from marketpulse.sinks.retry import with_retries
from marketpulse.testing import ManualClock


def test_each_retried_failure_is_reported_and_the_result_returned():
    clock, retried = ManualClock(), []
    failures = [ConnectionError("down"), ConnectionError("still down")]

    def action():
        if failures:
            raise failures.pop(0)
        return "written"

    result = with_retries(action, "write", (ConnectionError,), 60, sleep=clock.sleep,
                          clock=lambda: clock.now, on_retry=retried.append)  # fmt: skip
    assert result == "written"
    assert [str(e) for e in retried] == ["down", "still down"]
    assert clock.slept == [0.2, 0.4]


def test_the_failure_after_the_budget_is_not_retried():
    clock, retried = ManualClock(), []

    def action():
        raise ConnectionError("down")

    with pytest.raises(SinkUnavailableError, match=r"write: failed 4 time\(s\) over 1 s"):
        with_retries(action, "write", (ConnectionError,), 1, sleep=clock.sleep,
                     clock=lambda: clock.now, on_retry=retried.append)  # fmt: skip
    assert len(retried) == 3  # the fourth failure ended the budget: raised, not retried
    assert sum(clock.slept) == pytest.approx(1.0)


def test_other_errors_are_not_retried():
    retried = []

    def action():
        raise ValueError("bad row")

    with pytest.raises(ValueError):
        with_retries(action, "write", (ConnectionError,), 60, on_retry=retried.append)
    assert retried == []


def test_storage_lost_mid_run_is_a_runtime_failure_naming_the_window():
    clock = ManualClock()

    def action():
        raise ConnectionError("down")

    with pytest.raises(StorageLostError, match=r"over 1 s; .*setting storage_retry") as lost:
        with_retries(action, "write bars", (ConnectionError,), 1, sleep=clock.sleep,
                     clock=lambda: clock.now, lost="PostgreSQL")  # fmt: skip
    assert isinstance(lost.value, RunFailure) and isinstance(lost.value, SinkUnavailableError)
    assert lost.value.storage == "PostgreSQL"
