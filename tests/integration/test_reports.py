"""`marketpulse report`, `sql` and `lake ls` on the Kaggle index data replayed into the lake.

Expected figures are computed here with pandas straight from the CSV file.
"""

import csv
import io
import json
import math
import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.analytics import Lake
from marketpulse.analytics.reports import ReportRange, report

from .conftest import KAGGLE, marketpulse_in_process


def marketpulse(*args, cwd=None, env=None):
    """The command inside this process (what it prints, returns and writes; no start-up
    to pay in each of the file's 28 runs), in ``cwd`` or the test's working directory."""
    return marketpulse_in_process(*args, cwd=cwd or Path.cwd(), env=env)


pytestmark = pytest.mark.integration

START, END = "2019-01-01", "2020-12-31"


@pytest.fixture(scope="module")
def kaggle_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("kaggle")
    result = marketpulse("replay", KAGGLE, "--lake", root / "lake", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "lake"


@pytest.fixture(scope="module")
def period_lake(kaggle_lake):
    """The replayed lake (daily bars by decade: a few files, however long the history)."""
    return kaggle_lake


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
        assert vol[symbol]["return_days"] == len(returns)
        assert math.isclose(vol[symbol]["annualised_volatility_pct"],
                            100 * returns.std(ddof=1) * math.sqrt(252), rel_tol=1e-9)  # fmt: skip
        assert math.isclose(vol[symbol]["daily_volatility_pct"], 100 * returns.std(ddof=1),
                            rel_tol=1e-9)  # fmt: skip
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
    assert gainers == list(change[change > 0].index[::-1][:3])
    # 2019-2020: every index rose; the three that rose least are no losers
    assert (change > 0).all() and losers == []
    top = next(r for r in rows if r["symbol"] == gainers[0])
    assert math.isclose(top["return_pct"], 100 * change.iloc[-1], rel_tol=1e-12)


def test_report_command_writes_csv(period_lake, opened):
    result = marketpulse("report", "volatility", "--start", START, "--end", END, "--symbols",
                         "NYA,IXIC", "--lake", period_lake, "--format", "csv")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["symbol"] for r in rows] == ["IXIC", "NYA"]  # most volatile first
    expected = {r["symbol"]: r for r in _report(opened, "volatility", ("NYA", "IXIC"))}
    for row in rows:
        assert float(row["annualised_volatility_pct"]) == expected[row["symbol"]][
            "annualised_volatility_pct"]  # fmt: skip


def test_report_errors_name_the_option(period_lake):
    result = marketpulse("report", "daily", "--start", "2020-02-30", "--end", END,
                         "--lake", period_lake)  # fmt: skip
    assert result.returncode == 2
    assert "--start: expected a date YYYY-MM-DD, got '2020-02-30'" in result.stderr
    result = marketpulse("report", "movers", "--start", "2030-01-01", "--end", "2030-02-01",
                         "--lake", period_lake)  # fmt: skip
    assert result.returncode == 2
    assert "error: no bars between 2030-01-01 and 2030-02-01" in result.stderr


def test_lake_ls_counts_the_replayed_rows_by_decade(period_lake):
    everything = pd.read_csv(KAGGLE, parse_dates=["Date"])
    result = marketpulse("lake", "ls", "bars", "--lake", period_lake, "--format", "json")
    assert result.returncode == 0, result.stderr
    partitions = json.loads(result.stdout)
    assert sum(p["rows"] for p in partitions) == len(everything)
    decades = sorted({f"{year - year % 10}-01-01" for year in everything.Date.dt.year})
    assert [p["period"] for p in partitions] == decades
    assert {(p["dataset"], p["timeframe"]) for p in partitions} == {("indexProcessed", "1d")}
    assert len(list(period_lake.rglob("*.parquet"))) <= 100  # issue 19's target


