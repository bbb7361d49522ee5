"""`marketpulse run --kafka`: every stage in one process on a real broker."""

import pytest

from .kafka_tools import end_offsets, read_committed

pytestmark = pytest.mark.integration


def test_run_on_kafka_fills_the_topics_and_the_lake_alike(
    cli, sql, tmp_path, kafka_bootstrap, topic_prefix
):
    lake = tmp_path / "lake"
    result = cli("run", "--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix,
                 "--duration", "16", "--symbols", "6", "--rate", "2000", "--seed", "3",
                 "--lake", lake, "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("done: ticks in ")

    # every topic was created and the produced ticks are all in `ticks`
    ticks = sum(end_offsets(kafka_bootstrap, f"{topic_prefix}ticks"))
    assert f"ticks in {ticks:,}" in lines[-1]
    assert 2000 * 16 * 0.4 < ticks < 2000 * 16 * 3.0

    # the lake holds exactly the committed bars and indicator rows of the topics
    bars = read_committed(kafka_bootstrap, f"{topic_prefix}bars")
    indicators = read_committed(kafka_bootstrap, f"{topic_prefix}indicators")
    n_bars = sum(len(rows) for rows in bars.values())
    n_indicators = sum(len(rows) for rows in indicators.values())
    assert n_bars > 6 * 10
    counts = sql(
        lake,
        "SELECT (SELECT count(*) FROM bars) AS bars, "
        "(SELECT count(DISTINCT (symbol, interval, start)) FROM bars) AS distinct_bars, "
        "(SELECT count(*) FROM indicators) AS indicators, "
        "(SELECT count(DISTINCT symbol) FROM bars) AS symbols, "
        "(SELECT count(*) FROM indicators WHERE rsi_14 IS NOT NULL) AS rsi",
    )[0]
    assert counts["bars"] == counts["distinct_bars"] == n_bars
    assert counts["indicators"] == n_indicators
    assert counts["symbols"] == 6
    assert counts["rsi"] > 0
    assert f"bars {n_bars:,}" in lines[-1]
