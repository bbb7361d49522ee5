"""`replay --adjust none|splits|all`: indicators on the adjusted prices of a Yahoo-layout file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .conftest import KAGGLE, LEAN_BARS

pytestmark = pytest.mark.integration

talib = pytest.importorskip("talib")

SPLIT_DAY = "1985-06-03"  # a 2:1 split of the raw prices before this day
YAHOO = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


@pytest.fixture(scope="module")
def tsx(tmp_path_factory):
    """The real S&P/TSX daily bars of 1979-1991 as a Yahoo file with a synthetic 2:1 split.

    Adj Close stays the index's true continuous series (where it differs from
    Close by up to 0.25%, as dividends would make it); Open, High, Low, Close
    before the split day are doubled and Volume halved, as a split leaves the
    raw columns of the days before it.
    """
    frame = pd.read_csv(KAGGLE)
    frame = frame[(frame["Index"] == "GSPTSE") & (frame["Date"] < "1991-07-12")]
    original = frame.sort_values("Date").reset_index(drop=True)
    raw = original.copy()
    before = raw["Date"] < SPLIT_DAY
    raw.loc[before, ["Open", "High", "Low", "Close"]] *= 2
    raw.loc[before, "Volume"] /= 2
    path = tmp_path_factory.mktemp("yahoo") / "TSX.csv"
    raw[YAHOO].to_csv(path, index=False)
    return path, raw, original


def _stored(sql, lake):
    """The lake's indicators in time order, as `marketpulse sql` reads them (NaN for null)."""
    rows = sql(lake, "SELECT * FROM indicators ORDER BY bar_start")
    frame = pd.DataFrame(rows)
    text = ["symbol", "timeframe", "bar_start", "bar_end", "dataset", "period"]
    return frame.astype({name: float for name in frame.columns if name not in text})


def _indicators(cli, sql, path, tmp_path, adjust):
    lake = tmp_path / f"lake-{adjust}"
    cli("replay", path, "--symbol", "TSX", "--adjust", adjust, "--lake", lake,
        "--alerts-file", tmp_path / "alerts.jsonl")  # fmt: skip
    return _stored(sql, lake)


def test_adjust_all_matches_talib_on_the_adjusted_series(cli_in_process, sql, tsx, tmp_path):
    path, raw, _ = tsx
    got = _indicators(cli_in_process, sql, path, tmp_path, "all")
    assert len(got) == len(raw)
    factor = raw["Adj Close"].to_numpy() / raw["Close"].to_numpy()
    high, low = raw["High"].to_numpy() * factor, raw["Low"].to_numpy() * factor
    close, volume = raw["Adj Close"].to_numpy(), raw["Volume"].to_numpy() / factor
    np.testing.assert_allclose(got["close"], close, rtol=1e-12)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    expected = {
        "sma_20": talib.SMA(close, 20), "ema_12": talib.EMA(close, 12),
        "ema_26": talib.EMA(close, 26), "rsi_14": talib.RSI(close, 14),
        "macd": macd, "macd_signal": signal, "macd_hist": hist,
        "bb_upper": upper, "bb_middle": middle, "bb_lower": lower,
        "atr_14": talib.ATR(high, low, close, 14), "volume_sma_20": talib.SMA(volume, 20),
    }  # fmt: skip
    for name, want in expected.items():
        warm = ~np.isnan(want)
        assert warm.sum() > len(raw) - 40, name
        ours = got[name].to_numpy(dtype=float)
        np.testing.assert_allclose(ours[warm], want[warm], rtol=1e-9, atol=0, err_msg=name)
    cut = int(np.searchsorted(raw["Date"].to_numpy(), SPLIT_DAY))
    assert 0.9 < close[cut] / close[cut - 1] < 1.1  # no jump where the split was


def test_adjust_none_shows_the_jump_and_splits_removes_only_it(cli_in_process, sql, tsx, tmp_path):
    path, raw, original = tsx
    cut = int(np.searchsorted(raw["Date"].to_numpy(), SPLIT_DAY))
    none = _indicators(cli_in_process, sql, path, tmp_path, "none")
    np.testing.assert_allclose(none["close"], raw["Close"], rtol=1e-15)
    assert none["close"][cut] / none["close"][cut - 1] < 0.55  # the raw prices halve
    # the 20-day average straddling the split is far above the prices after it
    assert none["sma_20"][cut + 5] > 1.3 * none["close"][cut + 5]
    splits = _indicators(cli_in_process, sql, path, tmp_path, "splits")
    # the split taken out, the dividends in Adj Close left: the index's own closes
    np.testing.assert_allclose(splits["close"], original["Close"], rtol=1e-15)
    assert not np.allclose(splits["close"], original["Adj Close"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(
        splits["sma_20"][19:], talib.SMA(original["Close"].to_numpy(), 20)[19:], rtol=1e-9
    )


def test_adjust_bad_uses(cli_in_process, tsx, tmp_path):
    path, _, _ = tsx
    lake = tmp_path / "lake"
    bad = cli_in_process(
        "replay", path, "--symbol", "TSX", "--adjust", "dividends", "--lake", lake, ok=False
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "--adjust" in bad.stderr and "dividends" in bad.stderr
    missing = cli_in_process("replay", LEAN_BARS, "--adjust", "all", "--lake", lake, ok=False)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1
    assert str(LEAN_BARS) in missing.stderr and "adjusted close" in missing.stderr
    backfill = cli_in_process("backfill", "--adjust", "splits", "--lake", lake, ok=False)
    assert backfill.returncode == 2 and backfill.stderr.count("\n") == 1
    assert "--adjust applies to --file" in backfill.stderr
    produce = cli_in_process("produce", "--feed", "simulator", "--adjust", "all", ok=False)
    assert produce.returncode == 2 and produce.stderr.count("\n") == 1
    assert "--adjust" in produce.stderr
    assert not lake.exists()  # nothing was written


def test_backfill_file_adjust_equals_replay(cli_in_process, sql, tsx, tmp_path):
    path, raw, _ = tsx
    replayed = _indicators(cli_in_process, sql, path, tmp_path, "all")
    lake = tmp_path / "batch"
    cli_in_process("backfill", "--file", path, "--symbol", "TSX", "--adjust", "all", "--lake", lake)
    batch = _stored(sql, lake)
    np.testing.assert_allclose(batch["close"], raw["Adj Close"], rtol=1e-12)
    for name in ("sma_20", "rsi_14", "macd_hist", "atr_14"):
        np.testing.assert_array_equal(batch[name], replayed[name], err_msg=name)


def test_produce_file_adjust_publishes_adjusted_bars(cli, tsx, kafka_bootstrap, topic_prefix):
    from marketpulse.models import decode_tick

    from .kafka_tools import create_topics, read_committed

    path, raw, _ = tsx
    topics = create_topics(kafka_bootstrap, topic_prefix)
    cli("produce", "--file", path, "--symbol", "TSX", "--adjust", "all",
        "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix)  # fmt: skip
    records = read_committed(kafka_bootstrap, topics.ticks)
    bars = sorted((decode_tick(value) for rows in records.values() for _, value, _ in rows),
                  key=lambda bar: bar.bar_start)  # fmt: skip
    assert len(bars) == len(raw)
    np.testing.assert_allclose([bar.close for bar in bars], raw["Adj Close"], rtol=1e-12)
