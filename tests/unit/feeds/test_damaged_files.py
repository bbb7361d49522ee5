"""Damaged inputs lose no readable row: bad lines go to dead letters, damage is reported.

Expected rows are computed independently of the reader: with zlib's
decompressobj and the csv module.
"""

import csv
import gzip
import io
import random
import struct
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.exceptions import InputError
from marketpulse.feeds import FileReplay

HEADER = "timestamp,symbol,price,size,exchange,condition\n"


def good_line(n: int) -> str:
    return f"2013-10-07T08:{n // 6000 % 60:02d}:{n // 100 % 60:02d}.{n % 100:03d}Z,SPY,{n},1,P,\n"


def replay(path, **options):
    feed = FileReplay(path, **options)
    batches = list(feed.batches())
    lines = [line for b in batches for line in b.data.column("line").to_pylist()]
    dead = [d for b in batches for d in b.dead]
    return feed, lines, dead


def decodable_lines(data: bytes) -> list[bytes]:
    """Complete lines zlib can decode from a possibly truncated gzip, header included."""
    inflate = zlib.decompressobj(31)
    text = inflate.decompress(data) + inflate.flush()
    assert not inflate.eof  # the cut really is inside the data
    return text[: text.rfind(b"\n") + 1].splitlines()


def test_truncated_gzip_keeps_every_decodable_row(lean_trades, tmp_path):
    cut = lean_trades.read_bytes()[:800_000]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    complete = decodable_lines(cut)
    expected = len(list(csv.reader(io.StringIO(b"\n".join(complete).decode())))) - 1
    assert expected > 150_000
    feed, lines, dead = replay(path, include_suspicious=True)
    assert len(lines) == expected
    assert lines == list(range(2, expected + 2))
    assert [(d.reason, d.line) for d in dead] == [("truncated", expected + 2)]
    [damage] = feed.damage
    assert damage.offset == len(cut) and damage.line == expected + 1
    assert str(path) in str(damage) and "800,000" in str(damage)


def test_corrupt_gzip_in_the_middle_keeps_the_rows_before(tmp_path):
    text = HEADER + "".join(good_line(n) for n in range(1, 60_001))
    packed = bytearray(gzip.compress(text.encode()))
    middle = len(packed) // 2
    packed[middle : middle + 64] = b"\xff" * 64  # not valid deflate codes
    path = tmp_path / "corrupt.csv.gz"
    path.write_bytes(bytes(packed))
    inflate = zlib.decompressobj(31)
    with pytest.raises(zlib.error):  # the fault is there
        inflate.decompress(bytes(packed))
    feed, lines, dead = replay(path)
    [damage] = feed.damage
    assert damage.offset is not None and damage.offset >= middle
    assert len(lines) > 10_000
    # the rows before the damage are the file's rows, in order, none lost
    prefix = [n for n in lines if n <= 10_001]
    assert prefix == list(range(2, 10_002))
    assert set(lines).isdisjoint(d.line for d in dead)


def test_invalid_utf8_costs_only_its_line(tmp_path):
    rows = [good_line(n).encode() for n in range(1, 60_000)]
    rows[40_000] = rows[40_000].replace(b"SPY", b"S\xffY")  # line 40,002
    path = tmp_path / "latin.csv"
    path.write_bytes(HEADER.encode() + b"".join(rows))
    feed, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 40_002)]
    assert "UTF-8" in dead[0].error and dead[0].value == rows[40_000].rstrip(b"\n")
    assert lines == [n for n in range(2, 60_001) if n != 40_002]
    assert feed.damage == []


def test_random_bytes_after_good_rows(tmp_path):
    rng = random.Random(7)
    good = HEADER + "".join(good_line(n) for n in range(1, 5_001))
    path = tmp_path / "tail.csv"
    path.write_bytes(good.encode() + b"\n" + rng.randbytes(200_000))
    feed, lines, dead = replay(path)
    assert lines[:5_000] == list(range(2, 5_002))
    assert all(n > 5_002 for n in lines[5_000:])  # anything else is from the noise
    assert all(d.line > 5_001 for d in dead) and dead


