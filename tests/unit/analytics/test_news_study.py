"""The news event study over small lakes of synthetic bars and headlines.

A planted effect (positive headlines followed by rises, negative ones by falls) must
be found; headlines placed at random, or scored by the move that came before them,
must show none. No real news archive is read.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.analytics import AnalyticsError, Lake
from marketpulse.analytics.news_study import NewsScope, NewsStudy, news_study
from marketpulse.models import NEWS_SCHEMA
from marketpulse.sinks import LakeSink

from ..conftest import build_rows

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
NS_PER_S = 1_000_000_000
MINUTE = 60 * NS_PER_S
TEN = MIDNIGHT + 10 * 3600 * NS_PER_S  # 10:00


def _bars(symbol: str, closes, start: int = TEN, timeframe: str = "1m",
          step: int = MINUTE, dataset: str = "syn") -> pa.Table:  # fmt: skip
    """Bars of ``symbol`` with these closes, one every ``step`` from ``start``."""
    n = len(closes)
    rows = build_rows("bars", n, start=start, step=step, symbols=(symbol,))
    close = pa.array(np.asarray(closes, np.float64))
    for name, values in {
        "bar_end": pa.array([start + (i + 1) * step for i in range(n)], pa.int64()),
        "open": close, "high": close, "low": close, "close": close,
        "timeframe": pa.array([timeframe] * n), "dataset": pa.array([dataset] * n),
    }.items():  # fmt: skip
        rows = rows.set_column(rows.schema.get_field_index(name), name, values)
    return rows


def _news(rows: list[tuple[str, str, int, float | None]], dataset: str = "syn") -> pa.Table:
    """Headlines (symbol, id, ts, sentiment)."""
    return pa.Table.from_pylist(
        [{"symbol": s, "id": i, "ts": ts, "headline": f"headline {i}", "sentiment": score,
          "dataset": dataset} for s, i, ts, score in rows],
        schema=NEWS_SCHEMA,
    )  # fmt: skip


def _lake(root, bars: list[pa.Table], news: list[pa.Table] = ()):
    with LakeSink(root) as sink:
        for table in bars:
            sink.write("bars", table)
    for table in news:  # each write its own file: repeats of an article land apart
        with LakeSink(root) as sink:
            sink.write("news", table)
    return root


def _study(root, **scope) -> NewsStudy:
    with Lake(root) as lake:
        return news_study(lake, NewsScope(**scope))


def _rows(result: NewsStudy) -> dict[tuple[str, int], dict]:
    return {(r["sentiment"], r["horizon"]): r for r in result.record.to_pylist()}


# -- a planted effect, and controls ------------------------------------------------------------

SYMBOLS = ("AAA", "BBB")
N_BARS = 3000
SPACING = 28  # bars between headlines: a headline's drift never reaches the next one


def _walk(rng: np.random.Generator, drift: np.ndarray | None = None) -> np.ndarray:
    """Closes of a random walk of 0.1% steps (plus ``drift`` per bar)."""
    steps = rng.normal(0.0, 0.001, N_BARS)
    if drift is not None:
        steps += drift
    return 100.0 * np.exp(np.cumsum(steps))


def _published_after(rng: np.random.Generator, row: int) -> int:
    """A time within the bar after ``row``: at or after ``row``'s end, before the next's."""
    return TEN + (row + 1) * MINUTE + int(rng.integers(0, 60)) * NS_PER_S


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Positive headlines followed by 5 bars of +0.08% a bar, negative ones by -0.08%."""
    rng = np.random.default_rng(11)
    bars, news = [], []
    for symbol in SYMBOLS:
        entries = 50 + SPACING * np.arange(100)
        labels = rng.permutation(["positive"] * 40 + ["negative"] * 40 + ["neutral"] * 20)
        drift = np.zeros(N_BARS)
        scores = {"positive": (0.3, 0.95), "negative": (-0.95, -0.3), "neutral": (-0.04, 0.04)}
        for k, (row, label) in enumerate(zip(entries, labels, strict=True)):
            drift[row + 1 : row + 6] = {"positive": 0.0008, "negative": -0.0008}.get(label, 0.0)
            news.append((symbol, f"{symbol}-{k}", _published_after(rng, row),
                         float(rng.uniform(*scores[label]))))  # fmt: skip
        bars.append(_bars(symbol, _walk(rng, drift)))
    return _lake(tmp_path_factory.mktemp("planted"), bars, [_news(news)])


