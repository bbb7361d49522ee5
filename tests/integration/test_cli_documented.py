"""README commands without a test elsewhere: their documented use and a bad use."""

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


YAHOO = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,187.15,188.44,183.89,185.64,185.40,82488700\n"
    "2024-01-03,184.22,185.88,183.43,184.25,184.00,58414500\n"
    "2024-01-04,182.15,183.09,180.88,181.91,181.60,71983600\n"
)


def _one_line(result, *words):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    for word in words:
        assert word in line, (word, line)


def test_replay_yahoo_file_with_symbol(cli, sql, tmp_path):
    # marketpulse replay AAPL.csv --symbol AAPL   # Yahoo layout
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    cli("replay", "AAPL.csv", "--symbol", "AAPL", "--lake", "lake")
    rows = sql(
        tmp_path / "lake", "SELECT dataset, symbol, close, volume FROM bars ORDER BY bar_start"
    )
    assert rows == [  # the file's name is the dataset
        {"dataset": "AAPL", "symbol": "AAPL", "close": 185.64, "volume": 82488700.0},
        {"dataset": "AAPL", "symbol": "AAPL", "close": 184.25, "volume": 58414500.0},
        {"dataset": "AAPL", "symbol": "AAPL", "close": 181.91, "volume": 71983600.0},
    ]


def test_replay_yahoo_file_without_symbol_names_the_option(cli, tmp_path):
    (tmp_path / "AAPL.csv").write_text(YAHOO)
    _one_line(cli("replay", "AAPL.csv", "--lake", "lake", ok=False), "AAPL.csv", "--symbol")
    assert not (tmp_path / "lake" / "bars").exists()


def test_sql_to_a_parquet_file(cli, sql, tmp_path):
    # marketpulse sql "SELECT * FROM indicators WHERE period = ..." --format parquet -o ind.parquet
    cli("replay", LEAN_TRADES, "--lake", "lake", "--intervals", "1m")
    query = "SELECT * FROM indicators WHERE period = '2013-10-07'"
    cli("sql", query, "--lake", "lake", "--format", "parquet", "-o", "ind.parquet")
    table = pq.read_table(tmp_path / "ind.parquet")
    counted = sql(tmp_path / "lake", f"SELECT count(*) AS n FROM ({query})")[0]["n"]
    assert table.num_rows == counted > 1000
    assert "rsi_14" in table.column_names


def test_sql_parquet_without_a_file_is_refused(cli, tmp_path):
    (tmp_path / "lake").mkdir()
    _one_line(cli("sql", "SELECT 1", "--lake", "lake", "--format", "parquet", ok=False), "parquet")


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--feed", "polygon", "--tickers", "AAPL", "--history", "2024-13-01"],
         {"MARKETPULSE_POLYGON_KEY": "k"}, ["--history", "2024-13-01"]),
        (["--feed", "alphavantage", "--tickers", "IBM", "--rate-limit", "fast"],
         {"MARKETPULSE_ALPHAVANTAGE_KEY": "k"}, ["--rate-limit", "fast"]),
        (["--data-feed", "iex"], {}, ["--data-feed", "live vendor"]),
        (["--feed", "polygon", "--tickers", "AAPL"], {}, ["MARKETPULSE_POLYGON_KEY"]),
    ],
)  # fmt: skip
def test_live_feed_options_misused_are_one_line(cli, tmp_path, args, env, words):
    result = cli("run", *args, "--no-dashboard", "--lake", "lake", ok=False, env=env)
    _one_line(result, *words)
    assert not (tmp_path / "lake").exists()


def _renamed_ticks(path):
    table = pa.table({
        "time": pa.array([1_381_152_600_000, 1_381_152_601_000, 1_381_152_602_500],
                         pa.timestamp("ms")),
        "ticker": ["SPY", "AIG", "SPY"], "px": [168.9, 50.25, 169.0], "qty": [100.0, 200.0, 300.0],
    })  # fmt: skip
    pq.write_table(table, path)
    return table


def test_replay_parquet_with_columns(cli, sql, tmp_path):
    # marketpulse replay ticks.parquet --columns "px=price,qty=size,ticker=symbol,time=timestamp"
    table = _renamed_ticks(tmp_path / "ticks.parquet")
    mapping = "px=price,qty=size,ticker=symbol,time=timestamp"
    cli("replay", "ticks.parquet", "--columns", mapping, "--lake", "lake")
    rows = sql(tmp_path / "lake", "SELECT symbol, ts, price, size FROM trades ORDER BY ts")
    assert [(r["symbol"], r["price"], r["size"]) for r in rows] == list(
        zip(*(table.column(c).to_pylist() for c in ("ticker", "px", "qty")), strict=True)
    )
    stored = [datetime.fromisoformat(r["ts"]) for r in rows]
    assert stored == [t.as_py().replace(tzinfo=UTC) for t in table.column("time")]


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        ("px:price", ["--columns", "'px:price'"]),
        ("px=cost,qty=size", ["ticks.parquet", "unknown column 'cost'"]),
    ],
)  # fmt: skip
def test_replay_parquet_with_bad_columns(cli, tmp_path, mapping, words):
    _renamed_ticks(tmp_path / "ticks.parquet")
    _one_line(cli("replay", "ticks.parquet", "--columns", mapping, "--lake", "lake", ok=False),
              *words)  # fmt: skip
    assert not (tmp_path / "lake").exists()
