"""A damaged replay file: the good rows land, one line names the damage, exit code 1.

Bad values in an intact file cost their rows (dlq, exit 0); a nested column
that is mapped stops the command in one line (exit 2).
"""

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import LEAN_TRADES

pytestmark = pytest.mark.integration


def test_replay_of_a_truncated_gzip(cli, sql, tmp_path):
    cut = LEAN_TRADES.read_bytes()[:300_000]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    inflate = zlib.decompressobj(31)
    text = inflate.decompress(cut)
    assert not inflate.eof  # really truncated
    rows = text[: text.rfind(b"\n") + 1].count(b"\n") - 1  # complete data rows zlib can read
    lake = tmp_path / "lake"
    result = cli("replay", path, "--lake", lake, "--include-suspicious", ok=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors == result.stderr.strip().splitlines()[-1:]
    assert str(path) in errors[0] and "300,000" in errors[0] and f"{rows + 1:,}" in errors[0]
    [[stored]] = [list(r.values()) for r in sql(lake, "SELECT count(*) AS n FROM trades")]
    assert stored == rows
    dead = sql(lake, "SELECT reason, source_line AS line FROM dlq")
    assert dead == [{"reason": "truncated", "line": rows + 2}]


def test_backfill_of_a_truncated_gzip_ends_like_replay(cli, sql, tmp_path):
    cut = LEAN_TRADES.read_bytes()[:300_000]
    path = tmp_path / "cut.csv.gz"
    path.write_bytes(cut)
    inflate = zlib.decompressobj(31)
    assert inflate.decompress(cut) and not inflate.eof  # really truncated, rows before it
    lake = tmp_path / "lake"
    result = cli("backfill", "--file", path, "--lake", lake, ok=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("backfill of dataset cut done")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(path) in errors[0] and "300,000" in errors[0]
    [[bars]] = [list(r.values()) for r in sql(lake, "SELECT count(*) AS n FROM bars")]
    assert bars > 0  # the rows before the damage were recomputed and stored


def parquet_with_bad_symbol(path, rows: int, bad: int) -> None:
    """A trades Parquet file whose string symbol column holds one value that is not UTF-8."""
    symbols = [b"SPY"] * rows
    symbols[bad] = b"S\xffY"
    offsets = pa.array(np.cumsum([0] + [len(s) for s in symbols]), pa.int32()).buffers()[1]
    column = pa.Array.from_buffers(
        pa.string(), rows, [None, offsets, pa.py_buffer(b"".join(symbols))]
    )
    table = pa.table(
        {
            "timestamp": pa.array(1_381_152_600_000 + 10 * np.arange(rows), pa.timestamp("ms")),
            "symbol": column,
            "price": np.linspace(100.0, 101.0, rows),
            "size": np.ones(rows),
        }
    )
    pq.write_table(table, path, row_group_size=rows)


def test_replay_of_parquet_with_a_symbol_that_is_not_utf8(cli, sql, tmp_path):
    path = tmp_path / "bad-symbol.parquet"
    parquet_with_bad_symbol(path, 2_000, 1_500)
    with pytest.raises(pa.ArrowInvalid):  # the fault is there
        pq.read_table(path).column("symbol").validate(full=True)
    lake = tmp_path / "lake"
    result = cli("replay", path, "--lake", lake, ok=False)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    [[stored]] = [list(r.values()) for r in sql(lake, "SELECT count(*) AS n FROM trades")]
    assert stored == 1_999
    dead = sql(lake, "SELECT reason, source_line AS line FROM dlq")
    assert dead == [{"reason": "parse", "line": 1_501}]


def test_replay_of_parquet_with_a_nested_price_column(cli, tmp_path):
    path = tmp_path / "nested.parquet"
    table = pa.table(
        {
            "timestamp": pa.array([1_381_152_600_000, 1_381_152_600_001], pa.timestamp("ms")),
            "symbol": ["SPY", "SPY"],
            "price": pa.array([[100.0], [100.5]], pa.list_(pa.float64())),
            "size": [1.0, 1.0],
        }
    )
    pq.write_table(table, path)
    result = cli("replay", path, "--lake", tmp_path / "lake", ok=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: column 'price'") and "nested" in line
