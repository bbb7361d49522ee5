"""Rows of every lake table, built from the models' schemas."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pytest

from marketpulse.sinks.base import TABLES, TIME_COLUMNS

#: 2023-11-14 00:00:00 UTC, a midnight, in nanoseconds.
MIDNIGHT = 1_699_920_000 * 1_000_000_000
NS_PER_S = 1_000_000_000


def build_rows(
    table: str,
    n: int,
    start: int = MIDNIGHT + 3600 * NS_PER_S,
    step: int = NS_PER_S,
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
) -> pa.Table:
    """Return ``n`` rows of ``table``; event times from ``start`` every ``step``."""
    columns = {}
    for field in TABLES[table]:
        t = field.type
        if field.name == TIME_COLUMNS[table]:
            values = [start + i * step for i in range(n)]
        elif field.name == "bar_end":
            values = [start + i * step + 60 * NS_PER_S for i in range(n)]
        elif field.name == "dataset":
            values = ["test"] * n
        elif field.name == "timeframe":
            values = ["1m"] * n
        elif pa.types.is_map(t):
            values = [[("close", 100.0 + i)] for i in range(n)]
        elif field.name == "symbol":
            values = [symbols[i % len(symbols)] for i in range(n)]
        elif pa.types.is_integer(t):
            values = list(range(n))
        elif pa.types.is_floating(t):
            values = [100.0 + i + 0.25 for i in range(n)]
        elif pa.types.is_binary(t):
            values = [f'{{"n": {i}}}'.encode() for i in range(n)]
        else:
            values = [f"{field.name}-{i}" for i in range(n)]
        columns[field.name] = pa.array(values, t)
    return pa.table(columns, schema=TABLES[table])


@pytest.fixture
def make_rows() -> Callable[..., pa.Table]:
    return build_rows
