import csv
import gzip
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from marketpulse.feeds import FileReplay, detect_format
from marketpulse.models import BAR_SCHEMA, TRADE_SCHEMA

DAY_NS = 86_400 * 10**9
FIRST_TS = 1381132800464000000  # 2013-10-07T08:00:00.464Z
LAST_TS = 1381190399536000000  # 2013-10-07T23:59:59.536Z


def read_all(feed):
    batches = list(feed.batches())
    data = pa.Table.from_batches([b.data for b in batches]) if batches else None
    dead = [d for b in batches for d in b.dead]
    return batches, data, dead


def test_lean_trades(lean_trades):
    with gzip.open(lean_trades, "rt") as fh:
        suspicious = sum(row["suspicious"] == "1" for row in csv.DictReader(fh))
    feed = FileReplay(lean_trades)
    assert feed.kind == "trade" and feed.name == str(lean_trades)
    batches, data, dead = read_all(feed)
    assert data.num_rows == 388_417 - suspicious == feed.rows
    assert dead == []
    assert data.schema == TRADE_SCHEMA.append(pa.field("line", pa.int64()))
    ts = data.column("ts").to_numpy()
    assert ts[0] == FIRST_TS and ts[-1] == LAST_TS
    assert (np.diff(ts) >= 0).all()
    assert set(data.column("symbol").to_pylist()) == {"SPY", "IBM", "AIG", "BAC"}
    lines = data.column("line").to_numpy()
    assert lines[0] == 2 and lines[-1] == 388_418
    assert data.slice(0, 1).to_pylist()[0] == {
        "symbol": "SPY",
        "ts": FIRST_TS,
        "price": 167.41,
        "size": 100.0,
        "exchange": "P",
        "condition": "20002000",
        "dataset": None,  # the processor's to stamp
        "line": 2,
    }
    assert all(b.kind == "trade" and b.total == lean_trades.stat().st_size for b in batches)
    assert [b.done for b in batches] == sorted(b.done for b in batches)
    assert batches[-1].done == batches[-1].total


def test_kaggle_bars(kaggle_bars):
    feed = FileReplay(kaggle_bars)
    assert feed.kind == "bar" and feed.format == "bars"
    _, data, dead = read_all(feed)
    assert dead == []
    assert data.num_rows == 104_224
    assert data.schema == BAR_SCHEMA.append(pa.field("line", pa.int64()))
    assert len(set(data.column("symbol").to_pylist())) == 13
    start = 536_371_200 * 10**9  # 1986-12-31T00:00:00Z
    assert data.slice(0, 1).to_pylist()[0] == {
        "symbol": "HSI",
        "timeframe": "1d",
        "bar_start": start,
        "bar_end": start + DAY_NS,
        "open": 2568.300049,
        "high": 2568.300049,
        "low": 2568.300049,
        "close": 2568.300049,
        "volume": 0.0,
        "vwap": None,
        "trades": 0,
        "dataset": None,
        "line": 2,
    }
    assert data.column("vwap").null_count == data.num_rows


def test_symbol_filters_a_file_with_symbols(kaggle_bars):
    _, data, _ = read_all(FileReplay(kaggle_bars, symbol="N225"))
    assert data.num_rows == 13_874
    assert set(data.column("symbol").to_pylist()) == {"N225"}


YAHOO = """Date,Open,High,Low,Close,Adj Close,Volume
2021-06-01,422.570007,422.720001,418.119995,419.670013,411.5,54216600
2021-06-02,420.369995,421.230011,419.290009,420.329987,412.1,49097100
2021-06-03,417.850006,419.98999,416.279999,418.769989,410.6,58138800
"""


def test_yahoo_bars_take_the_symbol_option(write_file):
    path = write_file("SPY.csv", YAHOO)
    assert detect_format(path) == "bars"
    _, data, _ = read_all(FileReplay(path, symbol="SPY", interval="1d"))
    rows = data.to_pylist()
    assert [r["symbol"] for r in rows] == ["SPY"] * 3
    assert rows[0]["bar_start"] == 1622505600 * 10**9  # 2021-06-01T00:00:00Z
    assert rows[0]["close"] == 419.670013 and rows[0]["volume"] == 54216600.0
    assert [r["line"] for r in rows] == [2, 3, 4]


def test_parquet_trades_match_csv(lean_trades, tmp_path):
    table = pa_csv.read_csv(lean_trades).slice(0, 5000)
    table = table.set_column(0, "timestamp", table.column(0).cast(pa.timestamp("ms", "UTC")))
    path = tmp_path / "trades.parquet"
    pq.write_table(table, path, row_group_size=1000)
    assert detect_format(path) == "trades"
    batches, data, dead = read_all(FileReplay(path, batch_size=700))
    assert dead == [] and all(b.data.num_rows <= 700 for b in batches)
    _, expected, _ = read_all(FileReplay(lean_trades))
    expected = expected.slice(0, 5000)
    for name in ("ts", "price", "size", "exchange"):
        assert data.column(name).equals(expected.column(name))
    assert data.column("symbol").to_pylist() == expected.column("symbol").to_pylist()
    assert data.column("line").to_pylist() == list(range(1, 5001))
    assert batches[-1].done == batches[-1].total == path.stat().st_size


