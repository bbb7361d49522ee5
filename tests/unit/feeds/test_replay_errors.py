import gzip

import pytest

from marketpulse.exceptions import InputError
from marketpulse.feeds import FileReplay, detect_format

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"


def row(second: int, price: str = "10.5", symbol: str = "SPY", size: str = "100") -> str:
    return f"2013-10-07T08:00:{second:02d}.000Z,{symbol},{price},{size},P,,0\n"


def replay(path, **options):
    batches = list(FileReplay(path, **options).batches())
    rows = [r for b in batches for r in b.data.to_pylist()]
    return rows, [d for b in batches for d in b.dead]


def test_malformed_rows_become_dead_letters(write_file):
    path = write_file(
        "bad.csv",
        HEADER
        + row(1)
        + row(2)
        + row(3, price="abc")
        + row(4)
        + "2013-10-07T08:00:05.000Z,SPY,10.5\n"
        + row(6)
        + row(7),
    )
    rows, dead = replay(path)
    assert [r["line"] for r in rows] == [2, 3, 5, 7, 8]
    assert [r["ts"] % 10**11 // 10**9 for r in rows] == [1, 2, 4, 6, 7]
    assert [(d.reason, d.line, d.file) for d in dead] == [
        ("parse", 4, str(path)),
        ("parse", 6, str(path)),
    ]
    price, short = dead
    assert short.value == b"2013-10-07T08:00:05.000Z,SPY,10.5"
    assert "expected 7 fields, found 3" in short.error
    assert price.error == "price: 'abc' is not a number"
    assert price.value == b"2013-10-07T08:00:03.000Z,SPY,abc,100,P,,0"


def test_bad_cells_are_named(write_file):
    path = write_file("bad.csv", HEADER + "yesterday,SPY,1,1,P,,0\n" + row(2, price="", size="x"))
    rows, dead = replay(path)
    assert rows == []
    assert [d.line for d in dead] == [2, 3]
    assert dead[0].error == "timestamp: 'yesterday' is not a timestamp"
    assert dead[1].error == "price: empty; size: 'x' is not a number"


def test_values_for_the_processor_pass_through(write_file):
    path = write_file(
        "odd.csv",
        HEADER + row(1, symbol="") + row(2, price="NaN") + row(3, price="-1") + row(4, size="-5"),
    )
    rows, dead = replay(path)
    assert dead == []
    assert rows[0]["symbol"] == "" and rows[1]["price"] != rows[1]["price"]
    assert rows[2]["price"] == -1.0 and rows[3]["size"] == -5.0


def test_blank_lines_are_skipped_but_counted(write_file):
    path = write_file("blank.csv", HEADER + row(1) + "\n" + row(2) + "\n\n")
    rows, dead = replay(path)
    assert dead == [] and [r["line"] for r in rows] == [2, 4]


def test_blank_lines_are_counted_apart_from_lines_the_cleaner_empties(tmp_path):
    path = tmp_path / "blank.csv"
    text = HEADER + row(1) + "\n" + ",,,,,,\n" + "\r\n"
    path.write_bytes(text.encode() + b"bad \xff line\n" + row(2).encode() + b"\n" * 3)
    feed = FileReplay(path)
    rows = [r for b in feed.batches() for r in b.data.to_pylist()]
    assert [r["line"] for r in rows] == [2, 7]
    assert feed.blank == 6  # lines 3, 4, 5, 8, 9, 10; line 6 is a dead letter, not blank
    assert feed.dead == 1


def test_many_blank_lines_never_reach_the_converters(tmp_path, monkeypatch):
    from marketpulse.feeds import columns

    calls = []
    real = columns._convert_pieces
    monkeypatch.setattr(columns, "_convert_pieces", lambda *a: calls.append(1) or real(*a))
    path = tmp_path / "blank.csv.gz"
    path.write_bytes(gzip.compress((HEADER + row(1) + "\n" * 50_000 + row(2)).encode()))
    feed = FileReplay(path)
    rows = [r for b in feed.batches() for r in b.data.to_pylist()]
    assert [r["line"] for r in rows] == [2, 50_003]
    assert feed.blank == 50_000 and feed.dead == 0
    assert calls == []  # before: every column of every blank row was bisected out


def test_a_bad_value_repeated_costs_one_bisection(tmp_path, monkeypatch):
    from marketpulse.feeds import columns

    calls = []
    real = columns._to_float
    monkeypatch.setattr(columns, "_to_float", lambda arr: calls.append(len(arr)) or real(arr))
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + row(1) + row(2, price="x") * 20_000 + row(3))
    rows, dead = replay(path)
    assert [r["line"] for r in rows] == [2, 20_003]
    assert len(dead) == 20_000 and {d.error for d in dead} == {"price: 'x' is not a number"}
    assert len(calls) < 20  # the distinct values are bisected, not the 20,000 rows


