"""The stage runner on the in-memory bus: what the processor alone makes of the feed.

:class:`Runner` (the runner of ``run``, ``run --kafka`` and the
services) starts the produce, process and sink services on threads, talking
through any bus of the contract. Run on a :class:`MemoryBus` with three
partitions and a simulated feed, the bars it writes are those of the
processor run directly over the whole feed (the reference: no bus, no
threads), the windows still open when the finite feed ended included; and
its lake equals the one the embedded pipeline (the same runner on one
partition, as ``run`` uses it) writes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch, MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.feeds import Simulator
from marketpulse.runtime.embedded import EmbeddedPipeline
from marketpulse.runtime.runner import Runner, RunnerOptions
from marketpulse.stream import Processor, ProcessorSettings

S = 10**9
START = 1_381_152_600 * S + 123_456_789  # 2013-10-07 09:30 New York
DATASET = "sim"
#: The lake tables compared.
COMPARED = ("bars", "indicators", "trades")


def feed() -> Simulator:
    """A few thousand simulated ticks of five symbols, as fast as they come."""
    return Simulator(
        symbols=5, rate=500, seed=7, start_ts=START, realtime=False, intraday=False,
        max_events=4000,
    )  # fmt: skip


def processor_settings() -> ProcessorSettings:
    # no closing by processing time: the outputs depend on the input alone
    return ProcessorSettings(intervals=("1s", "1m"), idle_timeout=None)


def _plain(value: Any) -> Any:
    """A value one can sort and compare: NaN as text, lists and dicts as tuples."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, dict):
        return tuple(sorted((k, _plain(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return value


def lake_rows(root: Path, table: str) -> list[tuple[Any, ...]]:
    """The rows of a lake table, its partition columns read from the paths, sorted.

    Each row is a tuple of its values in column-name order.
    """
    partitioning = ds.HivePartitioning.discover(infer_dictionary=False)
    data = ds.dataset(str(root / table), format="parquet", partitioning=partitioning).to_table()
    data = data.select(sorted(data.column_names))
    for i, field in enumerate(data.schema):
        if pa.types.is_timestamp(field.type):
            data = data.set_column(i, field.name, data.column(i).cast(pa.int64()))
    return sorted((_plain(tuple(row.values())) for row in data.to_pylist()), key=repr)


def key(row: tuple[Any, ...], columns: list[str]) -> tuple[Any, ...]:
    """A bar's or indicator row's key: symbol, timeframe, bar_start."""
    return tuple(row[columns.index(c)] for c in ("symbol", "timeframe", "bar_start"))


def run_services(lake: Path) -> Runner:
    bus = MemoryBus()
    options = RunnerOptions(
        lake=str(lake), rules=default_rules(), processor=processor_settings(), dataset=DATASET,
        partitions=3, drain_timeout=30.0,
    )  # fmt: skip
    runner = Runner(bus, Topics("m."), feed(), options)
    snapshot = runner.run()
    assert snapshot.bars > 0
    written = runner.lake_written()
    assert written is not None and written[0] > 0
    # the topics were made through the contract, on the memory bus
    assert bus.partitions("m.ticks") == 3
    return runner


@pytest.fixture(scope="module")
def lakes(tmp_path_factory) -> tuple[Path, Path]:
    """The embedded pipeline's lake (the reference) and the services' lake."""
    embedded = tmp_path_factory.mktemp("embedded") / "lake"
    options = RunnerOptions(
        lake=str(embedded), rules=default_rules(), processor=processor_settings(),
        dataset=DATASET,
    )  # fmt: skip
    assert EmbeddedPipeline(feed(), options).run().bars > 0
    services = tmp_path_factory.mktemp("services") / "lake"
    run_services(services)
    return embedded, services


def closed_at_the_end() -> set[tuple[Any, ...]]:
    """Keys of the bars the processor closes only when told the feed ended."""
    processor, offset = Processor(processor_settings(), default_rules()), 0
    for item in feed().batches():
        n = item.data.num_rows
        processor.process(Batch("ticks", 0, offset, offset + n - 1, item.kind, item.data))
        offset += n
    bars = processor.finish().bars
    assert bars.num_rows > 0
    return {(r["symbol"], r["timeframe"], r["bar_start"]) for r in bars.to_pylist()}


def direct_bars() -> set[tuple[Any, ...]]:
    """Keys and OHLCV of every bar the processor makes of the whole feed, alone."""
    processor, offset, rows = Processor(processor_settings(), default_rules()), 0, []
    for item in feed().batches():
        n = item.data.num_rows
        out = processor.process(Batch("ticks", 0, offset, offset + n - 1, item.kind, item.data))
        rows += out.bars.to_pylist()
        offset += n
    rows += processor.finish().bars.to_pylist()
    names = ("symbol", "timeframe", "bar_start", "open", "high", "low", "close", "volume")
    return {tuple(row[n] for n in names) for row in rows}


def test_the_runner_writes_the_bars_of_the_processor_alone(lakes):
    _, services = lakes
    columns = sorted(ds.dataset(str(services / "bars"), format="parquet",
                                partitioning="hive").schema.names)  # fmt: skip
    names = ("symbol", "timeframe", "bar_start", "open", "high", "low", "close", "volume")
    written = {tuple(row[columns.index(n)] for n in names) for row in lake_rows(services, "bars")}
    expected = direct_bars()
    assert len(expected) >= 50  # 1s and 1m bars of five symbols
    assert written == expected


def test_the_services_on_the_memory_bus_write_the_embedded_pipelines_trades(lakes):
    embedded, services = lakes
    expected = lake_rows(embedded, "trades")
    assert len(expected) == 4000
    assert lake_rows(services, "trades") == expected


@pytest.mark.parametrize("table", [t for t in COMPARED if t != "trades"])
def test_the_services_on_the_memory_bus_write_the_embedded_pipelines_lake(lakes, table):
    embedded, services = lakes
    expected = lake_rows(embedded, table)
    assert expected  # something is compared
    assert lake_rows(services, table) == expected


@pytest.mark.parametrize("table", ["bars", "indicators"])
def test_the_bars_closed_when_the_feed_ends_are_written(lakes, table):
    # the windows only the end of the input closes are some of the lake's bars:
    # a runner that kept them open for more input would lack them
    embedded, services = lakes
    columns = sorted(ds.dataset(str(services / table), format="parquet",
                                partitioning="hive").schema.names)  # fmt: skip
    written = {key(row, columns) for row in lake_rows(services, table)}
    assert closed_at_the_end() <= written
