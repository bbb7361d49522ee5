"""Lake write throughput: trades and bars through LakeSink, then a DuckDB scan.

Run: PYTHONPATH=src python bench/bench_lake.py [--trades N] [--bars N] [--batch N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from marketpulse.analytics import query
from marketpulse.models import BAR_SCHEMA, TRADE_SCHEMA
from marketpulse.sinks import LakeSink, SourceRange

T0 = 1_699_950_000 * 1_000_000_000  # 2023-11-14 08:20 UTC
SYMBOLS = pa.array([f"SYM{i:03d}" for i in range(500)])


def trades(n: int, rng: np.random.Generator) -> pa.Table:
    codes = rng.integers(0, len(SYMBOLS), n).astype(np.int32)
    price = 100.0 + np.cumsum(rng.normal(0, 0.01, n))
    return pa.table(
        [
            pa.DictionaryArray.from_arrays(codes, SYMBOLS),
            pa.array(T0 + np.arange(n, dtype=np.int64) * 20_000),  # 50k trades/s of market time
            pa.array(price),
            pa.array(rng.integers(1, 500, n).astype(np.float64)),
            pa.array(np.where(rng.random(n) < 0.5, "XNAS", "XNYS")),
            pa.nulls(n, pa.string()),
            pa.array(["bench"] * n),
        ],
        schema=TRADE_SCHEMA,
    )


def bars(n: int, rng: np.random.Generator) -> pa.Table:
    start = T0 + (np.arange(n, dtype=np.int64) // len(SYMBOLS)) * 60_000_000_000
    close = 100.0 + np.cumsum(rng.normal(0, 0.05, n))
    return pa.table(
        [
            SYMBOLS.take(pa.array(np.arange(n) % len(SYMBOLS))),
            pa.array(["1m"] * n),
            pa.array(start),
            pa.array(start + 60_000_000_000),
            pa.array(close - 0.01),
            pa.array(close + 0.05),
            pa.array(close - 0.05),
            pa.array(close),
            pa.array(rng.integers(100, 10_000, n).astype(np.float64)),
            pa.array(close + 0.001),
            pa.array(rng.integers(1, 50, n)),
            pa.array(["bench"] * n),
        ],
        schema=BAR_SCHEMA,
    )


def run(root: Path, table: str, data: pa.Table, batch: int) -> None:
    chunks = [data.slice(i, batch) for i in range(0, data.num_rows, batch)]
    began = time.perf_counter()
    with LakeSink(root) as sink:
        offset = 0
        for chunk in chunks:
            sink.write(table, chunk, SourceRange(0, offset, offset + chunk.num_rows - 1))
            offset += chunk.num_rows
    seconds = time.perf_counter() - began
    stats = sink.stats
    rate = data.num_rows / seconds
    print(
        f"{table:7s} {data.num_rows:>10,d} rows in {seconds:6.2f} s = {rate:>12,.0f} rows/s;"
        f" {stats.files} files, {stats.bytes / 1e6:.1f} MB"
        f" ({stats.bytes / data.num_rows:.1f} B/row), batches of {batch:,d}"
    )
    began = time.perf_counter()
    result = query(root, f"SELECT symbol, count(*) AS n FROM {table} GROUP BY symbol")
    seconds = time.perf_counter() - began
    print(f"{'':7s} DuckDB group-by over the lake: {result.num_rows} groups in {seconds:.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=2_000_000)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), "trades", trades(args.trades, rng), args.batch)
        run(Path(tmp), "bars", bars(args.bars, rng), args.batch)


if __name__ == "__main__":
    main()