def test_a_planted_effect_is_found_in_both_directions(planted):
    result = _study(planted, horizons=(5, 15))
    rows = _rows(result)
    for h in (5, 15):
        up, down = rows["positive", h], rows["negative", h]
        assert up["headlines"] == up["with_return"] == 80
        assert down["headlines"] == down["with_return"] == 80
        assert up["baseline_n"] == 20 * 80
        # the mean after positive headlines: above zero, its interval above the baseline's
        assert up["mean_low_pct"] > up["baseline_mean_high_pct"] and up["mean_return_pct"] > 0.2
        assert down["mean_high_pct"] < down["baseline_mean_low_pct"]
        assert down["mean_return_pct"] < -0.2
        # hit rates in each class's direction (down for negative), far above chance
        for row in (up, down):
            assert row["hit_low"] > row["baseline_hit_high"] and row["hit_rate"] > 0.75
            assert row["p_value"] < 1e-6
    # at 5 bars the drift is 0.4%: the mean return says so
    assert rows["positive", 5]["mean_return_pct"] == pytest.approx(0.4, abs=0.1)


def test_neutral_headlines_have_no_direction_and_here_no_effect(planted):
    rows = _rows(_study(planted, horizons=(5,)))
    neutral = rows["neutral", 5]
    assert neutral["headlines"] == 40
    assert neutral["hit_rate"] is None and neutral["baseline_hit_rate"] is None
    assert neutral["mean_abs_return_pct"] > 0 and neutral["baseline_mean_abs_return_pct"] > 0
    assert neutral["p_value"] > 0.01  # Welch's z on the absolute returns


@pytest.fixture(scope="module")
def random_walk(tmp_path_factory):
    """Random walks with no headline effect: headlines at random times, of random classes."""
    rng = np.random.default_rng(5)
    bars = [_bars(symbol, _walk(rng)) for symbol in SYMBOLS]
    news = [
        (str(rng.choice(SYMBOLS)), f"r{k}", TEN + int(rng.integers(0, N_BARS * 60)) * NS_PER_S,
         float(rng.choice([-0.6, 0.0, 0.6])))
        for k in range(300)
    ]  # fmt: skip
    return _lake(tmp_path_factory.mktemp("random"), bars, [_news(news)])


def _no_effect(result: NewsStudy, classes=("positive", "negative", "neutral")) -> None:
    rows = [r for r in result.record.to_pylist() if r["sentiment"] in classes]
    assert {r["sentiment"] for r in rows} == set(classes)
    for row in rows:
        assert row["with_return"] >= 50, row  # the check is not vacuous
        assert row["baseline_n"] == 20 * row["with_return"]
        assert row["p_value"] > 0.01, row
        assert row["mean_low_pct"] <= row["baseline_mean_high_pct"], row
        assert row["mean_high_pct"] >= row["baseline_mean_low_pct"], row


def test_headlines_placed_at_random_show_no_effect(random_walk):
    _no_effect(_study(random_walk, horizons=(5, 15)))


def test_headlines_scored_by_the_move_before_them_show_no_effect(tmp_path):
    """News that reports the bar that just closed: its move is before the entry, not after.

    A study entering one bar early (at the close before the entry bar's) would count
    that move as the headline's effect.
    """
    rng = np.random.default_rng(8)
    bars, news = [], []
    for symbol in SYMBOLS:
        closes = _walk(rng)
        for k, row in enumerate(rng.choice(np.arange(1, N_BARS - 20), 200, replace=False)):
            before = closes[row] / closes[row - 1] - 1  # the entry bar's own move
            news.append((symbol, f"{symbol}-{k}", _published_after(rng, int(row)),
                         0.8 if before > 0 else -0.8))  # fmt: skip
        bars.append(_bars(symbol, closes))
    _no_effect(_study(_lake(tmp_path, bars, [_news(news)]), horizons=(1, 5)),
               ("positive", "negative"))  # fmt: skip


# -- the entry bar ------------------------------------------------------------------------------


def _at(hour: int, minute: int, second: int = 0) -> int:
    return MIDNIGHT + ((hour * 60 + minute) * 60 + second) * NS_PER_S


ENTRY_NEWS = [
    ("AAA", "mid-bar", _at(10, 3, 20), 0.6),  # in the 10:03 bar: enters at 10:02's close
    ("AAA", "on-the-edge", _at(10, 3), -0.6),  # as the 10:02 bar ends: enters at its close
    ("AAA", "too-early", _at(9, 59, 59), 0.0),  # before the first bar ends: none
]


def _entry_lake(root, closes):
    return _lake(root, [_bars("AAA", closes)], [_news(ENTRY_NEWS)])


