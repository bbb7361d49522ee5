"""Corporate actions: bar files replayed with ``adjust="none" | "splits" | "all"``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from marketpulse.exceptions import InputError
from marketpulse.feeds import FileReplay
from marketpulse.feeds.adjust import split_ratios

from .conftest import KAGGLE_BARS

YAHOO_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]


def _read(path, **options) -> tuple[pa.Table, list]:
    batches = list(FileReplay(path, **options).batches())
    return pa.Table.from_batches([b.data for b in batches]), [d for b in batches for d in b.dead]


@pytest.fixture(scope="module")
def gsptse() -> pd.DataFrame:
    """The real S&P/TSX daily bars, 1979-1991: Adj Close differs from Close by up to 0.25%."""
    frame = pd.read_csv(KAGGLE_BARS)
    frame = frame[(frame["Index"] == "GSPTSE") & (frame["Date"] < "1991-07-12")]
    frame = frame.sort_values("Date").reset_index(drop=True)
    assert (frame["Adj Close"] != frame["Close"]).mean() > 0.9  # dividends are in the factor
    return frame


def _with_splits(frame: pd.DataFrame, splits: dict[str, float]) -> pd.DataFrame:
    """Raw prices as if the index had split by ``ratio`` on each date (Adj Close unchanged)."""
    out = frame.copy()
    for date, ratio in splits.items():
        before = out["Date"] < date
        for column in ("Open", "High", "Low", "Close"):
            out.loc[before, column] *= ratio
        out.loc[before, "Volume"] /= ratio
    return out


@pytest.mark.parametrize(
    ("change", "ratio"),
    [(2.0, 2.0), (1.5, 1.5), (0.1, 0.1), (1 / 3, 1 / 3), (4 / 3, 4 / 3), (1.1, 1.1),
     (20.0, 20.0), (2.0015, 2.0), (0.49985, 0.5)],
)  # fmt: skip
def test_split_ratios_are_simple_fractions(change, ratio):
    assert split_ratios(np.array([change]))[0] == pytest.approx(ratio, rel=1e-15)


@pytest.mark.parametrize("change", [1.0, 1.0008, 1.02, 0.97, 1.2345, 2.003, 1 / 2.003, 101.0])
def test_other_changes_are_not_splits(change):
    assert np.isnan(split_ratios(np.array([change]))[0])


def test_all_scales_every_price_by_the_adjusted_close(gsptse, tmp_path):
    path = tmp_path / "GSPTSE.csv"
    gsptse[YAHOO_COLUMNS].to_csv(path, index=False)
    data, dead = _read(path, symbol="GSPTSE", adjust="all")
    raw, _ = _read(path, symbol="GSPTSE")
    assert dead == [] and data.num_rows == raw.num_rows == len(gsptse)
    factor = gsptse["Adj Close"].to_numpy() / gsptse["Close"].to_numpy()
    np.testing.assert_allclose(data["close"], gsptse["Adj Close"], rtol=1e-15)
    for column in ("open", "high", "low"):
        np.testing.assert_allclose(data[column], raw[column].to_numpy() * factor, rtol=1e-15)
    np.testing.assert_allclose(
        data["volume"].to_numpy() * data["close"].to_numpy(),
        raw["volume"].to_numpy() * raw["close"].to_numpy(),
        rtol=1e-12,
    )  # dollar volume kept
    assert not np.allclose(data["close"], raw["close"], rtol=1e-6, atol=0)


def test_splits_leave_the_dividends_out(gsptse, tmp_path):
    """A 2:1 split and a 1:10 reverse split; the dividends in the factor are not applied."""
    path = tmp_path / "GSPTSE.csv"
    split = _with_splits(gsptse, {"1985-06-03": 2.0, "1988-01-04": 0.1})
    split[YAHOO_COLUMNS].to_csv(path, index=False)
    none, _ = _read(path, symbol="GSPTSE", adjust="none")
    data, dead = _read(path, symbol="GSPTSE", adjust="splits")
    assert dead == []
    # none: the raw prices jump at each split
    np.testing.assert_allclose(none["close"], split["Close"], rtol=1e-15)
    # splits: the prices without the splits, i.e. the file's original raw prices
    for ours, theirs in (("open", "Open"), ("high", "High"), ("low", "Low"), ("close", "Close")):
        np.testing.assert_allclose(data[ours], gsptse[theirs], rtol=1e-15, err_msg=ours)
    np.testing.assert_allclose(data["volume"], gsptse["Volume"], rtol=1e-12)
    assert not np.allclose(data["close"], gsptse["Adj Close"], rtol=1e-6, atol=0)


def test_splits_of_each_symbol_in_a_file_with_symbols(gsptse, tmp_path):
    other = gsptse.assign(Index="OTHER")
    split = _with_splits(gsptse, {"1985-06-03": 3 / 2})
    both = pd.concat([split, other])
    path = tmp_path / "two.csv"
    both[["Index", *YAHOO_COLUMNS]].to_csv(path, index=False)
    data, _ = _read(path, adjust="splits")
    frame = data.to_pandas()
    for symbol in ("GSPTSE", "OTHER"):
        close = frame.loc[frame["symbol"] == symbol, "close"].to_numpy()
        np.testing.assert_allclose(close, gsptse["Close"], rtol=1e-15, err_msg=symbol)


def test_a_bad_adjusted_close_costs_its_row(write_file):
    path = write_file(
        "SPY.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2021-06-01,422.5,422.7,418.1,419.6,411.5,54216600\n"
        "2021-06-02,420.3,421.2,419.2,420.3,n/a,49097100\n"
        "2021-06-03,417.8,419.9,416.2,418.7,-1,58138800\n"
        "2021-06-04,417.8,419.9,416.2,418.7,410.6,58138800\n",
    )
    data, dead = _read(path, symbol="SPY", adjust="all")
    assert data["line"].to_pylist() == [2, 5]
    assert [(d.line, d.reason) for d in dead] == [(3, "parse"), (4, "parse")]
    assert "adj_close" in dead[0].error and "adj_close" in dead[1].error
    raw, raw_dead = _read(path, symbol="SPY")  # without --adjust the column is not read
    assert raw.num_rows == 4 and raw_dead == []


def test_adjust_needs_an_adjusted_close(write_file, lean_trades):
    path = write_file("bars.csv", "Date,Open,High,Low,Close,Volume\n2021-06-01,1,2,0.5,1.5,10\n")
    with pytest.raises(InputError, match=r"bars\.csv: --adjust all needs an adjusted close"):
        FileReplay(path, symbol="X", adjust="all")
    with pytest.raises(InputError, match="applies to bar files"):
        FileReplay(lean_trades, adjust="splits")
    with pytest.raises(ValueError, match="adjust must be one of none, splits, all"):
        FileReplay(path, symbol="X", adjust="dividends")


def test_a_mapped_adjusted_close(write_file):
    path = write_file("x.csv", "Date,Open,High,Low,Close,adjusted_px\n2021-06-01,10,12,8,10,5\n")
    data, _ = _read(path, symbol="X", adjust="all", columns={"adjusted_px": "adj_close"})
    row = data.to_pylist()[0]
    assert (row["open"], row["high"], row["low"], row["close"]) == (5.0, 6.0, 4.0, 5.0)


def test_the_replay_identity_names_the_mode(gsptse, tmp_path):
    path = tmp_path / "GSPTSE.csv"
    gsptse[YAHOO_COLUMNS].head(5).to_csv(path, index=False)
    identities = {FileReplay(path, symbol="G", adjust=m).identity() for m in ("none", "all")}
    assert len(identities) == 2


def test_parquet_bars_with_an_adjusted_close(gsptse, tmp_path):
    path = tmp_path / "GSPTSE.parquet"
    gsptse[YAHOO_COLUMNS].to_parquet(path, index=False)  # Adj Close as double
    data, dead = _read(path, symbol="GSPTSE", adjust="all")
    assert dead == [] and data.num_rows == len(gsptse)
    np.testing.assert_allclose(data["close"], gsptse["Adj Close"], rtol=1e-15)
