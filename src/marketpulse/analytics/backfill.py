"""Backfills: recompute bars, indicators and alerts in batch, through the live kernels.

The input (a file, or the lake's trades) goes through the same
:class:`~marketpulse.stream.Processor` as the live path, in large batches and
in arrival order, so the rows are identical to those a replay produces.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.alerts import Rule
from marketpulse.bus import Batch
from marketpulse.feeds.base import Feed
from marketpulse.models import TRADE_SCHEMA
from marketpulse.sinks import LakeSink
from marketpulse.stream import Output, Processor, ProcessorSettings
from marketpulse.stream.output import alerts_table

__all__ = ["BackfillResult", "backfill", "lake_trades"]

logger = logging.getLogger(__name__)

_TABLES = ("bars", "indicators", "alerts")


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill wrote."""

    ticks: int
    bars: int
    indicator_rows: int
    alerts: int
    rejected: int


def lake_trades(
    root: str | Path, batch_rows: int = 1 << 20
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yield the lake's trades in arrival order (time, then file, then row)."""
    pattern = str(Path(root) / "trades" / "*" / "*.parquet")
    if not list(Path(root, "trades").glob("*/*.parquet")):
        return
    con = duckdb.connect()
    reader = con.execute(
        "SELECT symbol, ts, price, size, exchange, condition FROM read_parquet(?, "
        "hive_partitioning = true, filename = true, file_row_number = true) "
        "ORDER BY ts, filename, file_row_number",
        [pattern],
    ).to_arrow_reader(batch_rows)
    for batch in reader:
        table = pa.Table.from_batches([batch])
        symbol = pc.dictionary_encode(table.column("symbol").combine_chunks())
        table = table.set_column(0, "symbol", symbol)
        yield "trade", table.cast(TRADE_SCHEMA).combine_chunks().to_batches()[0]


def backfill(
    source: Feed | str | Path,
    lake: str | Path,
    settings: ProcessorSettings | None = None,
    rules: list[Rule] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> BackfillResult:
    """Recompute bars, indicators and alerts and write them to ``lake``.

    Args:
        source: a feed (file replay), or a lake root whose trades are read.
        lake: the lake to write; the date partitions the backfill covers are
            replaced, others are left alone.
        settings: windowing settings (must match the live pipeline's for equal rows).
        rules: alert rules.
        progress: called with (done, total) as the input is read.
    """
    processor = Processor(settings, rules)
    out = Output()
    ticks = rejected = 0
    if isinstance(source, str | Path):
        batches: Iterator[tuple[str, pa.RecordBatch]] = lake_trades(source)
        name = f"lake {source}"
    else:
        batches = _feed_batches(source, progress)
        name = source.name
    offset = 0
    for kind, data in batches:
        if isinstance(data, list):  # dead letters from the feed
            out.dead.extend(data)
            rejected += len(data)
            continue
        data = data.replace_schema_metadata({"source": name})
        batch = Batch("backfill", 0, offset, offset + data.num_rows - 1, kind=kind, columns=data)
        offset += data.num_rows
        ticks += data.num_rows
        each = processor.process(batch)
        each.trades = []  # the input is the trades: one Output must not hold all of them
        out.extend(each)
    out.extend(processor.finish())
    rejected += sum(1 for d in out.dead if d.reason != "late")
    _replace(lake, out)
    logger.info("backfill of %s: %d ticks → %d bars", name, ticks, out.bars.num_rows)
    return BackfillResult(
        ticks, out.bars.num_rows, out.indicators.num_rows, len(out.alerts), rejected
    )


def _feed_batches(
    feed: Feed, progress: Callable[[int, int | None], None] | None
) -> Iterator[tuple[str, pa.RecordBatch | list]]:
    try:
        for batch in feed.batches():
            if batch.dead:
                yield "dead", batch.dead
            yield batch.kind, batch.data
            if progress:
                progress(batch.done, batch.total)
    finally:
        feed.close()


def _replace(lake: str | Path, out: Output) -> None:
    """Write the outputs, then remove older files of the partitions they cover."""
    root = Path(lake)
    before = {table: set((root / table).glob("date=*/*.parquet")) for table in _TABLES}
    sink = LakeSink(root)
    try:
        for table, data in (
            ("bars", out.bars),
            ("indicators", out.indicators),
            ("alerts", alerts_table(out.alerts)),
        ):
            if data.num_rows:
                sink.write(table, data)
    finally:
        sink.close()
    for table in _TABLES:
        written = set((root / table).glob("date=*/*.parquet")) - before[table]
        covered = {path.parent for path in written}
        for old in before[table]:
            if old.parent in covered:
                old.unlink()
