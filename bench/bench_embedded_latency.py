"""Embedded tick-to-indicator latency: what ``marketpulse run --lateness 0 --rate 10000`` runs.

The pipeline is the one ``marketpulse run`` builds (the default settings but
``lateness 0``): the real-time simulator (50 symbols, quotes on, each trade
stamped with its scheduled wall-clock time) feeding the embedded bus, the
processor (1s/1m/5m bars, the default indicators and alert rules), the live
view and the Parquet lake, in one process. Nothing is excluded: the
measurement starts with the pipeline, so start-up is in the figures.

Latency of an indicator row: with lateness 0 a bar ``[S, E)`` closes when the
partition's watermark (the largest trade time seen) reaches ``E``, so the
first trade of that partition stamped ``>= E`` closes it. The row's latency
is the wall clock when the processor hands it to the live view (``time.time_ns()``
in the view's ``indicators``) minus that trade's stamp. Every row (one per
symbol and closed bar, every interval) is a sample; rows of one close share
their closing trade. The split: ``feed`` is from the closing trade's stamp to
the moment the feed's batch holding it is read (the simulator's delivery
grid), ``pipeline`` from there to the row (bus, processor, view).

The simulator delivers the trades due every 25 ms (``run``'s default); each
run is repeated with finer delivery grids (``--delivery-ms``), and the CPU
time the process used per second of wall time is noted for each: what a
finer grid costs. The process first settles its heap as ``run`` does
(:func:`~marketpulse.runtime.heap.settle_heap`); the pipeline's feed starts
once the processor's kernels are loaded (``feed_start_s``), and ``ticks/s``
counts from there.

Then the floor, each part alone, on the first grid: the processor's step
(one delivery's trades and quotes through a processor with the same
settings, in this thread: the steps that close the bars of every symbol
apart from the others), and the hand-offs between the pipeline's threads
with no processing (one-row batches from a feed through the produce service
and the in-memory bus to a consumer polling as the process service does).

Prints a line of figures, then the JSON result (last line, run_all.py convention):

    .venv/bin/python bench/bench_embedded_latency.py --rate 10000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus import MemoryBus
from marketpulse.bus.base import Batch, partition_for
from marketpulse.bus.topics import Topics
from marketpulse.cli.common import processor_settings, rules_from
from marketpulse.config import Settings
from marketpulse.feeds import Simulator
from marketpulse.feeds.base import FeedBatch
from marketpulse.feeds.dataset import feed_dataset
from marketpulse.runtime import Metrics
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.runtime.heap import settle_heap
from marketpulse.runtime.produce import ProduceOptions, ProduceService
from marketpulse.serve import LiveMarket
from marketpulse.stream import Processor


class Timed(LiveMarket):
    """The live view of ``run``, noting when each trade batch and indicator table arrives.

    It keeps a reference to what it is given and reads it after the run: the
    view's own work is ``run``'s, the benchmark's bookkeeping is not timed.
    """

    def __init__(self, interval: str, metrics: Metrics) -> None:
        super().__init__(interval, metrics)
        #: per trade batch: wall clock when read, the batch
        self.batches: list[tuple[int, pa.RecordBatch]] = []
        #: per indicator table: wall clock when made, the table
        self.tables: list[tuple[int, pa.Table]] = []

    def trades(self, data: pa.RecordBatch) -> None:
        now = time.time_ns()
        super().trades(data)
        self.batches.append((now, data))

    def indicators(self, table: pa.Table) -> None:
        now = time.time_ns()
        super().indicators(table)
        if table.num_rows:
            self.tables.append((now, table))


def _trades(data: pa.RecordBatch) -> tuple[np.ndarray, list[str], np.ndarray]:
    """A trade batch's symbol codes, the symbols they index, and the stamps (ns)."""
    column = data.column("symbol")
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return (
        column.indices.to_numpy(zero_copy_only=False),
        column.dictionary.to_pylist(),
        data.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False),
    )


