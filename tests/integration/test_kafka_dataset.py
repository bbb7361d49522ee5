"""``marketpulse process --dataset``: every output of the run carries the dataset it names."""

import msgspec
import pytest

from marketpulse.bus.codec import decode_dead_letters
from marketpulse.models import INDICATOR_COLUMNS, Trade, encode

from .conftest import marketpulse
from .kafka_tools import bus_for, create_topics, read_committed

pytestmark = pytest.mark.integration

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC
RULES = """\
rules:
  - name: crosses_100
    type: price_cross
    level: 100
    intervals: [1s]
    cooldown: 0
"""
CLOSES = [99.0, 99.5, 101.0, 102.0, 98.0, 97.0]  # crosses 100 up at 2, down at 4


def _load(kafka_bootstrap, topics):
    records = [encode(Trade("AAPL", T0 + i * S, close, 10)) for i, close in enumerate(CLOSES)]
    records.insert(3, b"not json")
    records.append(encode(Trade("AAPL", T0 + 9 * S, 97.0, 1)))  # closes the bars before it
    with bus_for(kafka_bootstrap).producer() as producer:
        for value in records:
            producer.send(topics.ticks, "AAPL", value, partition=1)


def _process(kafka_bootstrap, prefix, rules, *extra, env=None):
    return marketpulse(
        "process", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", prefix,
        "--group", f"{prefix}p", "--exit-when-idle", "3", "--idle-timeout", "0",
        "--intervals", "1s", "--rules", rules, *extra, env=env,
    )  # fmt: skip


def _messages(kafka_bootstrap, topics, name):
    return [msgspec.json.decode(v) for _, v, _ in read_committed(
        kafka_bootstrap, topics.name(name))[1]]  # fmt: skip


def test_process_dataset_is_on_every_output_and_alert_details_are_an_object(
    kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    _load(kafka_bootstrap, topics)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    result = _process(kafka_bootstrap, topic_prefix, rules, "--dataset", "lean-2013-10-07")
    assert result.returncode == 0, result.stderr

    bars = _messages(kafka_bootstrap, topics, "bars")
    indicators = _messages(kafka_bootstrap, topics, "indicators")
    alerts = _messages(kafka_bootstrap, topics, "alerts")
    assert [b["close"] for b in bars] == CLOSES
    assert len(indicators) == len(bars) and len(alerts) == 2
    for message in (*bars, *indicators, *alerts):
        assert message["dataset"] == "lean-2013-10-07"
    # bars and indicators share their key; times on the wire are integer nanoseconds
    key = ("symbol", "timeframe", "bar_start", "bar_end")
    assert [tuple(i[k] for k in key) for i in indicators] == [
        ("AAPL", "1s", T0 + i * S, T0 + (i + 1) * S) for i in range(len(CLOSES))
    ]
    assert [tuple(b[k] for k in key) for b in bars] == [
        tuple(i[k] for k in key) for i in indicators
    ]
    assert set(indicators[0]) == {*key, "close", *INDICATOR_COLUMNS, "dataset"}
    up, down = alerts
    assert (up["timeframe"], up["bar_start"], up["bar_end"]) == ("1s", T0 + 2 * S, T0 + 3 * S)
    assert down["bar_start"] == T0 + 4 * S
    # details: a JSON object inside the message, not a string holding JSON
    assert up["details"] == {"close": 101.0, "prev_close": 99.5, "level": 100.0}
    assert "values" not in up

    (dead,) = read_committed(kafka_bootstrap, topics.name("dlq"))[1]
    key_, value, headers = dead
    assert value == b"not json" and dict(headers)["dataset"] == b"lean-2013-10-07"
    stored = decode_dead_letters([key_], [value], [headers], [0])  # as the sink stores it
    assert stored.column("dataset").to_pylist() == ["lean-2013-10-07"]
    assert stored.column("source_topic").to_pylist() == [topics.ticks]
    assert stored.column("source_partition").to_pylist() == [1]
    assert stored.column("source_offset").to_pylist() == [3]


def test_marketpulse_dataset_names_it_from_the_environment(kafka_bootstrap, topic_prefix, tmp_path):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    _load(kafka_bootstrap, topics)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {"MARKETPULSE_DATASET": "from-env"}
    result = _process(kafka_bootstrap, topic_prefix, rules, env=env)
    assert result.returncode == 0, result.stderr
    bars = _messages(kafka_bootstrap, topics, "bars")
    assert len(bars) == len(CLOSES) and {b["dataset"] for b in bars} == {"from-env"}


@pytest.mark.parametrize("name", ["two words", "-leading", "x" * 65, "a/b", ""])
def test_a_bad_dataset_name_stops_process_with_one_line(name):
    # refused before any broker is asked: nothing listens on port 1
    result = marketpulse("process", "--bootstrap-servers", "127.0.0.1:1", "--dataset", name)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--dataset" in lines[0] and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_bad_dataset_name_in_the_environment_stops_process_with_one_line():
    env = {"MARKETPULSE_DATASET": "two words"}
    result = marketpulse("process", "--bootstrap-servers", "127.0.0.1:1", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "MARKETPULSE_DATASET" in lines[0] and "two words" in lines[0]


def test_a_restart_under_another_dataset_stops_with_one_line(
    kafka_bootstrap, topic_prefix, tmp_path
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    _load(kafka_bootstrap, topics)
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    first = _process(kafka_bootstrap, topic_prefix, rules, "--dataset", "day-one")
    assert first.returncode == 0, first.stderr
    assert read_committed(kafka_bootstrap, topics.state)[1]  # the partition's state is kept
    again = _process(kafka_bootstrap, topic_prefix, rules, "--dataset", "day-two")
    assert again.returncode == 2, again.stderr
    lines = again.stderr.strip().splitlines()
    assert "Traceback" not in again.stderr
    assert "dataset day-one, not day-two" in lines[-1] and topics.state in lines[-1]
    again = _process(kafka_bootstrap, topic_prefix, rules, "--dataset", "day-one")
    assert again.returncode == 0, again.stderr  # the same dataset goes on
