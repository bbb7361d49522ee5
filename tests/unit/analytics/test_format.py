"""Query results written as CSV, JSON, Parquet and text tables (``format_table``)."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketpulse.analytics import OutputError, format_table
from marketpulse.analytics.results import fit_columns, iso_times, mark_percent
from marketpulse.human import human_bytes, human_number

MIDNIGHT = 1_699_920_000 * 1_000_000_000  # 2023-11-14 00:00:00 UTC
LEAN_OPEN = 1_381_152_660 * 1_000_000_000  # 2013-10-07 13:31:00 UTC
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(\d{3}){1,3})?Z")
DETAILS = pa.map_(pa.string(), pa.float64())


@pytest.fixture
def result() -> pa.Table:
    return pa.table(
        {
            "symbol": ["AAPL", None],
            "ts": pa.array([MIDNIGHT, MIDNIGHT + 1], pa.timestamp("ns", tz="UTC")),
            "close": [189.125, float("nan")],
            "n": pa.array([3, 12345], pa.int64()),
            "date": pa.array([date(2023, 11, 14)] * 2, pa.date32()),
            "value": pa.array([b'{"a": 1}', b"\xff"], pa.binary()),
            "details": pa.array([[("rsi_14", 28.5), ("change", -0.0123)], None], DETAILS),
        }
    )


def _json(table: pa.Table) -> list[dict]:
    out = io.StringIO()
    format_table(table, "json", out)
    return json.loads(out.getvalue())


def _csv(table: pa.Table) -> list[list[str]]:
    out = io.StringIO()
    format_table(table, "csv", out)
    return list(csv.reader(io.StringIO(out.getvalue())))


def _text(table: pa.Table) -> list[str]:
    out = io.StringIO()
    format_table(table, "table", out)
    return out.getvalue().splitlines()


def test_format_json(result: pa.Table) -> None:
    assert _json(result) == [
        {
            "symbol": "AAPL",
            "ts": "2023-11-14T00:00:00Z",
            "close": 189.125,
            "n": 3,
            "date": "2023-11-14",
            "value": "eyJhIjogMX0=",
            "details": {"rsi_14": 28.5, "change": -0.0123},
        },
        {"symbol": None, "ts": "2023-11-14T00:00:00.000000001Z", "close": None, "n": 12345,
         "date": "2023-11-14", "value": "/w==", "details": None},
    ]  # fmt: skip
    assert _json(result.slice(0, 0)) == []


def test_json_details_are_an_object_not_a_string_inside_json(result: pa.Table) -> None:
    out = io.StringIO()
    format_table(result.select(["details"]), "json", out)
    assert '"details":{"rsi_14":28.5' in out.getvalue()
    assert isinstance(json.loads(out.getvalue())[0]["details"], dict)


def test_format_csv_to_a_file(result: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    format_table(result, "csv", path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [
        ["symbol", "ts", "close", "n", "date", "value", "details"],
        ["AAPL", "2023-11-14T00:00:00Z", "189.125", "3", "2023-11-14", '{"a": 1}',
         '{"rsi_14":28.5,"change":-0.0123}'],
        ["", "2023-11-14T00:00:00.000000001Z", "nan", "12345", "2023-11-14", "\\xff", ""],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (LEAN_OPEN, "2013-10-07T13:31:00Z"),
        (LEAN_OPEN + 500_000_000, "2013-10-07T13:31:00.500Z"),
        (LEAN_OPEN + 123_456_000, "2013-10-07T13:31:00.123456Z"),
        (LEAN_OPEN + 123_456_789, "2013-10-07T13:31:00.123456789Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (-157_766_400 * 10**9, "1965-01-01T00:00:00Z"),  # the Kaggle file's first year
    ],
)
def test_times_are_iso_utc_with_a_fraction_only_when_not_zero(ns: int, text: str) -> None:
    times = pa.array([ns], pa.timestamp("ns", tz="UTC"))
    assert iso_times(times) == [text]


def test_times_in_other_units_and_zones() -> None:
    micro = pa.array([LEAN_OPEN // 1000 + 1], pa.timestamp("us", tz="America/New_York"))
    assert iso_times(micro) == ["2013-10-07T13:31:00.000001Z"]  # the instant, in UTC
    naive = pa.array([LEAN_OPEN // 10**9], pa.timestamp("s"))
    assert iso_times(naive) == ["2013-10-07T13:31:00"]  # no zone: none claimed
    assert iso_times(pa.chunked_array([[None, LEAN_OPEN]], pa.timestamp("ns", "UTC"))) == [
        None, "2013-10-07T13:31:00Z"]  # fmt: skip


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_iso_times_read_back_to_the_same_nanosecond(ns: int) -> None:
    (text,) = iso_times(pa.array([ns], pa.timestamp("ns", tz="UTC")))
    assert ISO.fullmatch(text), text
    assert np.datetime64(text[:-1], "ns").astype(np.int64) == ns


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=20))
def test_csv_and_json_keep_every_digit(values: list[float]) -> None:
    table = pa.table({"x": pa.array(values, pa.float64())})
    assert [float(row[0]) for row in _csv(table)[1:]] == values
    assert [row["x"] for row in _json(table)] == values


def test_duckdb_timestamptz_and_hugeint_results() -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # results are written in UTC all the same
    table = con.sql(
        "SELECT TIMESTAMPTZ '2013-10-07 13:31:00+00' AS bar_start, sum(x) AS total,"
        " MAP {'rsi_14': 28.5} AS details FROM range(3) t(x)"
    ).to_arrow_table()
    assert _json(table) == [
        {"bar_start": "2013-10-07T13:31:00Z", "total": 3, "details": {"rsi_14": 28.5}}
    ]


def test_table_sums_of_integers_get_thousands_separators_like_counts() -> None:
    # a sum of integers is a HUGEINT, an Arrow decimal of scale 0; a real decimal keeps its digits
    table = duckdb.sql(
        "SELECT sum(x)::HUGEINT AS total, count(*) AS n, 1234.50::DECIMAL(10, 2) AS price"
        " FROM (SELECT 20020 AS x FROM range(1))"
    ).to_arrow_table()
    assert _text(table)[-1].split() == ["20,020", "1", "1234.50"]


def test_format_text_table(result: pa.Table) -> None:
    assert _text(result.select(["symbol", "close", "n"])) == [
        "symbol    close       n",
        "------  -------  ------",
        "AAPL    189.125       3",
        "null        nan  12,345",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (189.125, "189.125"),
        (167.01, "167.01"),
        (1696.1400146484375, "1,696.14"),
        (1234567.891, "1,234,568"),
        (0.0123456789, "0.01234568"),
        (-0.25, "-0.25"),
        (100.0, "100"),
        (0.0, "0"),
        (2.5e-7, "2.5e-07"),
        (3.2e18, "3.2e+18"),
        (float("inf"), "inf"),
    ],
)
def test_human_number(value: float, text: str) -> None:
    assert human_number(value) == text


@given(st.floats(min_value=1e-4, max_value=1e15) | st.floats(min_value=-1e15, max_value=-1e-4))
def test_human_number_keeps_seven_significant_digits(value: float) -> None:
    shown = float(human_number(value).replace(",", ""))
    assert math.isclose(shown, value, rel_tol=5.01e-7)


@pytest.mark.parametrize(
    ("count", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (12_345_678, "12.3 MB"),
     (269_000_000, "269.0 MB"), (3 * 10**12, "3.0 TB")],
)  # fmt: skip
def test_human_bytes(count: int, text: str) -> None:
    assert human_bytes(count) == text


def test_text_table_shows_sizes_and_counts_for_people_csv_keeps_them_whole() -> None:
    table = pa.table({"table": ["bars"], "files": [29314], "rows": [104224],
                      "bytes": [269_123_456], "avg": [0.1 + 0.2]})  # fmt: skip
    lines = _text(table)
    assert lines[2].split() == ["bars", "29,314", "104,224", "269.1", "MB", "0.3"]
    assert _csv(table)[1] == ["bars", "29314", "104224", "269123456", repr(0.1 + 0.2)]


def test_text_table_is_never_wrapped() -> None:
    table = pa.table({f"column_{i:02d}": [i * 1000.5] for i in range(20)})
    lines = _text(table)
    assert len(lines) == 3 and len(lines[0]) > 200  # header, rule and the row: one line each


def test_format_parquet(result: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / "out.parquet"
    format_table(result, "parquet", path)
    back = pq.read_table(path)
    assert back.schema == result.schema
    assert back.drop_columns(["close"]).equals(result.drop_columns(["close"]))
    assert back["close"][0].as_py() == 189.125 and math.isnan(back["close"][1].as_py())
    with pytest.raises(OutputError, match="path"):
        format_table(result, "parquet", io.StringIO())
    with pytest.raises(OutputError, match="path"):
        format_table(result, "parquet")


def test_format_unknown(result: pa.Table) -> None:
    with pytest.raises(OutputError, match="unknown output format 'xml'"):
        format_table(result, "xml")


def test_percent_columns_are_percentages_for_people_plain_numbers_for_tools() -> None:
    table = pa.table({"return_pct": [1.9034, -0.25, 0.0, None], "vol_pct": [35.849, 2.0, 0.5, 1.0]})
    marked = mark_percent(table, signed=("return_pct",), unsigned=("vol_pct", "absent"))
    rows = [re.split(r"\s{2,}", line.strip()) for line in _text(marked)[2:]]
    assert [row[0] for row in rows] == ["+1.90 %", "-0.25 %", "+0.00 %", "null"]
    assert rows[0][1] == "35.85 %"
    out = io.StringIO()
    format_table(marked, "csv", out)
    assert out.getvalue().splitlines()[1] == "1.9034,35.849"
    out = io.StringIO()
    format_table(marked, "json", out)
    assert json.loads(out.getvalue())[1] == {"return_pct": -0.25, "vol_pct": 2.0}


def test_fit_columns_keeps_the_first_ones_that_fit_in_the_table_s_order() -> None:
    table = pa.table({"rule": ["news_move"], "wide_column_name": [1.0], "p": [0.5], "n": [3]})
    fitted, dropped = fit_columns(table, 20, priority=("rule", "p", "n"))
    assert fitted.column_names == ["rule", "p", "n"] and dropped == ["wide_column_name"]
    assert max(len(line) for line in _text(fitted)) <= 20
    fitted, dropped = fit_columns(table, 200, priority=("p",))
    assert fitted.column_names == table.column_names and dropped == []
    fitted, _ = fit_columns(table, 3, priority=("rule",))  # the first one, however narrow
    assert fitted.column_names == ["rule"]