def test_lake_ls_table_is_for_people_json_is_whole(period_lake):
    table = marketpulse("lake", "ls", "--lake", period_lake)
    whole = marketpulse("lake", "ls", "--lake", period_lake, "--format", "json")
    assert table.returncode == whole.returncode == 0, table.stderr + whole.stderr
    bars = next(r for r in json.loads(whole.stdout) if r["table"] == "bars")
    row = next(r for r in _table_rows(table.stdout) if r["table"] == "bars")
    assert row["rows"] == f"{bars['rows']:,}" and "," in row["rows"]
    number, unit = row["bytes"].split()
    assert unit in ("kB", "MB") and math.isclose(
        float(number) * {"kB": 1e3, "MB": 1e6}[unit], bars["bytes"], rel_tol=0.06)  # fmt: skip


def _number(text):
    """A number of the command's table output (thousands separators)."""
    return float(text.replace(",", ""))


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
    # 2020: two indexes fell; the next three rose, and are no losers
    rose, fell = change[change > 0], change[change < 0]
    assert len(fell) < 5 < len(rose)
    assert [r["symbol"] for r in rows if r["side"] == "gainer"] == list(rose.index[::-1][:5])
    assert [r["symbol"] for r in rows if r["side"] == "loser"] == list(fell.index)
    for row in rows:  # percent, every digit
        assert math.isclose(row["return_pct"], 100 * change[row["symbol"]], rel_tol=1e-12)
    (note,) = result.stderr.strip().splitlines()
    assert note.startswith("note: ") and f"only {len(fell)} symbols fell" in note


def test_report_movers_table_shows_signed_percentages(period_lake, kaggle):
    result = marketpulse("report", "movers", "--start", "2020-01-01", "--end", "2020-12-31",
                         "--top", "2", "--symbols", "IXIC,HSI", "--lake", period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    year = kaggle[kaggle.Date >= "2020-01-01"].sort_values("Date").groupby("Index").Close
    change = 100 * (year.last() / year.first() - 1)
    rows = {r["symbol"]: r for r in _table_rows(result.stdout)}
    assert rows["IXIC"]["side"] == "gainer" and rows["HSI"]["side"] == "loser"
    assert rows["IXIC"]["return_pct"] == f"+{change['IXIC']:.2f} %"
    assert rows["HSI"]["return_pct"] == f"-{-change['HSI']:.2f} %"
    note = result.stderr.strip()
    assert "only 1 symbol rose" in note and "only 1 symbol fell" in note


def test_report_movers_with_no_losers_says_so(period_lake, kaggle):
    result = marketpulse("report", "movers", "--start", "2020-01-01", "--end", "2020-12-31",
                         "--symbols", "IXIC,TWII", "--format", "csv", "--lake",
                         period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["side"] for r in rows} == {"gainer"}
    assert all(float(r["return_pct"]) > 0 for r in rows)
    assert "no symbol fell, so no losers" in result.stderr


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
        # the table shows 7 significant digits (CSV and JSON keep every one)
        assert math.isclose(_number(row["correlation"]), joined.corr().iloc[0, 1], rel_tol=6e-7)


def test_report_daily_command_as_documented(period_lake, kaggle):
    result = marketpulse("report", "daily", "--start", "2020-01-01", "--end", "2020-12-31",
                         "--symbols", "NYA,IXIC", "--lake", period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = _table_rows(result.stdout)
    year = kaggle[(kaggle.Date >= "2020-01-01") & kaggle.Index.isin(["NYA", "IXIC"])]
    assert len(rows) == len(year) > 400
    expected = year.sort_values(["Index", "Date"]).iloc[0]
    assert (rows[0]["symbol"], rows[0]["date"]) == (expected.Index, "2020-01-02")
    assert math.isclose(_number(rows[0]["close"]), expected.Close, rel_tol=6e-7)


def test_report_volatility_to_a_file_as_documented(period_lake, opened, tmp_path):
    result = marketpulse("report", "volatility", "--start", START, "--end", END, "--format",
                         "csv", "-o", "vol.csv", "--lake", period_lake, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "vol.csv").open()))
    expected = {r["symbol"]: r["annualised_volatility_pct"] for r in _report(opened, "volatility")}
    assert {r["symbol"]: float(r["annualised_volatility_pct"]) for r in rows} == expected


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


