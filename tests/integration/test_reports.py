"""`marketpulse report` and `marketpulse lake` on the Kaggle index data replayed into the lake.

Expected figures are computed here with pandas straight from the CSV file.
"""

import csv
import io
import json
import math
import re
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pytest

from marketpulse.analytics import Lake
from marketpulse.analytics.reports import ReportRange, report

from .conftest import KAGGLE, marketpulse

pytestmark = pytest.mark.integration

START, END = "2019-01-01", "2020-12-31"


@pytest.fixture(scope="module")
def kaggle_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle")
    result = marketpulse("replay", KAGGLE, "--lake", root / "lake", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "lake"


@pytest.fixture(scope="module")
def period_lake(kaggle_lake, tmp_path_factory):
    """The replayed lake's bars of the report period alone, for the commands' tests.

    Each command lists and reads the schema of every file of the lake (15,000 a
    table for the whole Kaggle history); the period holds a few hundred.
    """
    root = tmp_path_factory.mktemp("period") / "lake"
    for source in sorted((kaggle_lake / "bars").iterdir()):
        if START <= source.name.removeprefix("date=") <= END:
            shutil.copytree(source, root / "bars" / source.name)
    return root


@pytest.fixture(scope="module")
def kaggle():
    frame = pd.read_csv(KAGGLE, parse_dates=["Date"])
    return frame[(frame.Date >= START) & (frame.Date <= END)]


@pytest.fixture(scope="module")
def opened(period_lake):
    with Lake(period_lake) as lake:
        yield lake


def _report(lake, name, symbols=(), top=10):
    """Rows of a report (through the library: each command would list 15,000 files again)."""
    scope = ReportRange(date.fromisoformat(START), date.fromisoformat(END), symbols, "1d", top)
    return report(lake, name, scope).to_pylist()


def _log_returns(kaggle, symbol):
    closes = kaggle[kaggle.Index == symbol].sort_values("Date").set_index("Date").Close
    return np.log(closes / closes.shift(1)).dropna()


def test_daily_is_the_file_s_ohlc(opened, kaggle):
    rows = _report(opened, "daily", ("NYA", "N225"))
    expected = kaggle[kaggle.Index.isin(["NYA", "N225"])].sort_values(["Index", "Date"])
    assert len(rows) == len(expected) > 400
    for row, (_, want) in zip(rows, expected.iterrows(), strict=True):
        assert (row["symbol"], row["date"]) == (want.Index, want.Date.date())
        assert [row["open"], row["high"], row["low"], row["close"], row["volume"]] == [
            want.Open, want.High, want.Low, want.Close, want.Volume]  # fmt: skip


def test_volatility_and_correlation_match_pandas(opened, kaggle):
    vol = {r["symbol"]: r for r in _report(opened, "volatility")}
    assert len(vol) == kaggle.Index.nunique()
    for symbol in ("NYA", "IXIC", "HSI"):
        returns = _log_returns(kaggle, symbol)
        assert vol[symbol]["returns"] == len(returns)
        assert math.isclose(vol[symbol]["annualised_volatility"],
                            returns.std(ddof=1) * math.sqrt(252), rel_tol=1e-9)  # fmt: skip
    pairs = _report(opened, "correlation", ("NYA", "IXIC", "GDAXI"))
    assert [(p["symbol_a"], p["symbol_b"]) for p in pairs] == [
        ("GDAXI", "IXIC"), ("GDAXI", "NYA"), ("IXIC", "NYA")]  # fmt: skip
    joined = pd.concat([_log_returns(kaggle, "IXIC"), _log_returns(kaggle, "NYA")], axis=1,
                       join="inner")  # fmt: skip
    assert pairs[2]["days"] == len(joined)
    assert math.isclose(pairs[2]["correlation"], joined.corr().iloc[0, 1], rel_tol=1e-9)


def test_movers_rank_period_returns(opened, kaggle):
    rows = _report(opened, "movers", top=3)
    ordered = kaggle.sort_values("Date").groupby("Index").Close
    change = (ordered.last() / ordered.first() - 1).sort_values()
    gainers = [r["symbol"] for r in rows if r["side"] == "gainer"]
    losers = [r["symbol"] for r in rows if r["side"] == "loser"]
    assert gainers == list(change.index[::-1][:3])
    assert losers == list(change.index[:3])
    top = next(r for r in rows if r["symbol"] == gainers[0])
    assert math.isclose(top["return"], change.iloc[-1], rel_tol=1e-12)


def test_report_command_writes_csv(period_lake, opened):
    result = marketpulse("report", "volatility", "--start", START, "--end", END, "--symbols",
                         "NYA,IXIC", "--lake", period_lake, "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["symbol"] for r in rows] == ["IXIC", "NYA"]  # most volatile first
    expected = {r["symbol"]: r for r in _report(opened, "volatility", ("NYA", "IXIC"))}
    for row in rows:
        assert float(row["annualised_volatility"]) == expected[row["symbol"]][
            "annualised_volatility"]  # fmt: skip


def test_report_errors_name_the_option(period_lake):
    result = marketpulse("report", "daily", "--start", "2020-02-30", "--end", END,
                         "--lake", period_lake)  # fmt: skip
    assert result.returncode == 2
    assert "--start: expected a date YYYY-MM-DD, got '2020-02-30'" in result.stderr
    result = marketpulse("report", "movers", "--start", "2030-01-01", "--end", "2030-02-01",
                         "--lake", period_lake)  # fmt: skip
    assert result.returncode == 2
    assert "error: no bars between 2030-01-01 and 2030-02-01" in result.stderr


def test_lake_ls_counts_the_replayed_rows(period_lake, kaggle):
    result = marketpulse("lake", "ls", "bars", "--lake", period_lake, "--format", "json")
    assert result.returncode == 0, result.stderr
    partitions = json.loads(result.stdout)
    assert sum(p["rows"] for p in partitions) == len(kaggle)
    assert [p["date"] for p in partitions] == sorted(
        d.date().isoformat() for d in kaggle.Date.unique())  # fmt: skip
    assert all(p["files"] == 1 and p["bytes"] > 0 for p in partitions)


def _table_rows(text):
    """Rows of the command's table output (columns apart by two spaces or more)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split()
    assert set(lines[1]) <= {"-", " "}
    return [dict(zip(header, re.split(r"\s{2,}", line.strip()), strict=True)) for line in lines[2:]]


def test_report_movers_command_as_documented(period_lake, kaggle):
    result = marketpulse("report", "movers", "--start", "2020-01-01", "--end", "2020-12-31",
                         "--top", "5", "--format", "json", "--lake", period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    year = kaggle[kaggle.Date >= "2020-01-01"].sort_values("Date").groupby("Index").Close
    change = (year.last() / year.first() - 1).sort_values()
    assert [r["symbol"] for r in rows if r["side"] == "gainer"] == list(change.index[::-1][:5])
    assert [r["symbol"] for r in rows if r["side"] == "loser"] == list(change.index[:5])
    for row in rows:
        assert math.isclose(row["return"], change[row["symbol"]], rel_tol=1e-12)


def test_report_correlation_command_as_documented(period_lake, kaggle):
    result = marketpulse("report", "correlation", "--start", START, "--end", END,
                         "--symbols", "NYA,IXIC,GDAXI", "--lake", period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    assert [(r["symbol_a"], r["symbol_b"]) for r in rows] == [
        ("GDAXI", "IXIC"), ("GDAXI", "NYA"), ("IXIC", "NYA")]  # fmt: skip
    for row in rows:
        pair = [_log_returns(kaggle, row["symbol_a"]), _log_returns(kaggle, row["symbol_b"])]
        joined = pd.concat(pair, axis=1, join="inner")
        assert int(row["days"]) == len(joined)
        assert math.isclose(float(row["correlation"]), joined.corr().iloc[0, 1], rel_tol=1e-9)


def test_report_daily_command_as_documented(period_lake, kaggle):
    result = marketpulse("report", "daily", "--start", "2020-01-01", "--end", "2020-12-31",
                         "--symbols", "NYA,IXIC", "--lake", period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    year = kaggle[(kaggle.Date >= "2020-01-01") & kaggle.Index.isin(["NYA", "IXIC"])]
    assert len(rows) == len(year) > 400
    expected = year.sort_values(["Index", "Date"]).iloc[0]
    assert (rows[0]["symbol"], rows[0]["date"]) == (expected.Index, "2020-01-02")
    assert math.isclose(float(rows[0]["close"]), expected.Close, rel_tol=1e-6)


def test_report_volatility_to_a_file_as_documented(period_lake, opened, tmp_path):
    result = marketpulse("report", "volatility", "--start", START, "--end", END, "--format",
                         "csv", "-o", "vol.csv", "--lake", period_lake, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "vol.csv").open()))
    expected = {r["symbol"]: r["annualised_volatility"] for r in _report(opened, "volatility")}
    assert {r["symbol"]: float(r["annualised_volatility"]) for r in rows} == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["correlation", "--symbols", "NYA"], "--symbols: correlation needs two symbols or more"),
        (
            ["correlation", "--symbols", "NYA,NOPE"],
            f"--symbols: no 1d bars of NOPE between {START}",
        ),
        (["movers", "--symbols", "XX,IXIC"], "--symbols: no 1d bars of XX between"),
        (["daily", "--interval", "1m"], f"no 1m bars between {START} and {END}"),
    ],
)
def test_report_bad_use_is_one_line(period_lake, args, message):
    result = marketpulse("report", *args, "--start", START, "--end", END, "--lake", period_lake)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}"), line
