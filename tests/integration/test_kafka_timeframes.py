"""``marketpulse process --intervals 1m,1d``: a session's daily bar, across a restart."""

import msgspec
import pytest

from marketpulse.models import Trade, encode

from .conftest import marketpulse
from .kafka_tools import bus_for, create_topics, read_committed

pytestmark = pytest.mark.integration

S = 1_000_000_000
OPEN = 1_381_152_600 * S  # 2013-10-07 13:30 UTC, the session's open on the NYSE
CLOSE = OPEN + 6 * 3600 * S + 30 * 60 * S  # 20:00 UTC
PRE = OPEN - 90 * 60 * S  # pre-market: in the minute bars, not the day's
# a trade every 10 minutes from the open to 19:50, then the next day's open
DAY = [(OPEN + k * 600 * S, 100.0 + (k % 7) - (k % 3), 10.0 + k) for k in range(39)]
NEXT = [(OPEN + 86_400 * S, 150.0, 1.0), (OPEN + 86_400 * S + 1800 * S, 151.0, 1.0)]


def _send(bootstrap, topics, trades):
    with bus_for(bootstrap).producer() as producer:
        for ts, price, size in trades:
            producer.send(topics.ticks, "AAPL", encode(Trade("AAPL", ts, price, size)), partition=2)


def _process(bootstrap, prefix, *extra, ok=True):
    result = marketpulse(
        "process", "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
        "--group", f"{prefix}p", "--exit-when-idle", "3", "--idle-timeout", "0",
        "--intervals", "1m,1d", *extra, env={"MARKETPULSE_SESSION_CALENDAR": "XNYS"},
    )  # fmt: skip
    assert (result.returncode == 0) == ok, result.stderr
    return result


def _bars(bootstrap, topics):
    partitions = read_committed(bootstrap, topics.name("bars")).values()
    return [msgspec.json.decode(v) for records in partitions for _, v, _ in records]


def test_process_builds_the_session_bar_across_a_restart(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    _send(kafka_bootstrap, topics, [(PRE, 500.0, 1000.0), *DAY[:20]])
    _process(kafka_bootstrap, topic_prefix)  # half the session, then the state is checkpointed
    _send(kafka_bootstrap, topics, [*DAY[20:], *NEXT])
    _process(kafka_bootstrap, topic_prefix)  # restores the state and goes on

    partitions = read_committed(kafka_bootstrap, topics.name("bars")).values()
    bars = [msgspec.json.decode(v) for records in partitions for _, v, _ in records]
    daily = [b for b in bars if b["timeframe"] == "1d"]
    prices = [p for _, p, _ in DAY]
    assert daily == [
        {
            "type": "bar", "symbol": "AAPL", "timeframe": "1d", "bar_start": OPEN, "bar_end": CLOSE,
            "open": prices[0], "high": max(prices), "low": min(prices), "close": prices[-1],
            "volume": sum(z for _, _, z in DAY), "vwap": pytest.approx(
                sum(p * z for _, p, z in DAY) / sum(z for _, _, z in DAY), rel=1e-12),
            "trades": len(DAY), "dataset": daily[0]["dataset"],
        }
    ]  # fmt: skip
    minutes = [b for b in bars if b["timeframe"] == "1m"]
    assert len(minutes) == 1 + len(DAY) + 1  # the pre-market one; the next day's first
    assert minutes[0]["close"] == 500.0


def test_process_fill_gaps_across_a_restart_and_a_change_refused(kafka_bootstrap, topic_prefix):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    _send(kafka_bootstrap, topics, DAY[:20])
    _process(kafka_bootstrap, topic_prefix, "--fill-gaps")
    _send(kafka_bootstrap, topics, [*DAY[20:], *NEXT])
    # the state was written with --fill-gaps: without it, one line and exit code 2
    refused = _process(kafka_bootstrap, topic_prefix, ok=False)
    assert refused.returncode == 2
    assert "written with --fill-gaps" in refused.stderr.strip().splitlines()[-1]
    _process(kafka_bootstrap, topic_prefix, "--fill-gaps")

    bars = _bars(kafka_bootstrap, topics)
    minutes = sorted((b["bar_start"], b["trades"], b["close"]) for b in bars
                     if b["timeframe"] == "1m")  # fmt: skip
    # the newest trade (14:00 the next day), less the lateness, closes the minutes up to 13:58
    last = NEXT[1][0] - 2 * 60 * S
    assert [m[0] for m in minutes] == list(range(OPEN, last + 1, 60 * S))
    traded = {ts - ts % (60 * S) for ts, _, _ in [*DAY, NEXT[0]]}
    assert {m[0] for m in minutes if m[1]} == traded
    for (_, _, before), (_, trades, close) in zip(minutes, minutes[1:], strict=False):
        assert trades or close == before  # a minute without trades: the previous close
    daily = [b for b in bars if b["timeframe"] == "1d"]
    assert [(b["bar_start"], b["trades"]) for b in daily] == [(OPEN, len(DAY))]
