import pytest

from marketpulse.feeds.vendors.pacing import Backoff, RateLimit, retry_after_seconds
from marketpulse.testing import ManualClock


def test_backoff_doubles_its_ceiling_up_to_the_cap_with_jitter():
    draws = iter([1.0, 0.5, 0.1, 1.0, 1.0, 0.0])
    backoff = Backoff(base=0.5, cap=3.0, floor=0.2, rand=lambda: next(draws))
    waits = [backoff.next_delay() for _ in range(6)]
    # ceilings 0.5, 1, 2, 3 (capped), 3, 3; uniform draws scale them; the floor holds
    assert waits == pytest.approx([0.5, 0.5, 0.2, 3.0, 3.0, 0.2])


def test_a_long_connection_starts_the_backoff_over():
    backoff = Backoff(base=1.0, cap=60.0, floor=0.0, reset_after=30.0, rand=lambda: 1.0)
    assert [backoff.next_delay() for _ in range(3)] == [1.0, 2.0, 4.0]
    backoff.connected_for(5.0)  # short: keep growing
    assert backoff.next_delay() == 8.0
    backoff.connected_for(31.0)
    assert backoff.next_delay() == 1.0


def test_rate_limit_is_a_sliding_window():
    clock = ManualClock(1000.0)
    limit = RateLimit(5, 60.0, clock)
    for _ in range(5):
        assert limit.wait() == 0.0
        limit.sent()
        clock.now += 1.0
    assert limit.wait() == pytest.approx(55.0)  # the first request leaves the window at +60
    clock.now += 55.0
    assert limit.wait() == 0.0


def test_a_429_blocks_requests_for_its_retry_after_or_a_window():
    clock = ManualClock(1000.0)
    limit = RateLimit(100, 60.0, clock)
    assert limit.limited(12.0) == 12.0
    assert limit.wait() == 12.0
    clock.now += 12.0
    assert limit.wait() == 0.0
    assert limit.limited(None) == 60.0
    assert limit.wait() == 60.0


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480.0) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("later") is None
