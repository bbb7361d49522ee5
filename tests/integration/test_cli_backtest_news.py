"""``marketpulse backtest --news``: the returns after headlines, by sentiment, against chance.

The Lean day's minute bars are replayed into a lake and synthetic headlines written
beside them (there is no real news archive here); the command's figures are checked
against forward returns computed independently in SQL (an as-of join of each headline
to the last bar that ended before it).
"""

import json
import math
import re
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from .conftest import LEAN_BARS, marketpulse, marketpulse_in_process

pytestmark = pytest.mark.integration

#: 2013-10-07 13:30 UTC, the Lean day's open (09:30 in New York), in ns.
OPEN = 1_381_152_600 * 10**9
S = 10**9


def _headlines() -> pa.Table:
    """Headlines at random times of the session, of each class; repeats and oddities."""
    from marketpulse.models import NEWS_SCHEMA

    rng = np.random.default_rng(2)
    rows = [
        {"symbol": str(rng.choice(["SPY", "AIG", "BAC", "IBM"])), "id": f"vendor:{k}",
         "ts": OPEN + int(rng.integers(0, 390 * 60)) * S,
         "sentiment": float(rng.choice([-0.7, -0.2, 0.0, 0.02, 0.3, 0.8]))}
        for k in range(150)
    ]  # fmt: skip
    rows += [
        {**rows[0], "ts": rows[0]["ts"] + 600 * S},  # the same article polled again later
        {**rows[1], "symbol": "AIG" if rows[1]["symbol"] != "AIG" else "BAC"},  # two symbols
        {"symbol": "SPY", "id": "early", "ts": OPEN - 7 * 3600 * S, "sentiment": 0.9},  # 06:30
        {"symbol": "SPY", "id": "unscored", "ts": OPEN + 60 * S, "sentiment": None},
        {"symbol": "XYZ", "id": "no-bars", "ts": OPEN + 60 * S, "sentiment": -0.9},
    ]
    for row in rows:
        row |= {"headline": f"headline {row['id']}", "dataset": "lean"}
    return pa.Table.from_pylist(rows, schema=NEWS_SCHEMA)


@pytest.fixture(scope="module")
def news_lake(tmp_path_factory):
    """The Lean day's minute bars (dataset lean) and the headlines of :func:`_headlines`."""
    from marketpulse.sinks import LakeSink

    root = tmp_path_factory.mktemp("news")
    replay = marketpulse("replay", LEAN_BARS, "--lake", root / "lake", "--dataset", "lean",
                         cwd=root)  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    with LakeSink(root / "lake") as sink:
        sink.write("news", _headlines())
    return root


def _in_process(root, *args, env=None):
    result = marketpulse_in_process("backtest", "--news", "--lake", root / "lake", *args,
                                    cwd=root, env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def _one_line(result, *words):
    assert result.returncode == 2, result.stderr + result.stdout
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: "), line
    for word in words:
        assert word in line, (word, line)


def _independent(root) -> dict[tuple[str, int], list[float]]:
    """Forward returns per class and horizon, in SQL: an as-of join, ``lead`` over bars."""
    query = """
        WITH b AS (
            SELECT symbol, bar_end, close,
                   lead(close, 5) OVER w / close - 1 AS r5,
                   lead(close, 15) OVER w / close - 1 AS r15
            FROM bars WHERE dataset = 'lean' AND timeframe = '1m'
            WINDOW w AS (PARTITION BY symbol ORDER BY bar_start)),
        n AS (
            SELECT DISTINCT ON (symbol, id) symbol, id, ts, sentiment
            FROM news WHERE dataset = 'lean' AND sentiment IS NOT NULL
            ORDER BY symbol, id, ts)
        SELECT CASE WHEN sentiment >= 0.05 THEN 'positive'
                    WHEN sentiment <= -0.05 THEN 'negative' ELSE 'neutral' END AS class,
               r5, r15
        FROM n ASOF LEFT JOIN b ON n.symbol = b.symbol AND n.ts >= b.bar_end"""
    out = marketpulse_in_process("sql", query, "--lake", root / "lake", "--format", "json",
                                 cwd=root)  # fmt: skip
    assert out.returncode == 0, out.stderr
    returns = defaultdict(list)
    for row in json.loads(out.stdout):
        for h in (5, 15):
            returns[row["class"], h].append(row[f"r{h}"])
    return returns


def test_the_study_as_typed_equals_an_independent_sql_computation(news_lake):
    result = marketpulse("backtest", "--news", "--lake", news_lake / "lake", "--horizons",
                         "5,15", "--format", "json", cwd=news_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["sentiment"], r["horizon"]) for r in rows] == [
        ("positive", 5), ("positive", 15), ("negative", 5), ("negative", 15),
        ("neutral", 5), ("neutral", 15),
    ]  # fmt: skip
    expected = _independent(news_lake)
    for row in rows:
        every = expected[row["sentiment"], row["horizon"]]
        returns = [r for r in every if r is not None]
        assert row["headlines"] == len(every) and row["with_return"] == len(returns) > 10
        assert math.isclose(row["mean_return_pct"], 100 * sum(returns) / len(returns),
                            rel_tol=1e-9)  # fmt: skip
        assert row["mean_low_pct"] < row["mean_return_pct"] < row["mean_high_pct"]
        assert row["baseline_n"] == 20 * row["with_return"]
        assert 0.0 <= row["p_value"] <= 1.0
        if row["sentiment"] == "neutral":
            assert row["hit_rate"] is None and row["mean_abs_return_pct"] > 0
        else:
            sign = 1 if row["sentiment"] == "positive" else -1
            assert row["hit_rate"] == sum(r * sign > 0 for r in returns) / len(returns)
            assert row["hit_low"] <= row["hit_rate"] <= row["hit_high"]
    # 150 articles, one about two symbols, one early, one of a symbol without bars
    assert sum(r["headlines"] for r in rows if r["horizon"] == 5) == 153