def test_parquet_bars(kaggle_bars, tmp_path):
    table = pa_csv.read_csv(kaggle_bars).slice(0, 300)  # Date is read as date32
    path = tmp_path / "bars.parquet"
    pq.write_table(table, path)
    _, data, _ = read_all(FileReplay(path))
    _, expected, _ = read_all(FileReplay(kaggle_bars))
    assert data.drop_columns("line").equals(expected.slice(0, 300).drop_columns("line"))


def test_gzip_is_detected_by_content(lean_trades, tmp_path):
    path = tmp_path / "trades.data"
    shutil.copy(lean_trades, path)
    feed = FileReplay(path, batch_size=50_000)
    first = next(iter(feed.batches()))
    assert first.data.column("ts")[0].as_py() == FIRST_TS
    feed.close()


def test_plain_csv_and_column_mapping(write_file):
    path = write_file(
        "mine.csv",
        "time,ticker,px,qty\n1381132800464,spy,167.41,100\n1381132800465,spy,167.42,300\n",
    )
    feed = FileReplay(
        path, columns={"px": "price", "qty": "size", "ticker": "symbol", "time": "timestamp"}
    )
    _, data, _ = read_all(feed)
    assert data.column("ts").to_pylist() == [FIRST_TS, FIRST_TS + 10**6]
    assert data.column("price").to_pylist() == [167.41, 167.42]
    assert data.column("exchange").null_count == 2


@pytest.mark.parametrize(
    "stamp",
    [
        "2013-10-07T08:00:00.464Z",
        "2013-10-07T08:00:00.464",
        "2013-10-07 08:00:00.464",
        "2013-10-07T10:00:00.464+02:00",
        "1381132800.464",
        "1381132800464",
        "1381132800464000",
        "1381132800464000000",
    ],
)
def test_timestamp_forms(write_file, stamp):
    path = write_file("t.csv", f"timestamp,symbol,price,size\n{stamp},SPY,1.5,10\n")
    _, data, dead = read_all(FileReplay(path))
    assert dead == [] and data.column("ts").to_pylist() == [FIRST_TS]


def test_suspicious_trades_are_left_out_and_counted(write_file):
    path = write_file(
        "s.csv",
        "timestamp,symbol,price,size,exchange,condition,suspicious\n"
        "2013-10-07T08:00:00Z,SPY,1,1,P,,0\n2013-10-07T08:00:01Z,SPY,2,1,P,,1\n"
        "2013-10-07T08:00:02Z,SPY,3,1,P,,0\n",
    )
    feed = FileReplay(path)
    _, data, _ = read_all(feed)
    assert data.column("price").to_pylist() == [1.0, 3.0]
    assert data.column("line").to_pylist() == [2, 4]
    assert feed.suspicious == 1
    _, data, _ = read_all(FileReplay(path, include_suspicious=True))
    assert data.num_rows == 3 and data.column("condition").null_count == 3


def test_shift_days(write_file):
    path = write_file("b.csv", YAHOO)
    _, data, _ = read_all(FileReplay(path, symbol="SPY", shift_days=4))
    assert data.column("bar_start")[0].as_py() == 1622505600 * 10**9 + 4 * DAY_NS
    assert data.column("bar_end")[0].as_py() == 1622505600 * 10**9 + 5 * DAY_NS


def test_bar_interval_and_format_override(write_file):
    path = write_file(
        "m.csv",
        "timestamp,symbol,open,high,low,close,volume,price,size\n"
        "2013-10-07T13:30:00Z,SPY,1,2,0.5,1.5,100,1,1\n",
    )
    assert detect_format(path) == "trades"
    _, data, _ = read_all(FileReplay(path, format="bars", interval="1m"))
    row = data.to_pylist()[0]
    assert row["timeframe"] == "1m" and row["bar_end"] - row["bar_start"] == 60 * 10**9


def test_bars_with_vwap_and_trades(write_file):
    path = write_file(
        "v.csv",
        "date,symbol,open,high,low,close,volume,vwap,trades\n"
        "2021-06-01,X,1,2,0.5,1.5,100,1.2,7\n2021-06-02,X,1,2,0.5,1.5,100,NaN,\n",
    )
    _, data, dead = read_all(FileReplay(path))
    assert dead == []
    assert data.column("vwap").to_pylist() == [1.2, None]
    assert data.column("trades").to_pylist() == [7, 0]


@pytest.mark.parametrize(
    "flags",
    [
        ["0", "1", "t", "0", "Y", "n", "T", "y", "f", "1"],  # one character each
        ["0", "true", "1", "no", "YES", "False", "yes", "0", "1.0", "x"],  # words
        ["0", "1", "", "0", "é", "1", "t", "0", "y", "0"],  # an empty and a two-byte value
    ],
)
def test_every_spelling_of_a_suspicious_flag_is_read_alike(write_file, flags):
    rows = "".join(
        f"2013-10-07T08:00:{i:02d}Z,SPY,{i + 1},1,P,,{flag}\n" for i, flag in enumerate(flags)
    )
    path = write_file("s.csv", "timestamp,symbol,price,size,exchange,condition,suspicious\n" + rows)
    feed = FileReplay(path)
    _, data, _ = read_all(feed)
    true = {"1", "1.0", "true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "y", "Y"}
    kept = [float(i + 1) for i, flag in enumerate(flags) if flag not in true]
    assert data.column("price").to_pylist() == kept
    assert feed.suspicious == len(flags) - len(kept)