def _entries(result: NewsStudy) -> dict[str, tuple[int | None, float | None]]:
    return {r["id"]: (r["entry_start"], r["entry_close"]) for r in result.headlines.to_pylist()}


def test_a_headline_enters_at_the_close_of_the_last_bar_ended_before_it(tmp_path):
    closes = [100.0 + k for k in range(10)]  # the 10:0k bar closes at 100 + k
    result = _study(_entry_lake(tmp_path, closes), horizons=(1, 2))
    assert _entries(result) == {
        "mid-bar": (_at(10, 2), 102.0),
        "on-the-edge": (_at(10, 2), 102.0),
        "too-early": (None, None),
    }
    rows = _rows(result)
    assert rows["positive", 1]["mean_return_pct"] == pytest.approx((103 / 102 - 1) * 100)
    assert rows["positive", 2]["mean_return_pct"] == pytest.approx((104 / 102 - 1) * 100)
    assert rows["negative", 1]["mean_return_pct"] == pytest.approx((103 / 102 - 1) * 100)
    # the headline before the first bar counts, without a return
    assert (rows["neutral", 1]["headlines"], rows["neutral", 1]["with_return"]) == (1, 0)
    assert rows["neutral", 1]["mean_return_pct"] is None


def test_prices_after_the_entry_bar_do_not_move_the_entry(tmp_path):
    closes = [100.0 + k for k in range(10)]
    moved = closes[:3] + [c * 3 for c in closes[3:]]  # from the 10:03 bar on, ts within it
    before = _study(_entry_lake(tmp_path / "a", closes), horizons=(1,))
    after = _study(_entry_lake(tmp_path / "b", moved), horizons=(1,))
    assert _entries(after) == _entries(before)
    # the later prices are read, for the returns only
    assert _rows(after)["positive", 1]["mean_return_pct"] == pytest.approx((309 / 102 - 1) * 100)


def test_a_symbol_without_bars_of_the_timeframe_has_no_entry(tmp_path):
    root = _lake(tmp_path, [_bars("AAA", [100.0] * 5)],
                 [_news([("ZZZ", "elsewhere", _at(10, 3), 0.9)])])  # fmt: skip
    result = _study(root, horizons=(1,))
    assert _entries(result) == {"elsewhere": (None, None)}
    assert _rows(result)["positive", 1]["with_return"] == 0


# -- what counts --------------------------------------------------------------------------------


def test_an_article_stored_again_counts_once_per_symbol(tmp_path):
    first = [("AAA", "x1", _at(10, 2), 0.5), ("BBB", "x1", _at(10, 2), 0.5)]  # about two symbols
    again = [("AAA", "x1", _at(10, 4), 0.7)]  # the same article, polled again later
    bars = [_bars("AAA", [100.0 + k for k in range(10)]),
            _bars("BBB", [50.0 + k for k in range(10)])]  # fmt: skip
    result = _study(_lake(tmp_path, bars, [_news(first), _news(again)]), horizons=(1,))
    assert result.duplicates == 1
    assert _rows(result)["positive", 1]["headlines"] == 2
    studied = sorted((r["symbol"], r["id"], r["ts"]) for r in result.headlines.to_pylist())
    assert studied == [("AAA", "x1", _at(10, 2)), ("BBB", "x1", _at(10, 2))]  # the first seen


def test_classes_follow_the_cutoffs_and_unscored_headlines_are_left_out(tmp_path):
    news = [("AAA", "p", _at(10, 3), 0.05), ("AAA", "n", _at(10, 3), -0.05),
            ("AAA", "z", _at(10, 3), 0.049), ("AAA", "w", _at(10, 3), 0.3),
            ("AAA", "u", _at(10, 3), None)]  # fmt: skip
    root = _lake(tmp_path, [_bars("AAA", [100.0 + k for k in range(10)])], [_news(news)])

    def classes(**cutoffs):
        result = _study(root, horizons=(1,), **cutoffs)
        return {r["id"]: r["class"] for r in result.headlines.to_pylist()}, result.unscored

    assert classes() == ({"p": "positive", "n": "negative", "z": "neutral", "w": "positive"}, 1)
    assert classes(positive=0.5, negative=-0.01)[0] == {
        "p": "neutral", "n": "negative", "z": "neutral", "w": "neutral"
    }  # fmt: skip