def test_the_table_fits_the_terminal_and_says_what_was_studied(news_lake):
    result = _in_process(news_lake, "--horizons", "5", env={"COLUMNS": "100"})
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["sentiment", "horizon", "headlines", "mean_return_pct"]
    assert [line.split()[0] for line in lines[2:]] == ["positive", "negative", "neutral"]
    assert max(len(line) for line in lines) <= 100
    assert re.search(r"\s[+-]\d+\.\d\d %", lines[2])  # returns in percent, signed
    summary, left_out, fitted = result.stderr.splitlines()
    assert summary.startswith("news study of dataset lean on 1m bars: 153 headlines (")
    assert "baseline 20 random bars per headline (seed 0)" in summary
    assert left_out == ("left out: 1 row repeating an article already counted for its symbol; "
                        "1 headline without a sentiment score")  # fmt: skip
    assert "left out to fit 100 characters" in fitted


def test_the_baseline_is_drawn_again_with_another_seed_only(news_lake):
    args = ("--horizons", "5", "--format", "csv")
    first, again = _in_process(news_lake, *args).stdout, _in_process(news_lake, *args).stdout
    other = _in_process(news_lake, *args, "--seed", "7").stdout
    assert first == again and other != first
    own = [line.split(",")[:11] for line in first.splitlines()]  # up to hit_high
    assert own == [line.split(",")[:11] for line in other.splitlines()]


def test_cutoffs_symbols_and_dates_narrow_the_study(news_lake):
    wide = json.loads(_in_process(news_lake, "--horizons", "5", "--format", "json").stdout)
    strict = json.loads(_in_process(news_lake, "--horizons", "5", "--cutoffs", "-0.5,0.5",
                                    "--format", "json").stdout)  # fmt: skip
    count = {r["sentiment"]: r["headlines"] for r in wide}
    narrowed = {r["sentiment"]: r["headlines"] for r in strict}
    assert narrowed["positive"] < count["positive"] and narrowed["neutral"] > count["neutral"]
    assert sum(narrowed.values()) == sum(count.values())
    spy = json.loads(_in_process(news_lake, "--horizons", "5", "--symbols", "SPY", "--format",
                                 "json").stdout)  # fmt: skip
    assert 0 < sum(r["headlines"] for r in spy) < sum(count.values())
    later = json.loads(_in_process(news_lake, "--horizons", "5", "--start", "2013-10-08",
                                   "--format", "json").stdout)  # fmt: skip
    assert [r["headlines"] for r in later] == [0, 0, 0]


def test_a_lake_without_news_is_one_line_naming_how_to_get_some(tmp_path):
    replay = marketpulse("replay", LEAN_BARS, "--lake", tmp_path / "lake", "--dataset", "lean",
                         cwd=tmp_path)  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    result = marketpulse("backtest", "--news", "--lake", tmp_path / "lake", cwd=tmp_path)
    _one_line(result, "no headlines of dataset lean", "marketpulse news")
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--news", "--rules", "rules.yaml"), "--rules: the news study (--news) evaluates no"),
        (("--timeframe", "1m"), "--timeframe: only with --news"),
        (("--news", "--timeframe", "5m"), "--timeframe: no 5m bars in dataset lean (it has: 1m)"),
        (("--news", "--cutoffs", "0.2,-0.2"), "--cutoffs: expected -1 <= NEGATIVE < POSITIVE"),
        (("--news", "--cutoffs", "strong"), "--cutoffs: expected NEG,POS"),
        (("--news", "--symbols", "ZZZ"), "--symbols: no 1m bars of ZZZ"),
        (("--news", "--horizons", "0"), "--horizons: whole numbers of bars, at least 1"),
    ],
)
def test_bad_uses_are_one_line(news_lake, args, words):
    result = marketpulse_in_process("backtest", "--lake", news_lake / "lake", *args,
                                    cwd=news_lake)  # fmt: skip
    _one_line(result, words)