def test_line_numbers_across_batches(tmp_path):
    lines = [HEADER]
    bad = {500, 1777, 1778, 4000}
    for number in range(2, 5002):
        if number in bad:
            lines.append("garbage\n" if number % 2 else row(0, price="x"))
        else:
            lines.append(f"{number},SPY,{number},1,P,,0\n")
    path = tmp_path / "many.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.writelines(lines)
    rows, dead = replay(path, batch_size=300)
    assert sorted(d.line for d in dead) == sorted(bad)
    assert all(r["line"] == r["price"] for r in rows)
    assert len(rows) == 5000 - len(bad)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(InputError, match=f"{path}: no such file"):
        FileReplay(path)


def test_directory(tmp_path):
    with pytest.raises(InputError, match=str(tmp_path)):
        FileReplay(tmp_path)


def test_png(tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=f"{path}: unknown format"):
        FileReplay(path)


def test_empty_file(write_file):
    path = write_file("empty.csv", "")
    with pytest.raises(InputError, match=f"{path}: file is empty"):
        detect_format(path)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1" + b"\x00" * 100)
    with pytest.raises(InputError, match=f"{path}: not a readable Parquet file"):
        FileReplay(path)


def test_columns_fit_neither_layout(write_file):
    path = write_file("info.csv", "Region,Exchange,Currency\nUS,NYSE,USD\n")
    with pytest.raises(InputError) as err:
        FileReplay(path)
    message = str(err.value)
    assert message.startswith(f"{path}: columns fit neither")
    assert "Region, Exchange, Currency" in message and "price, size" in message
    assert "\n" not in message


def test_mapping_names_a_missing_column(write_file):
    path = write_file("t.csv", HEADER + row(1))
    with pytest.raises(InputError, match=f"{path}: column 'px' given in columns= is not in"):
        FileReplay(path, columns={"px": "price"})


def test_mapping_to_an_unknown_column(write_file):
    path = write_file("t.csv", HEADER + row(1))
    with pytest.raises(InputError, match="unknown column 'cost'"):
        FileReplay(path, columns={"price": "cost"})


def test_required_column_missing(write_file):
    path = write_file("t.csv", "timestamp,symbol,price\n2013-10-07,SPY,1\n")
    with pytest.raises(InputError, match=f"{path}: missing required column.s. size for trades"):
        FileReplay(path, format="trades")


def test_yahoo_without_symbol(write_file):
    path = write_file(
        "y.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n2021-06-01,1,2,0,1,1,5\n"
    )
    with pytest.raises(InputError, match=f"{path}: no symbol column; pass --symbol"):
        FileReplay(path)


def test_unknown_interval(write_file):
    path = write_file(
        "y.csv", "Date,Open,High,Low,Close,Adj Close,Volume\n2021-06-01,1,2,0,1,1,5\n"
    )
    with pytest.raises(InputError, match=f"{path}: unknown bar interval '7x'"):
        FileReplay(path, symbol="X", interval="7x")
