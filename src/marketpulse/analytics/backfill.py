"""Backfills: recompute one dataset's bars, indicators and alerts in batch, by the live kernels.

The input (a file, or the trades of one dataset of the lake) goes through the
same :class:`~marketpulse.stream.Processor` as the live path, in large
batches and in arrival order, so the rows are identical to those a replay
produces. The result replaces that dataset's bars, indicators and alerts,
every one of them; other datasets are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.alerts import Rule
from marketpulse.bus import Batch
from marketpulse.exceptions import InputError
from marketpulse.feeds.base import Feed
from marketpulse.feeds.dataset import check_dataset, feed_dataset
from marketpulse.models import TRADE_SCHEMA
from marketpulse.sinks import LakeSink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.stream import Output, Processor, ProcessorSettings
from marketpulse.stream.output import alerts_table

__all__ = ["BackfillResult", "backfill", "lake_datasets", "lake_trades"]

logger = logging.getLogger(__name__)

_TABLES = ("bars", "indicators", "alerts")
#: The columns of the lake's trades the processor takes.
_TRADE_COLUMNS = ("symbol", "ts", "price", "size", "exchange", "condition")
#: The trades as the processor takes them (the lake's stored times back to int64 ns),
#: in arrival order, from a scan of the files (:meth:`LakeLocation.parquet_scan`).
_TRADES_QUERY = (
    "SELECT symbol, epoch_ns(ts) AS ts, price, size, exchange, condition "
    "FROM {scan} ORDER BY ts, filename, file_row_number"
)


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill wrote, and for which dataset."""

    ticks: int
    bars: int
    indicator_rows: int
    alerts: int
    rejected: int
    dataset: str = ""


def lake_datasets(root: str | Path | LakeLocation) -> list[str]:
    """The datasets that have trades in the lake at ``root``, by name."""
    files = LakeLocation.of(root).glob("trades/dataset=*/*/*.parquet")
    return sorted({f.split("/")[1].removeprefix("dataset=") for f in files})


