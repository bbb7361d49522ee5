"""`marketpulse run --kafka`: every stage in one process on a real broker."""

import json
import sys
import time
import urllib.request

import pytest

from .kafka_tools import end_offsets, read_committed, start, wait_log

pytestmark = pytest.mark.integration


def _pipeline_figures(url):
    with urllib.request.urlopen(f"{url}api/pipeline?dead_letters=0", timeout=5) as response:
        return json.loads(response.read())["figures"]


def test_run_on_kafka_fills_the_topics_and_the_lake_alike(sql, tmp_path, kafka_bootstrap,
                                                          topic_prefix):  # fmt: skip
    lake = tmp_path / "lake"
    proc = start([sys.executable, "-m", "marketpulse", "run", "--kafka", kafka_bootstrap,
                  "--topic-prefix", topic_prefix, "--duration", "16", "--symbols", "6",
                  "--rate", "2000", "--seed", "3", "--lake", str(lake), "--port", "0",
                  "--alerts-file", str(tmp_path / "alerts.jsonl")])  # fmt: skip
    try:
        seen = []  # log lines (stderr is merged) come before the dashboard's URL
        while not (seen and seen[-1].startswith("dashboard: ")) and len(seen) < 50:
            line = proc.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
        assert seen[-1].startswith("dashboard: http://127.0.0.1:"), "".join(seen)
        url = seen[-1].split()[-1]
        # the pipeline page shows the processor's lag on every ticks partition
        deadline, lag = time.monotonic() + 30, {}
        while time.monotonic() < deadline and len(lag) < 6:
            lag = _pipeline_figures(url).get("lag", {})
            time.sleep(0.2)
        assert sorted(lag) == [f"{topic_prefix}ticks[{p}]" for p in range(6)]
        assert all(isinstance(n, int) and n >= 0 for n in lag.values())
        rest = wait_log(proc, 120)
    except BaseException:
        proc.kill()
        raise
    assert proc.returncode == 0, "".join(seen) + rest
    lines = rest.strip().splitlines()
    assert lines[-1].startswith("done: ticks in "), rest

    # every topic was created and the produced ticks are all in `ticks`; the summary
    # counts its trades (the simulator's quotes pass the processor by, as in `run`)
    records = read_committed(kafka_bootstrap, f"{topic_prefix}ticks")
    kinds = [json.loads(value)["type"] for rows in records.values() for _, value, _ in rows]
    assert set(kinds) == {"trade", "quote"}
    ticks = kinds.count("trade")
    assert sum(end_offsets(kafka_bootstrap, f"{topic_prefix}ticks")) == len(kinds)
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
        "(SELECT count(DISTINCT (symbol, timeframe, bar_start)) FROM bars) AS distinct_bars, "
        "(SELECT count(*) FROM indicators) AS indicators, "
        "(SELECT count(DISTINCT symbol) FROM bars) AS symbols, "
        "(SELECT count(*) FROM indicators WHERE rsi_14 IS NOT NULL) AS rsi, "
        "(SELECT list(DISTINCT dataset) FROM (SELECT dataset FROM bars UNION ALL "
        "SELECT dataset FROM indicators)) AS datasets",
    )[0]
    assert counts["datasets"] == ["simulator"]  # the simulator's rows, named after it
    assert counts["bars"] == counts["distinct_bars"] == n_bars
    assert counts["indicators"] == n_indicators
    assert counts["symbols"] == 6
    assert counts["rsi"] > 0
    assert f"bars {n_bars:,}" in lines[-1]
    # the summary names the files its lake sink wrote, as `run`'s does
    assert f"lake files {len(list(lake.rglob('*.parquet'))):,} (" in lines[-1], lines[-1]
