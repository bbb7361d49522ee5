"""Fuzzing the file readers: for any mangled CSV or gzip CSV, no exception and no row lost.

An input line is a piece of the (decompressed) file ended by LF, CRLF or a
lone CR, as pyarrow splits lines; line 1 is the header. Every line after the
header is either stored (a row with that ``line``), in the dead letters (with
that line), or blank (nothing but delimiters and quotes). The expected text of
a mangled gzip is what zlib decodes before its first error, byte by byte.
"""

import gzip
import io
import zlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from marketpulse.exceptions import InputError
from marketpulse.feeds import FileReplay, decompress, sanitise


def parquet_bytes() -> bytes:
    rows = 300
    table = pa.table(
        {
            "timestamp": pa.array(
                [1_381_132_800_000 + 1000 * n for n in range(rows)], pa.timestamp("ms")
            ),
            "symbol": ["SPY", "QQQ", "IWM"] * (rows // 3),
            "price": [100.0 + n for n in range(rows)],
            "size": [1.0] * rows,
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=100)
    return out.getvalue()


PARQUET = parquet_bytes()

HEADER = b"timestamp,symbol,price,size,exchange,condition\n"
BASE = HEADER + b"".join(
    b"2013-10-07T08:00:%02d.000Z,SPY,%d,1,P,\n" % (n % 60, 100 + n) for n in range(40)
)

# every field quoted, as some vendors write them (pyarrow must not run a quote past its line)
QUOTED = HEADER + b"".join(
    b'"2013-10-07T08:00:%02d.000Z","SPY","%d","1","P",""\n' % (n % 60, 100 + n) for n in range(40)
)

edit = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10_000), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=40)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 80)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
)


def mangle(data: bytes, edits) -> bytes:
    out = bytearray(data)
    for kind, where, what in edits:
        at = where % (len(out) + 1)
        if kind == "set":
            out[at : at + len(what)] = what
        elif kind == "insert":
            out[at:at] = what
        elif kind == "delete":
            del out[at : at + what]
        else:
            del out[at:]
    return bytes(out)


def zlib_text(data: bytes) -> tuple[bytes, bool]:
    """What zlib decodes before its first error, and whether the data was whole."""
    inflate = zlib.decompressobj(31)
    out = []
    for i in range(len(data)):
        try:
            out.append(inflate.decompress(data[i : i + 1]))
        except zlib.error:
            return b"".join(out), False
        if inflate.eof:
            return b"".join(out), not inflate.unused_data.strip(b"\0") and not data[i + 1 :].strip(
                b"\0"
            )
    return b"".join(out), False


def check(path, text: bytes, whole: bool, small: bool = False) -> None:
    """Replay ``path``; with ``small``, in pieces of a few bytes (every line crosses one)."""
    with pytest.MonkeyPatch.context() as patch:
        if small:
            patch.setattr(sanitise, "_CHUNK", 64)
            patch.setattr(decompress, "_PIECE", 7)
            patch.setattr(decompress, "_OUT", 50)
        replayed(path, text, whole)


def replayed(path, text: bytes, whole: bool) -> None:
    try:
        feed = FileReplay(path)
    except InputError:
        first = text.splitlines()[0] if text.splitlines() else b""
        assert first != HEADER.rstrip(b"\n")  # only a damaged header stops it
        return
    batches = list(feed.batches())  # never raises
    rows = [row for b in batches for row in b.data.to_pylist()]
    dead = [d for b in batches for d in b.dead]
    lines = text.splitlines()
    if not whole and not text.endswith((b"\n", b"\r")) and lines:
        cut = lines.pop()  # a last line cut off by the damage: never a row
        assert cut == b"" or any(d.line == len(lines) + 1 for d in dead)
    stored = [r["line"] for r in rows]
    lost = [d.line for d in dead if d.line <= len(lines)]
    assert all(d.line is not None for d in dead)
    assert len(set(stored)) == len(stored) and set(stored).isdisjoint(lost)
    assert all(2 <= n <= len(lines) for n in stored + lost)
    for n in set(range(2, len(lines) + 1)) - set(stored) - set(lost):
        assert lines[n - 1].strip(b',"') == b"", (n, lines[n - 1])
    for row in rows:
        fields = lines[row["line"] - 1].decode().split(",")
        try:
            price = float(fields[2].strip('"'))
        except (ValueError, IndexError):
            continue
        if price == price and "_" not in fields[2]:
            assert row["price"] == price
    assert bool(feed.damage) == (not whole)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(edit, min_size=1, max_size=4), quoted=st.booleans(), small=st.booleans())
@example(edits=[("set", 0, b"x")], quoted=True, small=True)
def test_mangled_csv(tmp_path, edits, quoted, small):
    data = mangle(QUOTED if quoted else BASE, edits)
    path = tmp_path / "mangled.csv"
    path.write_bytes(data)
    if not data.strip():
        return
    check(path, data, True, small)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(edit, min_size=1, max_size=3), small=st.booleans())
@example(edits=[("insert", 1321, b"\0")], small=True)  # zlib rejected what ISA-L had taken
def test_mangled_gzip(tmp_path, edits, small):
    data = mangle(gzip.compress(BASE), edits)
    if not data.startswith(b"\x1f\x8b"):
        return  # no longer gzip: the CSV test covers other bytes
    path = tmp_path / "mangled.csv.gz"
    path.write_bytes(data)
    text, whole = zlib_text(data)
    if not text.strip():
        return
    check(path, text, whole, small)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edits=st.lists(edit, min_size=1, max_size=3))
@example(edits=[("set", 4469, b"\x80")])  # a column name in the footer not UTF-8 (was a traceback)
def test_mangled_parquet(tmp_path, edits):
    """Every row of a row group is stored, in dlq or counted lost by a damage report."""
    path = tmp_path / "mangled.parquet"
    path.write_bytes(mangle(PARQUET, edits))
    try:
        feed = FileReplay(path)
    except InputError:
        return  # footer or schema unreadable: one line, nothing read
    batches = list(feed.batches())  # never raises
    meta = pq.ParquetFile(path).metadata
    groups = sum(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
    stored = sum(b.data.num_rows for b in batches)
    dead = sum(len(b.dead) for b in batches)
    lost = sum(damage.lost or 0 for damage in feed.damage)
    assert stored + dead + lost == groups
    assert all(damage.lost for damage in feed.damage)