def test_a_50_mb_field_is_skipped_without_losing_the_next_lines(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as out:
        out.write(HEADER.encode())
        out.writelines(good_line(n).encode() for n in range(1, 101))
        out.write(b"2013-10-07T09:00:00.000Z,SPY," + b"9" * 50_000_000 + b",1,P,\n")  # line 102
        out.writelines(good_line(n).encode() for n in range(102, 301))
    feed, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 102)]
    assert "longer than" in dead[0].error and len(dead[0].value) <= 4096
    assert lines == [n for n in range(2, 302) if n != 102]


def test_unbalanced_quote_does_not_swallow_the_next_lines(tmp_path):
    rows = [good_line(n) for n in range(1, 11)]
    rows[3] = rows[3].replace(",SPY,", ',"SPY,')  # line 5
    path = tmp_path / "quote.csv"
    path.write_text(HEADER + "".join(rows))
    _, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 5)]
    assert lines == [n for n in range(2, 12) if n != 5]


def test_nul_byte_and_crlf_lines(tmp_path):
    rows = [good_line(n).replace("\n", "\r\n") for n in range(1, 11)]
    rows[6] = rows[6].replace("SPY", "S\0Y")  # line 8
    path = tmp_path / "nul.csv"
    path.write_bytes((HEADER.replace("\n", "\r\n") + "".join(rows)).encode())
    _, lines, dead = replay(path)
    assert [(d.line, "NUL" in d.error) for d in dead] == [(8, True)]
    assert lines == [n for n in range(2, 12) if n != 8]


def parquet_trades(path, symbols, price=None):
    n = len(symbols)
    columns = {
        "timestamp": pa.array([1381132800000 + i for i in range(n)], pa.int64()),
        "symbol": pa.array(symbols, pa.binary()),
        "price": price if price is not None else pa.array([10.0 + i for i in range(n)]),
        "size": pa.array([1.0] * n),
        "tags": pa.array([[i, i + 1] for i in range(n)], pa.list_(pa.int64())),
        "extra": pa.array([{"a": i} for i in range(n)]),
    }
    pq.write_table(pa.table(columns), path, row_group_size=50_000)


def test_parquet_invalid_utf8_symbol_goes_to_dead_letters(tmp_path):
    symbols = [b"SPY"] * 200_000
    symbols[150_000] = b"S\xffY"
    path = tmp_path / "bin.parquet"
    parquet_trades(path, symbols)
    with pytest.raises(pa.ArrowInvalid):  # the fault is there
        pa.array(symbols, pa.binary()).cast(pa.string())
    feed, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 150_001)]
    assert "symbol" in dead[0].error
    assert lines == [n for n in range(1, 200_001) if n != 150_001]
    assert feed.damage == []


def test_parquet_nested_columns_not_mapped_are_ignored(tmp_path):
    path = tmp_path / "nested.parquet"
    parquet_trades(path, [b"SPY"] * 10)
    _, lines, dead = replay(path)
    assert lines == list(range(1, 11)) and dead == []


def test_parquet_nested_column_mapped_is_one_clear_error(tmp_path):
    path = tmp_path / "nested.parquet"
    parquet_trades(path, [b"SPY"] * 10, price=pa.array([[1.0]] * 10))
    with pytest.raises(InputError) as err:
        FileReplay(path)
    assert str(err.value).startswith(f"{path}: column 'price'") and "nested" in str(err.value)


