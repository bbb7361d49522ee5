"""Backfills: recompute one dataset's bars, indicators and alerts in batch, by the live kernels.

The input (a file, or the trades of one dataset of the lake) goes through the
same :class:`~marketpulse.stream.Processor` as the live path, in large
batches and in arrival order, so the rows are identical to those a replay
produces. The result replaces that dataset's bars, indicators and alerts,
every one of them, a partition at a time (:mod:`marketpulse.sinks.lake_replace`);
other datasets are left alone. The backfill holds the dataset's lock
meanwhile (:class:`~marketpulse.sinks.lake_lock.DatasetLock`), so a replay
or another backfill of it waits, and whichever ends last decides the rows.

Its files are named after the input, as a replay's
(:mod:`marketpulse.sinks.lake_segments`): a file's identity with the options
that shape the rows (:func:`~marketpulse.stream.identity.output_origin`, the
replay's own), or the input of the lake's trades read (the replay that stored
them, named in their files). A replay of that input run later replaces them
as it replaces its own files, so any sequence of replays and backfills of an
input leaves one copy of each row.
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
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_lock import DatasetLock
from marketpulse.sinks.lake_replace import InputLines, replace_dataset
from marketpulse.sinks.lake_segments import FILE_NAME
from marketpulse.sinks.lake_store import open_store
from marketpulse.stream import Output, Processor, ProcessorSettings
from marketpulse.stream.identity import output_origin
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
    target = open_store(lake).location  # refuses a lake of an earlier layout before any read
    if dataset is not None:
        check_dataset(dataset)
    lake_source = LakeLocation.of(source) if isinstance(source, str | Path | LakeLocation) else None
    if lake_source is not None:
        dataset = _lake_dataset(lake_source, dataset)
        name = f"lake {lake_source}"
    else:
        assert not isinstance(source, str | Path | LakeLocation)
        dataset = dataset or feed_dataset(source)
        name = source.name
    settings = replace(settings or ProcessorSettings(), dataset=dataset)
    with DatasetLock(target, dataset, exclusive=True, holder=f"backfill of {name}"):
        seen = _Lines()
        batches: Iterator[tuple[str, pa.RecordBatch | list]] = (
            lake_trades(lake_source, dataset) if lake_source is not None
            else _feed_batches(source, progress, seen)  # type: ignore[arg-type]
        )  # fmt: skip
        out, ticks = _process(Processor(settings, rules), batches, name)
        lines = (
            _lake_input(lake_source, dataset) if lake_source is not None
            else seen.of(source, settings, rules or [])  # type: ignore[arg-type]
        )  # fmt: skip
        rejected = sum(1 for d in out.dead if d.reason != "late")
        tables = {"bars": out.bars, "indicators": out.indicators,
                  "alerts": alerts_table(out.alerts, dataset)}  # fmt: skip
        replace_dataset(target, dataset, tables, lines)
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
    feed: Feed, progress: Callable[[int, int | None], None] | None, seen: _Lines
) -> Iterator[tuple[str, pa.RecordBatch | list]]:
    try:
        for batch in feed.batches():
            seen.add(batch.data, batch.dead)
            if batch.dead:
                yield "dead", batch.dead
            yield batch.kind, batch.data
            if progress:
                progress(batch.done, batch.total)
    finally:
        feed.close()


class _Lines:
    """The last input line a feed gave (its rows' and its dead letters')."""

    def __init__(self) -> None:
        self.last = 0

    def add(self, data: pa.RecordBatch, dead: list) -> None:
        if data.num_rows and "line" in data.schema.names:
            self.last = max(self.last, pc.max(data.column("line")).as_py() or 0)
        self.last = max([self.last, *(d.line or 0 for d in dead)])

    def of(self, feed: Feed, settings: ProcessorSettings, rules: list[Rule]) -> InputLines | None:
        """The input of a feed's rows, as a replay of it names its files (``None``: none)."""
        identity = getattr(feed, "identity", None)
        if identity is None or self.last < 1:
            return None
        return InputLines(output_origin(identity(), settings, rules), 1, self.last)


def _lake_input(location: LakeLocation, dataset: str) -> InputLines | None:
    """The input whose replay stored the dataset's trades, when they come from one alone.

    Its files name it (``part-f<origin>-<first>-<last>``); trades of several
    inputs, of a simulated or live market or from Kafka have no single one.
    """
    files = location.glob(f"trades/dataset={dataset}/*/*.parquet")
    found = [FILE_NAME.fullmatch(f.rpartition("/")[2]) for f in files]
    origins = {m.group(1) if m else None for m in found}
    if len(origins) != 1 or None in origins:
        return None
    first = min(int(m.group(2)) for m in found if m)
    last = max(int(m.group(3)) for m in found if m)
    return InputLines(origins.pop(), first, last)
