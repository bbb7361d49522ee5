"""Encoding the outputs as Kafka records: a struct a row (msgspec) against one numba pass.

What ``process`` does with every output batch before it produces it
(:func:`marketpulse.bus.codec.encode_rows`): the JSON record of each row. The
rows are real: the daily bars of the 13 world indices in
``../shared/data/kaggle-stock-exchange``, laid end to end as bench_kernels lays
them (``--keys`` symbols, each from its own offset and price scale), their
default indicators computed by the project's kernels (NaN until warmed up),
the kept trades those bars' closes stand for, as the ``trades`` topic stores
them. Each table is encoded in batches of ``--batch`` rows, both ways: a struct
a row (the path batches under 256 rows still take) and written at once
(:mod:`marketpulse.bus.json_rows`); both give the same bytes, checked here.

    python bench/bench_json_rows.py [--rows 200000] [--batch 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kernels import best_of, make_stream  # noqa: E402

from marketpulse.bus import codec  # noqa: E402
from marketpulse.bus.codec import encode_rows  # noqa: E402
from marketpulse.indicators import DEFAULT, IndicatorState, update_indicators  # noqa: E402
from marketpulse.models import BAR_SCHEMA, indicator_schema  # noqa: E402

MINUTE = 60 * 10**9


def tables(rows: int, keys: int) -> dict[str, pa.Table]:
    """Bars, their default indicators and the trades at their closes, ``rows`` of each."""
    key, high, low, close, volume, pv, session, opens = make_stream(rows, keys)
    values = update_indicators(IndicatorState(keys, DEFAULT), key, high, low, close, volume, pv,
                               session, opens)  # fmt: skip
    symbols = pa.array([f"IX{k:05d}" for k in range(keys)]).take(pa.array(key))
    start = 1_700_000_000 * 10**9 + (np.arange(rows) // keys) * MINUTE
    bars = pa.table({
        "symbol": symbols, "timeframe": ["1m"] * rows, "bar_start": start,
        "bar_end": start + MINUTE, "open": opens, "high": high, "low": low, "close": close,
        "volume": volume, "vwap": pv / np.where(volume > 0, volume, 1.0),
        "trades": (np.arange(rows) % 97 + 1).astype(np.int64), "dataset": ["kaggle"] * rows,
    })  # fmt: skip
    assert bars.column_names == [*BAR_SCHEMA.names]
    schema = indicator_schema(DEFAULT.columns)
    columns = {"symbol": symbols, "timeframe": bars["timeframe"], "bar_start": start,
               "bar_end": start + MINUTE, "close": close}  # fmt: skip
    columns |= {name: values[:, i] for i, name in enumerate(DEFAULT.columns)}
    indicators = pa.table(columns | {"dataset": bars["dataset"]}, schema=schema)
    trades = pa.table({
        "symbol": symbols, "ts": start + MINUTE - 1, "price": close, "size": volume,
        "exchange": pa.nulls(rows, pa.string()), "condition": pa.nulls(rows, pa.string()),
        "dataset": bars["dataset"],
    })  # fmt: skip
    return {"bars": bars, "indicators": indicators, "trades": trades}


def encode_all(kind: str, table: pa.Table, batch: int) -> list[bytes]:
    records: list[bytes] = []
    for start in range(0, table.num_rows, batch):
        records += encode_rows(kind, table.slice(start, batch))[1]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=2_000, help="rows per encode_rows call")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.batch < codec._AT_ONCE:
        parser.error(f"--batch: at least {codec._AT_ONCE} (smaller batches take the struct path)")

    at_once = codec._written_at_once
    for kind, table in tables(args.rows, args.keys).items():
        fields = len(table.column_names)
        run = functools.partial(encode_all, kind, table, args.batch)
        fast = run()  # numba's cache loads (or compiles) the writer here
        fast_s = best_of(args.repeats, run)
        codec._written_at_once = lambda *_: None
        try:
            struct = run()
            struct_s = best_of(args.repeats, run)
        finally:
            codec._written_at_once = at_once
        same = "yes" if fast == struct else "NO"
        size = sum(map(len, fast)) / len(fast)
        print(
            f"bench_json_rows: {kind} ({fields} fields, {size:.0f} bytes a record), "
            f"{args.rows:,} rows in batches of {args.batch:,}: struct a row "
            f"{struct_s / args.rows * 1e6:.2f} us/row, at once {fast_s / args.rows * 1e6:.2f} "
            f"us/row ({struct_s / fast_s:.2f}x); the same bytes: {same}"
        )


if __name__ == "__main__":
    main()