def unchecked_strings(values: list[bytes]) -> pa.Array:
    """A string array holding ``values`` as they are, valid UTF-8 or not (as a Parquet reader)."""
    offsets = [0]
    for value in values:
        offsets.append(offsets[-1] + len(value))
    buffers = [None, pa.py_buffer(pa.array(offsets, pa.int32()).buffers()[1]), b"".join(values)]
    return pa.Array.from_buffers(
        pa.string(), len(values), [buffers[0], buffers[1], pa.py_buffer(buffers[2])]
    )


def test_parquet_invalid_utf8_in_a_string_column_goes_to_dead_letters(tmp_path):
    symbols = [b"SPY"] * 200_000
    symbols[150_000] = b"S\xffY"
    path = tmp_path / "str.parquet"
    parquet_trades(path, [b"SPY"] * 200_000)
    table = pq.read_table(path).set_column(1, "symbol", unchecked_strings(symbols))
    pq.write_table(table, path, row_group_size=50_000)
    assert pq.read_schema(path).field("symbol").type == pa.string()
    with pytest.raises(pa.ArrowInvalid, match="UTF8"):  # the fault is there
        pq.read_table(path).column("symbol").validate(full=True)
    feed, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 150_001)]
    assert "symbol" in dead[0].error and b'"symbol":"S\\\\xffY"' in dead[0].value
    assert lines == [n for n in range(1, 200_001) if n != 150_001]
    assert feed.damage == []


def test_parquet_invalid_utf8_in_a_dictionary_column_costs_its_rows(tmp_path):
    path = tmp_path / "dict.parquet"
    parquet_trades(path, [b"SPY"] * 6)
    codes = pa.array([0, 1, 0, 1, 0, 0], pa.int32())
    symbols = pa.DictionaryArray.from_arrays(codes, unchecked_strings([b"SPY", b"Q\xffQ"]))
    pq.write_table(pq.read_table(path).set_column(1, "symbol", symbols), path)
    assert pa.types.is_dictionary(pq.read_schema(path).field("symbol").type)
    _, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 2), ("parse", 4)]
    assert lines == [1, 3, 5, 6]


def test_parquet_time_past_year_9999_costs_its_row(tmp_path):
    path = tmp_path / "far.parquet"
    stamps = pa.array([1_381_132_800, 10**13, 1_381_132_801], pa.timestamp("s"))
    table = pa.table(
        {"timestamp": stamps, "symbol": ["SPY"] * 3, "price": [1.0] * 3, "size": [1.0] * 3}
    )
    pq.write_table(table, path, coerce_timestamps=None, allow_truncated_timestamps=False)
    with pytest.raises(OverflowError):  # the fault is there: Python cannot hold it
        pq.read_table(path).column("timestamp")[1].as_py()
    feed, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 2)]
    assert lines == [1, 3] and feed.damage == []


def test_parquet_row_group_shorter_than_its_metadata_is_damage(tmp_path, monkeypatch):
    path = tmp_path / "short.parquet"
    parquet_trades(path, [b"SPY"] * 150_000)  # row groups of 50,000
    read = pq.ParquetFile.iter_batches

    def short(self, *args, row_groups=None, **kwargs):  # row group 1 gives 10 rows, no error
        for n, batch in enumerate(read(self, *args, row_groups=row_groups, **kwargs)):
            if row_groups != [1]:
                yield batch
            elif n == 0:
                yield batch.slice(0, 10)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", short)
    groups = [pq.ParquetFile(path).iter_batches(row_groups=[g]) for g in range(3)]
    assert [sum(b.num_rows for b in group) for group in groups] == [50_000, 10, 50_000]
    feed, lines, dead = replay(path)
    assert lines == [*range(1, 50_011), *range(100_001, 150_001)] and dead == []
    [damage] = feed.damage
    assert (damage.line, damage.lost) == (50_011, 49_990)
    assert str(path) in str(damage) and "50,011-100,000" in str(damage)