def test_dates_bound_the_headlines_and_the_baseline(tmp_path):
    """Day one rises 1% a bar, day two is flat: a baseline of day two is flat too."""
    day = 24 * 60
    closes = [100.0 * 1.01**k for k in range(day)] + [500.0] * day
    start = MIDNIGHT  # 2023-11-14 00:00
    news = [("AAA", "d1", start + 600 * MINUTE + 1, 0.9),
            ("AAA", "d2", start + (day + 600) * MINUTE + 1, 0.9)]  # fmt: skip
    root = _lake(tmp_path, [_bars("AAA", closes, start=start)], [_news(news)])
    both = _rows(_study(root, horizons=(5,)))["positive", 5]
    second = _rows(_study(root, horizons=(5,), start=date(2023, 11, 15)))["positive", 5]
    assert both["headlines"] == 2 and second["headlines"] == 1
    assert second["mean_return_pct"] == 0.0 and second["baseline_mean_return_pct"] == 0.0
    assert both["baseline_mean_return_pct"] > 0.5  # day one's bars are drawn too


# -- the baseline's seed ------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_baseline_and_another_seed_another(random_walk):
    first = _study(random_walk, horizons=(5,), seed=3).record
    again = _study(random_walk, horizons=(5,), seed=3).record
    other = _study(random_walk, horizons=(5,), seed=4).record
    assert first.equals(again)
    assert not first.equals(other)
    own = ["sentiment", "horizon", "headlines", "with_return", "mean_return_pct", "hit_rate"]
    assert first.select(own).equals(other.select(own))  # only the baseline changes
    assert first.column("baseline_mean_return_pct") != other.column("baseline_mean_return_pct")


# -- choices and refusals -----------------------------------------------------------------------


def test_the_timeframe_is_1m_if_the_dataset_has_it_else_its_shortest(tmp_path):
    news = [_news([("AAA", "a", _at(10, 30), 0.9)])]
    several = _lake(tmp_path / "a", [_bars("AAA", [1.0] * 60, step=NS_PER_S, timeframe="1s"),
                                     _bars("AAA", [1.0] * 60), _bars("AAA", [1.0] * 12,
                                     step=5 * MINUTE, timeframe="5m")], news)  # fmt: skip
    result = _study(several, horizons=(1,))
    assert (result.timeframe, result.timeframes) == ("1m", ("1s", "1m", "5m"))
    assert _study(several, horizons=(1,), timeframe="5m").timeframe == "5m"
    coarse = _lake(tmp_path / "b", [_bars("AAA", [1.0] * 12, step=5 * MINUTE, timeframe="5m"),
                                    _bars("AAA", [1.0] * 3, step=3600 * NS_PER_S,
                                          timeframe="1h")], news)  # fmt: skip
    assert _study(coarse, horizons=(1,)).timeframe == "5m"
    with pytest.raises(AnalyticsError, match=r"--timeframe: no 1d bars in dataset syn "
                                             r"\(it has: 5m, 1h\)"):  # fmt: skip
        _study(coarse, timeframe="1d")


def test_a_dataset_without_headlines_is_named_with_how_to_store_some(tmp_path):
    root = _lake(tmp_path, [_bars("AAA", [1.0] * 5)],
                 [_news([("AAA", "a", _at(10, 1), 0.9)], dataset="other")])  # fmt: skip
    with pytest.raises(AnalyticsError) as caught:
        _study(root)
    message = str(caught.value)
    assert message.startswith("no headlines of dataset syn in the lake at ")
    assert "holds datasets other" in message and "marketpulse news" in message


def test_symbols_named_without_bars_are_refused(tmp_path):
    root = _lake(tmp_path, [_bars("AAA", [1.0] * 5)], [_news([("AAA", "a", _at(10, 1), 0.9)])])
    with pytest.raises(AnalyticsError, match="--symbols: no 1m bars of ZZZ in dataset syn"):
        _study(root, symbols=("AAA", "ZZZ"))


@pytest.mark.parametrize(
    ("scope", "words"),
    [
        ({"positive": -0.1, "negative": 0.1}, "--cutoffs: expected -1 <= NEGATIVE < POSITIVE"),
        ({"positive": 1.5}, "--cutoffs"),
        ({"baseline": 0}, "--baseline: at least 1 random bar per headline"),
        ({"horizons": (0,)}, "--horizons: whole numbers of bars, at least 1"),
        ({"start": date(2023, 11, 15), "end": date(2023, 11, 14)}, "--end 2023-11-14 is before"),
    ],
)
def test_a_bad_scope_is_refused(scope, words):
    with pytest.raises(AnalyticsError, match=words):
        NewsScope(**scope)
