"""A dataset's tables replaced whole: new partitions swapped in, emptied ones removed."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from marketpulse.sinks import LakeSink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_replace import InputLines, replace_dataset
from marketpulse.sinks.lake_segments import segment_name

MINUTE = 60_000_000_000
DAY = 86_400_000_000_000


def _bars(dataset: str, timeframe: str, starts: list[int], close: float = 1.0) -> pa.Table:
    n = len(starts)
    return pa.table({
        "symbol": ["SPY"] * n, "timeframe": [timeframe] * n,
        "bar_start": pa.array(starts, pa.int64()),
        "bar_end": pa.array([s + MINUTE for s in starts], pa.int64()),
        "open": [close] * n, "high": [close] * n, "low": [close] * n, "close": [close] * n,
        "volume": [1.0] * n, "vwap": [close] * n, "trades": pa.array([1] * n, pa.int64()),
        "dataset": [dataset] * n,
    })  # fmt: skip


def _rows(lake, dataset: str) -> list[tuple]:
    files = ", ".join(f"'{f}'" for f in (lake / "bars").rglob("*.parquet"))
    query = (f"SELECT timeframe, epoch_ns(bar_start), close FROM read_parquet([{files}], "
             f"hive_partitioning=true) WHERE dataset = '{dataset}' ORDER BY ALL")  # fmt: skip
    return duckdb.connect().execute(query).fetchall()


def test_the_new_rows_are_the_datasets_only_rows_and_other_datasets_stay(tmp_path):
    lake = tmp_path / "lake"
    sink = LakeSink(lake)
    sink.write("bars", _bars("lean", "1m", [0, MINUTE, DAY]))  # two periods
    sink.write("bars", _bars("lean", "5m", [0]))
    sink.write("bars", _bars("other", "1m", [0]))
    sink.close()

    origin = "0123456789abcdef"
    new = _bars("lean", "1m", [0, MINUTE], close=2.0)
    replace_dataset(LakeLocation.of(lake), "lean", {"bars": new}, InputLines(origin, 1, 9))

    assert _rows(lake, "lean") == [("1m", 0, 2.0), ("1m", MINUTE, 2.0)]
    assert _rows(lake, "other") == [("1m", 0, 1.0)]
    names = sorted(p.name for p in (lake / "bars" / "dataset=lean").rglob("*.parquet"))
    assert names == [segment_name(origin, 1, 9)]  # named after the input, as a replay's
    assert not (lake / "bars" / "dataset=lean" / "timeframe=5m").exists()
    assert not (lake / ".replace").exists()  # the staging area goes