def test_sql_json_and_csv_times_are_iso_utc(period_lake, kaggle):
    query = (
        "SELECT symbol, timeframe, bar_start, bar_end, close FROM bars "
        "WHERE symbol = 'NYA' AND bar_start >= '2020-01-01' ORDER BY bar_start LIMIT 3"
    )
    as_json = marketpulse("sql", query, "--lake", period_lake, "--format", "json")
    as_csv = marketpulse("sql", query, "--lake", period_lake, "--format", "csv")
    assert as_json.returncode == as_csv.returncode == 0, as_json.stderr + as_csv.stderr
    rows = json.loads(as_json.stdout)
    nya = kaggle[(kaggle.Index == "NYA") & (kaggle.Date >= "2020-01-01")].sort_values("Date")
    days = [d.date() for d in nya.Date[:3]]
    assert [r["bar_start"] for r in rows] == [f"{d}T00:00:00Z" for d in days]
    assert [r["bar_end"] for r in rows] == [f"{d + timedelta(days=1)}T00:00:00Z" for d in days]
    assert [r["close"] for r in rows] == list(nya.Close[:3])  # every digit
    assert list(csv.DictReader(io.StringIO(as_csv.stdout))) == [
        {k: str(v) for k, v in r.items()} for r in rows]  # fmt: skip


