"""Headline files: CSV and JSON Lines read into news batches; bad rows to dead letters."""

import json

import pytest

from marketpulse.exceptions import ConfigError
from marketpulse.news.files import NewsFile

T0 = 1381153500_000_000_000  # 2013-10-07T13:45:00Z


def _read(path, **kwargs):
    batches = list(NewsFile(path, **kwargs).batches())
    rows = [row for b in batches for row in b.data.to_pylist()]
    dead = [d for b in batches for d in b.dead]
    return rows, dead


def test_a_csv_gives_one_item_per_symbol_and_its_bad_rows_by_line(tmp_path):
    path = tmp_path / "headlines.csv"
    path.write_text(
        "Symbol,TS,Headline,Source,URL,id\n"
        "AAPL,2013-10-07T13:45:00Z,Apple rises,Reuters,https://example.com/1,r-1\n"
        '"AAPL, MSFT",1381154530,Tech rallies,,,\n'
        "MSFT,yesterday,Microsoft falls,,,\n"
        "GOOG,2013-10-07T15:00:00Z,,,,\n"
        ",2013-10-07T15:00:00Z,No symbol,,,\n"
    )
    rows, dead = _read(path)
    assert [(r["symbol"], r["ts"], r["headline"]) for r in rows] == [
        ("AAPL", T0, "Apple rises"),
        ("AAPL", 1381154530 * 10**9, "Tech rallies"),
        ("MSFT", 1381154530 * 10**9, "Tech rallies"),
    ]
    assert rows[0]["id"] == "r-1" and rows[0]["source"] == "Reuters"
    assert rows[1]["id"] == rows[2]["id"] and rows[1]["id"].startswith("file:")
    assert rows[1]["source"] is None and rows[1]["url"] is None
    assert all(r["sentiment"] is None for r in rows)  # the scorer's to set
    assert [(d.line, d.reason) for d in dead] == [(4, "schema"), (5, "schema"), (6, "symbol")]
    assert dead[0].file == str(path)
    assert "field ts: 'yesterday' is not a timestamp" in dead[0].error
    assert "field headline: missing" in dead[1].error
    assert b"Microsoft falls" in dead[0].value


def test_a_derived_id_is_the_same_when_the_file_is_read_again(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("symbol,ts,headline\nAAPL,2013-10-07T13:45:00Z,Apple rises\n"
                    "AAPL,2013-10-07T13:45:00Z,Apple rises again\n")  # fmt: skip
    first, _ = _read(path)
    again, _ = _read(path)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert first[0]["id"] != first[1]["id"]


def test_json_lines_and_times_without_a_zone(tmp_path):
    path = tmp_path / "h.jsonl"
    lines = [
        json.dumps({"symbol": "AAPL", "published": "2013-10-07 09:45:00", "title": "Apple rises"}),
        "",
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"symbol": "MSFT", "time": 1381153500000, "headline": "Microsoft flat"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    rows, dead = _read(path, timezone="America/New_York")
    assert [(r["symbol"], r["ts"]) for r in rows] == [("AAPL", T0), ("MSFT", T0)]
    assert [(d.line, d.reason) for d in dead] == [(3, "parse"), (4, "parse")]


def test_a_header_without_the_needed_columns_is_one_error(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("ticker,when,text\nAAPL,2013-10-07,up\n")
    with pytest.raises(ConfigError, match="names no symbol and no time and no headline column"):
        _read(path)
    with pytest.raises(ConfigError, match="no such file"):
        NewsFile(tmp_path / "missing.csv")


def test_bytes_that_are_not_text_are_one_row_or_one_error(tmp_path):
    path = tmp_path / "h.csv"
    path.write_bytes(
        b"symbol,ts,headline\nAAPL,2013-10-07T13:45:00Z,Apple rises\n"
        b"MSFT,2013-10-07T13:46:00Z,Micro\x80\xffsoft\nIBM,1381153500,IBM up\n"
    )
    rows, dead = _read(path)
    assert [r["symbol"] for r in rows] == ["AAPL", "IBM"]
    assert [(d.line, d.reason) for d in dead] == [(3, "parse")]
    assert "not UTF-8 text" in dead[0].error and b"\x80\xff" in dead[0].value
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(128, 256)) * 10)
    with pytest.raises(ConfigError, match="its header is not UTF-8 text"):
        _read(junk)