def lake_trades(
    root: str | Path | LakeLocation, dataset: str, batch_rows: int = 1 << 20
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yield the trades of ``dataset`` in the lake, in arrival order (time, then file, then row)."""
    location = LakeLocation.of(root)
    files = location.glob(f"trades/dataset={check_dataset(dataset)}/*/*.parquet")
    if not files:
        return
    con = duckdb.connect()
    try:
        scan = location.parquet_scan(con, "lake_trades", files, _TRADE_COLUMNS)
        # a relation streams its result; DB-API results (execute) would copy it first
        reader = con.sql(_TRADES_QUERY.format(scan=scan))
        for batch in reader.to_arrow_reader(batch_rows):
            table = pa.Table.from_batches([batch])
            symbol = pc.dictionary_encode(table.column("symbol").combine_chunks())
            table = table.set_column(0, "symbol", symbol)
            table = table.append_column("dataset", pa.nulls(table.num_rows, pa.string()))
            yield "trade", table.cast(TRADE_SCHEMA).combine_chunks().to_batches()[0]
    finally:
        con.close()


def _lake_dataset(root: LakeLocation, dataset: str | None) -> str:
    """The dataset of the lake's trades to recompute: ``dataset``, or the lake's only one.

    Raises:
        InputError: no dataset given and the lake holds several, or none, or
            not the one given (the datasets it holds are named).
    """
    held = lake_datasets(root)
    if dataset is not None:
        if dataset not in held:
            raise InputError(f"lake {root} has no trades of dataset {dataset!r} ({_named(held)})")
        return dataset
    if len(held) != 1:
        if not held:
            raise InputError(f"lake {root} has no trades to recompute from")
        raise InputError(
            f"lake {root} holds the trades of {len(held)} datasets; choose one with "
            f"--dataset: {', '.join(held)}"
        )
    return held[0]


def _named(held: list[str]) -> str:
    return f"it has: {', '.join(held)}" if held else "it has no trades at all"


def backfill(
    source: Feed | str | Path | LakeLocation,
    lake: str | Path | LakeLocation,
    settings: ProcessorSettings | None = None,
    rules: list[Rule] | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    dataset: str | None = None,
) -> BackfillResult:
    """Recompute one dataset's bars, indicators and alerts and write them to ``lake``.

    Args:
        source: a feed (file replay), or a lake (its location, or its root
            directory or ``s3://bucket/prefix``) whose trades of ``dataset`` are read.
        lake: the lake to write (likewise); every bar, indicator and alert of
            the dataset is replaced, other datasets are left alone.
        settings: windowing settings (must match the live pipeline's for equal rows);
            their ``dataset`` is replaced by the backfill's.
        rules: alert rules.
        progress: called with (done, total) as the input is read.
        dataset: the dataset to recompute. ``None``: a feed's own
            (:func:`~marketpulse.feeds.dataset.feed_dataset`), or the only
            dataset of the lake's trades.

    Raises:
        InputError: ``dataset`` is not a valid name; the lake has no trades of
            it; none was given and the lake holds several datasets (named).
        OldLayoutError: ``lake`` is in the layout of an earlier MarketPulse.
    """
    sink = LakeSink(lake)  # refuses a lake of an earlier layout before anything is read
    try:
        if dataset is not None:
            check_dataset(dataset)
        if isinstance(source, str | Path | LakeLocation):
            location = LakeLocation.of(source)
            dataset = _lake_dataset(location, dataset)
            batches: Iterator[tuple[str, pa.RecordBatch | list]] = lake_trades(location, dataset)
            name = f"lake {location}"
        else:
            dataset = dataset or feed_dataset(source)
            batches = _feed_batches(source, progress)
            name = source.name
        settings = replace(settings or ProcessorSettings(), dataset=dataset)
        out, ticks = _process(Processor(settings, rules), batches, name)
        rejected = sum(1 for d in out.dead if d.reason != "late")
        _replace(sink, out, dataset)
    finally:
        sink.close()
    # the figures once: the caller shows them (the backfill command's summary)
    logger.debug("backfill of %s (dataset %s): %d ticks → %d bars", name, dataset, ticks,
                 out.bars.num_rows)  # fmt: skip
    return BackfillResult(
        ticks, out.bars.num_rows, out.indicators.num_rows, len(out.alerts), rejected, dataset
    )


def _process(
    processor: Processor, batches: Iterator[tuple[str, pa.RecordBatch | list]], name: str
) -> tuple[Output, int]:
    """Run every batch through ``processor``; return its output and the ticks read."""
    out = Output()
    ticks = offset = 0
    for kind, data in batches:
        if isinstance(data, list):  # dead letters from the feed
            out.dead.extend(data)
            continue
        data = data.replace_schema_metadata({"source": name})
        batch = Batch("backfill", 0, offset, offset + data.num_rows - 1, kind=kind, columns=data)
        offset += data.num_rows
        ticks += data.num_rows
        each = processor.process(batch)
        each.trades = []  # the input is the trades: one Output must not hold all of them
        each.quotes = []
        out.extend(each)
    out.extend(processor.finish())
    return out, ticks


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


def _replace(sink: LakeSink, out: Output, dataset: str) -> None:
    """Write the outputs, then remove the dataset's files written before them."""
    location = sink.location
    folders = [f"{table}/dataset={dataset}" for table in _TABLES]
    before = {f for folder in folders for f in location.files(folder, ".parquet")}
    for table, data in (
        ("bars", out.bars),
        ("indicators", out.indicators),
        ("alerts", alerts_table(out.alerts, dataset)),
    ):
        if data.num_rows:
            sink.write(table, data)
    sink.flush()
    for old in before:
        location.delete_file(old)
    for folder in folders:  # partitions left empty
        location.delete_empty_directories(folder)