def test_sql_alert_details_are_json_objects(period_lake):
    result = marketpulse("sql", "SELECT rule, details FROM alerts ORDER BY bar_start, rule LIMIT 5",
                         "--lake", period_lake, "--format", "json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(isinstance(r["details"], dict) and r["details"] for r in rows)
    assert all(isinstance(v, float | int) for r in rows for v in r["details"].values())


def test_sql_table_is_not_wrapped_when_piped(period_lake):
    result = marketpulse("sql", "SELECT * FROM bars_with_indicators LIMIT 3", "--lake",
                         period_lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5  # header, rule, three rows: one line each
    assert min(len(line) for line in lines) > 200
    assert lines[0].split()[:4] == ["dataset", "symbol", "timeframe", "bar_start"]


@pytest.fixture(scope="module")
def two_datasets(kaggle_lake, tmp_path_factory):
    """The Kaggle lake plus a second dataset: NYA and IXIC of 2020 at ten times the prices."""
    root = tmp_path_factory.mktemp("two")
    shutil.copytree(kaggle_lake, root / "lake")
    frame = pd.read_csv(KAGGLE)
    tenfold = frame[frame.Index.isin(["NYA", "IXIC"]) & (frame.Date >= "2020-01-01")
                    & (frame.Date <= "2020-12-31")].copy()  # fmt: skip
    for column in ("Open", "High", "Low", "Close", "Adj Close", "CloseUSD"):
        tenfold[column] *= 10
    tenfold.to_csv(root / "tenfold.csv", index=False)
    result = marketpulse("replay", root / "tenfold.csv", "--lake", root / "lake", cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "lake", tenfold


def test_a_report_reads_one_dataset_never_both(two_datasets, kaggle):
    lake, tenfold = two_datasets
    args = ("report", "daily", "--start", "2020-01-01", "--end", "2020-12-31", "--symbols",
            "NYA", "--format", "json", "--lake", lake)  # fmt: skip
    ten = marketpulse(*args, "--dataset", "tenfold")
    one = marketpulse(*args, "--dataset", "indexProcessed")
    assert ten.returncode == one.returncode == 0, ten.stderr + one.stderr
    nya = kaggle[(kaggle.Index == "NYA") & (kaggle.Date >= "2020-01-01")].sort_values("Date")
    for rows, factor in ((json.loads(ten.stdout), 10), (json.loads(one.stdout), 1)):
        assert [r["date"] for r in rows] == [d.date().isoformat() for d in nya.Date]
        assert all(r["bars"] == 1 for r in rows)  # no day made of both datasets' bars
        assert [r["volume"] for r in rows] == list(nya.Volume)
        for row, close in zip(rows, nya.Close, strict=True):
            assert math.isclose(row["close"], close * factor, rel_tol=1e-12)
    assert len(tenfold[tenfold.Index == "NYA"]) == len(nya)


def test_a_report_without_dataset_names_them_when_several(two_datasets):
    lake, _ = two_datasets
    result = marketpulse("report", "movers", "--start", START, "--end", END, "--lake", lake)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line == ("error: the lake holds 2 datasets (indexProcessed, tenfold): "
                    "choose one with --dataset")  # fmt: skip
    result = marketpulse("report", "movers", "--start", START, "--end", END, "--lake", lake,
                         env={"MARKETPULSE_DATASET": "tenfold"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r["symbol"] for r in _table_rows(result.stdout)} == {"NYA", "IXIC"}


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("nope", "--dataset: no bars of dataset 'nope' (the lake has: indexProcessed, tenfold)"),
        ("bad name", "--dataset: 'bad name' is not a dataset name"),
    ],
)
def test_a_report_of_a_bad_dataset_is_one_line(two_datasets, dataset, message):
    lake, _ = two_datasets
    result = marketpulse("report", "movers", "--start", START, "--end", END, "--lake", lake,
                         "--dataset", dataset)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}"), line


def test_sql_dataset_scopes_every_table_it_reads(two_datasets):
    lake, tenfold = two_datasets
    views = ("trades", "quotes", "bars", "indicators", "alerts", "dlq", "custom",
             "bars_with_indicators")  # fmt: skip
    query = " UNION ALL ".join(f"SELECT '{v}' AS t, dataset FROM {v}" for v in views)
    query = f"SELECT t, dataset, count(*) AS n FROM ({query}) GROUP BY ALL ORDER BY ALL"
    scoped = marketpulse("sql", "--dataset", "tenfold", query, "--lake", lake, "--format", "json")
    assert scoped.returncode == 0, scoped.stderr
    assert scoped.stderr == ""  # scoped: nothing mixed, no note
    rows = json.loads(scoped.stdout)
    assert {r["dataset"] for r in rows} == {"tenfold"}
    counts = {r["t"]: r["n"] for r in rows}
    assert counts["bars"] == counts["indicators"] == counts["bars_with_indicators"]
    assert counts["bars"] == len(tenfold)  # the tenfold file's daily bars, and no other
    assert counts["alerts"] > 0


def test_sql_mixing_datasets_says_so_on_standard_error_only(two_datasets):
    lake, _ = two_datasets
    query = "SELECT symbol, count(*) AS bars FROM bars WHERE symbol = 'NYA' GROUP BY 1"
    mixed = marketpulse("sql", query, "--lake", lake, "--format", "csv")
    assert mixed.returncode == 0, mixed.stderr
    rows = list(csv.DictReader(io.StringIO(mixed.stdout)))  # standard output: the CSV alone
    assert [r["symbol"] for r in rows] == ["NYA"]
    (note,) = mixed.stderr.strip().splitlines()
    assert note.startswith("note: ") and "--dataset" in note
    assert "(indexProcessed, tenfold)" in note
    scoped = marketpulse("sql", "--dataset", "indexProcessed", query, "--lake", lake,
                         "--format", "csv")  # fmt: skip
    assert scoped.returncode == 0 and scoped.stderr == "", scoped.stderr
    # tenfold holds NYA's 2020 bars a second time: the unscoped count mixed them in
    (one,) = csv.DictReader(io.StringIO(scoped.stdout))
    assert int(rows[0]["bars"]) > int(one["bars"])
    named = marketpulse("sql", "SELECT dataset, count(*) AS n FROM bars GROUP BY 1", "--lake",
                        lake)  # fmt: skip
    assert named.returncode == 0 and named.stderr == "", named.stderr


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("nope", "--dataset: no dataset 'nope' in the lake (it holds: indexProcessed, tenfold)"),
        ("bad name", "--dataset: 'bad name' is not a dataset name"),
    ],
)
def test_sql_of_a_bad_dataset_is_one_line(two_datasets, dataset, message):
    lake, _ = two_datasets
    result = marketpulse("sql", "--dataset", dataset, "SELECT 1", "--lake", lake)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {message}"), line
