"""Bad records on the ticks topic land in dlq with headers saying what and where."""

import msgspec
import pytest

from marketpulse.models import Trade, encode

from .conftest import marketpulse
from .kafka_tools import bus_for, create_topics, read_committed

pytestmark = pytest.mark.integration

S = 1_000_000_000
T0 = 1_381_152_600 * S


def test_malformed_wrong_and_late_ticks_go_to_dlq_and_processing_goes_on(
    kafka_bootstrap, topic_prefix
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    good = [Trade("AAPL", T0 + i * S, 100.0 + i, 10) for i in range(12)]
    late = Trade("AAPL", T0, 99.0, 5)  # its 1s bar closed long ago
    records = [
        encode(good[0]),
        b"this is not json",
        b'{"type": "trade", "symbol": "AAPL", "price": 1.0}',  # no ts, no size
        *(encode(t) for t in good[1:]),
        encode(late),
        encode(Trade("AAPL", T0 + 13 * S, 101.0, 1)),
    ]
    with bus_for(kafka_bootstrap).producer() as producer:
        for value in records:
            producer.send(topics.ticks, "AAPL", value, partition=2)

    result = marketpulse(
        "process", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}p", "--exit-when-idle", "3", "--idle-timeout", "0",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr

    dead = read_committed(kafka_bootstrap, topics.name("dlq"))[2]
    by_offset = {int(dict(h)["offset"]): (k, v, dict(h)) for k, v, h in dead}
    assert sorted(by_offset) == [1, 2, 14]
    for offset, (key, value, headers) in by_offset.items():
        assert key == b"AAPL"
        assert value == records[offset]  # the original bytes
        assert headers["topic"] == topics.ticks.encode()
        assert headers["partition"] == b"2"
        assert headers["dataset"] == b"live"  # no --dataset: the default of process
    assert by_offset[1][2]["reason"] == b"schema"
    assert b"JSON" in by_offset[1][2]["error"]
    assert by_offset[2][2]["reason"] == b"schema"
    assert b"ts" in by_offset[2][2]["error"]
    assert by_offset[14][2]["reason"] == b"late"
    assert b"watermark" in by_offset[14][2]["error"]

    # the good ticks around the bad ones were all processed: twelve 1s bars closed
    bars = [msgspec.json.decode(v) for _, v, _ in read_committed(
        kafka_bootstrap, topics.name("bars"))[2]]  # fmt: skip
    seconds = [b for b in bars if b["timeframe"] == "1s"]
    assert [b["bar_start"] for b in seconds] == [T0 + i * S for i in range(12)]
    assert [b["close"] for b in seconds] == [100.0 + i for i in range(12)]