def latencies(view: Timed, partitions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per indicator row: total, feed and pipeline latency (ms), and the distinct closes."""
    stamps, read_at, part_of = [], [], []
    for now, data in view.batches:
        codes, names, ts = _trades(data)
        lut = np.array([partition_for(n, partitions) for n in names], np.int32)
        stamps.append(ts)
        read_at.append(np.full(len(ts), now, np.int64))
        part_of.append(lut[codes] if len(codes) else np.empty(0, np.int32))
    ts_all = np.concatenate(stamps)
    read_all = np.concatenate(read_at)
    part_all = np.concatenate(part_of)
    by_part = {}
    for p in range(partitions):
        mine = part_all == p
        order = np.argsort(ts_all[mine], kind="stable")
        by_part[p] = (ts_all[mine][order], read_all[mine][order])
    total, feed, pipe, closes = [], [], [], set()
    for now, table in view.tables:
        ends = table.column("bar_end").cast(pa.int64()).to_numpy()
        symbols = table.column("symbol").to_pylist()
        for end, symbol in zip(ends.tolist(), symbols, strict=True):
            ts, read = by_part[partition_for(symbol, partitions)]
            k = int(np.searchsorted(ts, end, side="left"))
            if k == len(ts):  # closed without a trade past its end (the clock): no sample
                continue
            closes.add((partition_for(symbol, partitions), int(ts[k])))
            total.append((now - ts[k]) / 1e6)
            feed.append((read[k] - ts[k]) / 1e6)
            pipe.append((now - read[k]) / 1e6)
    return np.array(total), np.array(feed), np.array(pipe), len(closes)


def distribution(ms: np.ndarray) -> dict[str, float]:
    """p50, p90, p99 and max of a sample, in ms."""
    if not len(ms):
        return {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan"),
                "max_ms": float("nan")}  # fmt: skip
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50_ms": round(float(p50), 3), "p90_ms": round(float(p90), 3),
            "p99_ms": round(float(p99), 3), "max_ms": round(float(ms.max()), 3)}  # fmt: skip


def measure(rate: float, seconds: float, symbols: int, delivery_ms: float) -> dict:
    """Run the pipeline for ``seconds``; the latency figures."""
    settings = Settings().replace(lateness=0.0)
    proc = processor_settings(settings, wall_clock=True)
    metrics = Metrics()
    view = Timed(proc.intervals[0], metrics)
    feed = Simulator(symbols=symbols, rate=rate, seed=0, realtime=True, quotes=True,
                     delivery_s=delivery_ms / 1e3)  # fmt: skip
    with tempfile.TemporaryDirectory() as lake:
        options = RunnerOptions(
            lake=lake, rules=rules_from(settings), processor=proc,
            partitions=settings.partitions, duration=seconds,
        )  # fmt: skip
        started, cpu, wall_start = time.monotonic(), time.process_time(), time.time_ns()
        snapshot = EmbeddedPipeline(feed, options, metrics, view).run()
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    total, feed_ms, pipe_ms, closes = latencies(view, settings.partitions)
    first_read = view.batches[0][0] if view.batches else wall_start
    return {
        "rate": rate,
        "symbols": symbols,
        "delivery_ms": delivery_ms,
        "cpu_per_s": round(cpu / elapsed, 3),
        "seconds": round(elapsed, 2),
        # from the pipeline's start to its feed's first trades: the kernels load before
        "feed_start_s": round((first_read - wall_start) / 1e9, 3),
        "ticks_per_s": round(snapshot.ticks_in / (elapsed - (first_read - wall_start) / 1e9)),
        "rows": int(len(total)),
        "closes": closes,
        "latency": distribution(total),
        "feed": distribution(feed_ms),
        "pipeline": distribution(pipe_ms),
    }


def step_floor(rate: float, seconds: float, symbols: int, delivery_ms: float) -> dict:
    """The processor's step alone, on the input of the pipeline's deliveries.

    The simulator's trades and quotes of ``seconds`` (stamped before now, on
    the virtual clock: as fast as the step goes), cut into batches of the
    trades of one delivery (``rate`` x the grid), go through a processor with
    the pipeline's settings, in this thread, with no other stage running:
    each delivery's step (its quotes taken, its trades processed: what the
    process service does per poll) is timed. The steps that close bars (the
    samples of the pipeline) apart from the others.
    """
    settings = Settings().replace(lateness=0.0)
    per_batch = max(1, round(rate * delivery_ms / 1e3))
    start = time.time_ns() - int((seconds + 60) * 1e9)  # in the past: no trade is "future"
    feed = Simulator(symbols=symbols, rate=rate, seed=0, realtime=False, intraday=False,
                     quotes=True, start_ts=start, batch_size=per_batch)  # fmt: skip
    proc = replace(processor_settings(settings, wall_clock=True), dataset=feed_dataset(feed))
    processor = Processor(proc, rules_from(settings))
    processor.warm_up()
    closing, other, offset, quotes = [], [], 0, None
    for item in feed.batches():
        batch = Batch("ticks", 0, offset, offset + item.data.num_rows - 1, kind=item.kind,
                      columns=item.data)  # fmt: skip
        offset += item.data.num_rows
        if item.kind == "quote":
            quotes = batch
            continue
        began = time.perf_counter_ns()
        if quotes is not None:
            processor.add_quotes(quotes)
        (out,) = processor.process_each([batch])
        took = (time.perf_counter_ns() - began) / 1e6
        (closing if out.indicators.num_rows else other).append(took)
        quotes = None
        if int(pc.max(item.data.column("ts")).cast(pa.int64()).as_py()) - start > seconds * 1e9:
            break
    return {
        "seconds": seconds,
        "trades_per_step": per_batch,
        "closing_steps": len(closing),
        "other_steps": len(other),
        "closing": distribution(np.array(closing)),
        "other": distribution(np.array(other)),
    }


class _Beat:
    """A feed of one-row batches on a delivery grid, stamped when they are read."""

    name = "beat"
    realtime = True

    def __init__(self, delivery_ms: float) -> None:
        self.delivery_s = delivery_ms / 1e3
        self._closed = False

    def batches(self) -> Iterator[FeedBatch]:
        beat = time.monotonic()
        while not self._closed:
            beat += self.delivery_s
            time.sleep(max(beat - time.monotonic(), 0.0))
            stamp = pa.record_batch([pa.array([time.time_ns()], pa.int64())], names=["ts"])
            yield FeedBatch("trade", stamp)

    def close(self) -> None:
        self._closed = True


def handoff_floor(seconds: float, delivery_ms: float) -> dict:
    """The pipeline's hand-offs alone: feed thread, produce service, in-memory bus, a consumer.

    A feed of one-row batches on the delivery grid, each stamped when read,
    goes through the produce service (its read-ahead thread, its own thread)
    to the embedded bus's ``ticks``; a consumer on another thread polls as
    the process service does and notes, per batch, the time from its stamp
    to the poll's return. No processing: the floor of the threads' wake-ups.
    """
    bus, topics = MemoryBus(), Topics()
    bus.create_topics([topics.ticks, topics.name("dlq")], 1)
    consumer = bus.consumer("floor", [topics.ticks])
    waits: list[float] = []
    stop = threading.Event()
    producer = ProduceService(bus, topics, _Beat(delivery_ms), ProduceOptions(duration=seconds),
                              stop)  # fmt: skip
    feed = threading.Thread(target=producer.run, name="floor-produce", daemon=True)
    feed.start()
    while not stop.is_set() or any(n > 0 for n in consumer.lag().values()):
        for batch in consumer.poll(1 << 16, 0.05):
            now = time.time_ns()
            assert batch.columns is not None
            waits.extend((now - t) / 1e6 for t in batch.columns.column("ts").to_pylist())
    feed.join()
    consumer.close()
    return {"delivery_ms": delivery_ms, "deliveries": len(waits),
            "handoff": distribution(np.array(waits))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--delivery-ms", type=float, nargs="+", default=[25.0, 2.0, 1.0])
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=None,
        help="seconds of input the step floor processes (default: 4 times "
        "--seconds, at most 120; 0: no floor runs)",
    )
    args = parser.parse_args()
    settle_heap()  # as ``marketpulse run`` does before its pipeline starts
    results = []
    for delivery in args.delivery_ms:
        result = measure(args.rate, args.seconds, args.symbols, delivery)
        results.append(result)
        lat = result["latency"]
        print(
            f"tick-to-indicator, embedded, {result['ticks_per_s']:,} ticks/s, delivery every "
            f"{delivery:g} ms: p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, "
            f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms ({result['rows']:,} rows, "
            f"{result['closes']} closes), {result['cpu_per_s']:.2f} CPU s/s",
            flush=True,
        )
    floor: dict = {"switch_interval_ms": round(sys.getswitchinterval() * 1e3, 3)}
    floor_seconds = (
        min(4 * args.seconds, 120.0) if args.floor_seconds is None else args.floor_seconds
    )
    if floor_seconds > 0:
        grid = args.delivery_ms[0]
        floor["step"] = step_floor(args.rate, floor_seconds, args.symbols, grid)
        floor["handoff"] = handoff_floor(min(args.seconds, 30.0), grid)
        step, hand = floor["step"]["closing"], floor["handoff"]["handoff"]
        print(
            f"floor, delivery every {grid:g} ms: the processor's step alone, closing "
            f"{args.symbols} symbols' bars: p50 {step['p50_ms']} ms, p99 {step['p99_ms']} ms "
            f"({floor['step']['closing_steps']} closes); the hand-offs alone (feed, produce, "
            f"bus, consumer): p50 {hand['p50_ms']} ms, p99 {hand['p99_ms']} ms",
            flush=True,
        )
    print(json.dumps({"embedded": results, "floor": floor}))


if __name__ == "__main__":
    main()
