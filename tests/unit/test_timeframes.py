"""Interval names: any whole number of seconds, minutes or hours; 1d and 1w by sessions."""

import pytest

from marketpulse.models import interval_ns
from marketpulse.timeframes import (
    MAX_OTHERS,
    N_INTERVAL_KEYS,
    WELL_KNOWN,
    Interval,
    interval_keys,
    is_interval,
    parse_interval,
    parse_intervals,
    sort_key,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "name", "length"),
    [
        ("1s", "1s", S), ("90s", "90s", 90 * S), ("120s", "2m", 120 * S), ("15m", "15m", 900 * S),
        ("30m", "30m", 1800 * S), ("60m", "1h", 3600 * S), ("90m", "90m", 5400 * S),
        ("4h", "4h", 4 * 3600 * S), (" 2h ", "2h", 7200 * S), ("24h", "24h", 86400 * S),
        ("3600s", "1h", 3600 * S),
    ],
)  # fmt: skip
def test_fixed_intervals_parse_to_their_canonical_name_and_length(text, name, length):
    interval = parse_interval(text)
    assert interval == Interval(name, length)
    assert interval.fixed
    assert interval_ns(name) == length


def test_days_and_weeks_are_session_aligned():
    assert parse_interval("1d") == Interval("1d", 0, "d")
    assert parse_interval("1w") == Interval("1w", 0, "w")
    assert not parse_interval("1d").fixed
    # a delivered bar's nominal length, as before
    assert interval_ns("1d") == 86_400 * S
    assert interval_ns("1w") == 7 * 86_400 * S


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("7x", "'7x' is not an interval"), ("", "is not an interval"), ("m", "is not an interval"),
        ("1.5h", "is not an interval"), ("-1m", "is not an interval"), ("0s", "zero length"),
        ("2d", "only 1d and 1w"), ("1M", "is not an interval"), ("15 m", "is not an interval"),
    ],
)  # fmt: skip
def test_a_bad_interval_is_refused_naming_it(text, why):
    with pytest.raises(ValueError, match=why):
        parse_interval(text)
    assert not is_interval(text)


def test_only_canonical_names_are_timeframes():
    assert is_interval("4h") and is_interval("90s") and is_interval("1d")
    assert not is_interval("60m")  # stored as 1h


def test_interval_lists_are_checked_together():
    assert [i.name for i in parse_intervals(["1m", "60m", "4h", "1d", "1w"])] == [
        "1m", "1h", "4h", "1d", "1w",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="must be ascending"):
        parse_intervals(["1d", "1m"])
    with pytest.raises(ValueError, match="must be ascending"):
        parse_intervals(["5m", "1m"])
    with pytest.raises(ValueError, match="interval 1h is given twice"):
        parse_intervals(["1h", "60m"])
    with pytest.raises(ValueError, match="interval 90s is not a multiple of the first, 1m"):
        parse_intervals(["1m", "90s"])
    with pytest.raises(ValueError, match="no interval"):
        parse_intervals([])
    assert [i.name for i in parse_intervals(["1d"])] == ["1d"]


def test_at_most_a_few_intervals_outside_the_first_eight():
    others = [f"{n}h" for n in (2, 4, 6, 8, 10, 12, 14, 16)][: MAX_OTHERS + 1]
    with pytest.raises(ValueError, match=f"at most {MAX_OTHERS} intervals"):
        parse_intervals(others)
    assert len(parse_intervals(others[:MAX_OTHERS])) == MAX_OTHERS


def test_indicator_keys_are_stable_and_distinct():
    configured = ["1m", "4h", "90m", "1d", "1w"]
    # 90m is not a multiple of 4h's order here; keys only need the names
    keys = interval_keys(configured, configured)
    assert keys[0] == WELL_KNOWN.index("1m") == 3  # the keys of older checkpoints
    assert keys[3] == 7  # 1d
    assert len(set(keys)) == len(keys)
    assert all(0 <= k < N_INTERVAL_KEYS for k in keys)
    # a timeframe neither well known nor configured (a bar a feed delivered) shares the last key
    assert interval_keys(["7h"], configured) == [N_INTERVAL_KEYS - 1]


def test_sort_key_orders_shortest_first_then_days_and_weeks():
    names = ["1w", "1d", "4h", "90s", "1m", "15m", "bogus"]
    assert sorted(names, key=sort_key) == ["bogus", "1m", "90s", "15m", "4h", "1d", "1w"]


def test_the_api_and_the_dashboard_take_any_timeframe():
    from marketpulse.serve.dashboard import Dashboard
    from marketpulse.serve.exceptions import ServeError
    from marketpulse.serve.params import check_timeframe

    for name in ("4h", "90s", "30m", "1d", "1w"):
        assert check_timeframe(name) == name
        Dashboard.check_interval(name)  # no error
    with pytest.raises(ServeError, match="--interval: not a timeframe: '7x'"):
        Dashboard.check_interval("7x")
