"""The lake's files: their codec, their columns, the order of their rows and their statistics.

What every writer of lake files shares: the sink (:mod:`.lake`), compaction
and migration (:mod:`marketpulse.analytics.lake_admin`,
:mod:`marketpulse.analytics.lake_migrate`) and ``sql``'s Parquet output.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pyarrow as pa

from marketpulse.sinks.lake_layout import FILE_SCHEMAS, sort_ranks

__all__ = [
    "LAKE_SCHEMAS",
    "PARQUET_COMPRESSION",
    "PARQUET_COMPRESSIONS",
    "SORT_KEYS",
    "STATISTICS",
    "stable_order",
]

#: Parquet codecs DuckDB, Spark and Athena all read (not Kafka's: ``config.KAFKA_COMPRESSIONS``).
PARQUET_COMPRESSIONS = ("zstd", "snappy", "lz4", "gzip", "none")
#: The codec of every Parquet file MarketPulse writes (the lake, its maintenance, ``sql``).
PARQUET_COMPRESSION = "zstd"

#: The columns of each table's files: the models' schemas without the partition
#: keys (``dataset``, ``timeframe``), with times as ``timestamp[ns, UTC]`` and
#: dictionary columns (``trades.symbol``) as their plain value type, which
#: DuckDB and pyarrow read alike and which sorts natively.
LAKE_SCHEMAS: Mapping[str, pa.Schema] = FILE_SCHEMAS

# Rows of a file are grouped by these columns (stable sort: arrival order is kept
# within a group) so that row-group statistics prune ``WHERE symbol = ...``.
SORT_KEYS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "trades": (),  # arrival (time) order: the cheapest to write, and ts ranges prune
        "quotes": (),
        "bars": ("symbol",),  # one timeframe a file
        "indicators": ("symbol",),
        "alerts": ("symbol",),
        "dlq": (),
        "custom": ("symbol", "name"),
        "predictions": ("symbol", "model"),
        "news": ("symbol",),
    }
)

#: Columns whose min/max each row group records: where they prune a query (the
#: sort keys, times, which rise through a file, and the integer columns).
#: Statistics of prices, indicators and free text cost write time and prune nothing.
STATISTICS: Mapping[str, list[str]] = MappingProxyType(
    {
        name: [
            f.name
            for f in schema
            if f.name in SORT_KEYS[name]
            or pa.types.is_integer(f.type)
            or pa.types.is_timestamp(f.type)
        ]
        for name, schema in LAKE_SCHEMAS.items()
    }
)


def stable_order(rows: pa.Table, keys: tuple[str, ...]) -> np.ndarray:
    """Row order sorted by ``keys`` (text columns), stable: arrival order within a key."""
    return np.argsort(sort_ranks(rows, keys)[0], kind="stable")