def test_gzip_checksum_across_a_read_boundary_is_placed_exactly(tmp_path):
    """A checksum split across two 64 KiB reads: the damage is where zlib finds it."""
    text = (HEADER + "".join(good_line(n) for n in range(1, 60_001))).encode()
    pack = zlib.compressobj(6, zlib.DEFLATED, -15)
    body = pack.compress(text) + pack.flush()
    extra = -(12 + len(body) + 4) % 65536  # 4 bytes of the trailer before a 64 KiB boundary
    head = b"\x1f\x8b\x08\x04\0\0\0\0\0\xff" + struct.pack("<H", extra) + b"x" * extra
    crc = zlib.crc32(text) ^ 1  # wrong
    data = head + body + struct.pack("<II", crc, len(text))
    assert (len(data) - 4) % 65536 == 0
    path = tmp_path / "crc.csv.gz"
    path.write_bytes(data)
    inflate = zlib.decompressobj(31)
    for at in range(len(data)):  # the byte zlib rejects
        try:
            inflate.decompress(data[at : at + 1])
        except zlib.error as exc:
            assert "incorrect data check" in str(exc)
            break
    feed, lines, dead = replay(path)
    assert lines == list(range(2, 60_002)) and dead == []
    [damage] = feed.damage
    assert damage.offset == at and "checksum" in str(damage)


def test_lone_cr_lines_after_the_header_each_count(tmp_path):
    """Lines ended by a lone CR (old Mac files) after an LF header, the last without a break."""
    rows = [good_line(n).rstrip("\n") for n in range(1, 6)]
    rows[2] = rows[2].replace(",SPY,", ',"SPY,')  # line 4: unbalanced quote
    path = tmp_path / "cr.csv"
    path.write_bytes((HEADER + "\r".join(rows)).encode())
    _, lines, dead = replay(path)
    assert [(d.reason, d.line) for d in dead] == [("parse", 4)]
    assert "quote" in dead[0].error and dead[0].value == rows[2].encode()
    assert lines == [2, 3, 5, 6]


def test_quoted_fields_read_as_their_values(tmp_path):
    """Every field quoted, a delimiter inside quotes, an escaped quote: each row whole."""
    rows = [
        '"2013-10-07T08:00:0{n}.000Z","SPY","{p}","1","{x}",""\n'.format(n=n, p=100 + n, x="P")
        for n in range(1, 8)
    ]
    rows[2] = rows[2].replace('"P"', '"P,Q"')  # line 4: a delimiter inside a quoted field
    rows[4] = rows[4].replace('"P"', '"P""Q"')  # line 6: an escaped quote
    path = tmp_path / "quoted.csv"
    path.write_text(HEADER + "".join(rows))
    feed = FileReplay(path)
    stored = [row for b in feed.batches() for row in b.data.to_pylist()]
    assert [r["line"] for r in stored] == list(range(2, 9))
    assert [r["price"] for r in stored] == [100.0 + n for n in range(1, 8)]
    assert [r["exchange"] for r in stored] == ["P", "P", "P,Q", "P", 'P"Q', "P", "P"]


def test_simply_quoted_lines_are_not_checked_one_by_one(tmp_path, monkeypatch):
    """Quotes around whole fields take the fast path; an escaped quote the line-by-line one."""
    from marketpulse.feeds import sanitise

    checked = []
    real = sanitise.line_problem
    monkeypatch.setattr(
        sanitise, "line_problem", lambda line, *a: checked.append(line) or real(line, *a)
    )
    rows = [f'"2013-10-07T08:00:00.000Z","SPY","{n}","1","P,Q",""\n' for n in range(1000)]
    path = tmp_path / "quoted.csv"
    path.write_text(HEADER + "".join(rows))
    assert sum(b.data.num_rows for b in FileReplay(path).batches()) == 1000
    assert checked == []
    path.write_text(HEADER + "".join(rows) + rows[0].replace('"P,Q"', '"P""Q"'))
    assert sum(b.data.num_rows for b in FileReplay(path).batches()) == 1001
    assert len(checked) >= 1001
