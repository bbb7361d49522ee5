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
finer grid costs.

Prints a line of figures, then the JSON result (last line, run_all.py convention):

    .venv/bin/python bench/bench_embedded_latency.py --rate 10000 --seconds 30
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import pyarrow as pa

from marketpulse.bus.base import partition_for
from marketpulse.cli.common import processor_settings, rules_from
from marketpulse.config import Settings
from marketpulse.feeds import Simulator
from marketpulse.runtime import Metrics
from marketpulse.runtime.embedded import EmbeddedPipeline, PipelineOptions
from marketpulse.serve import LiveMarket


class Timed(LiveMarket):
    """The live view of ``run``, noting when each trade batch and indicator table arrives."""

    def __init__(self, interval: str, metrics: Metrics) -> None:
        super().__init__(interval, metrics)
        #: per trade batch: wall clock when read, its symbols' codes, their names, stamps
        self.batches: list[tuple[int, np.ndarray, list[str], np.ndarray]] = []
        #: per indicator table: wall clock when made, bar ends, symbols
        self.tables: list[tuple[int, np.ndarray, list[str]]] = []

    def trades(self, data: pa.RecordBatch) -> None:
        now = time.time_ns()
        super().trades(data)
        column = data.column("symbol")
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        self.batches.append((
            now,
            column.indices.to_numpy(zero_copy_only=False),
            column.dictionary.to_pylist(),
            data.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False),
        ))  # fmt: skip

    def indicators(self, table: pa.Table) -> None:
        now = time.time_ns()
        super().indicators(table)
        if table.num_rows:
            ends = table.column("bar_end").cast(pa.int64()).to_numpy()
            self.tables.append((now, ends, table.column("symbol").to_pylist()))


def latencies(view: Timed, partitions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Per indicator row: total, feed and pipeline latency (ms), and the distinct closes."""
    stamps, read_at, part_of = [], [], []
    for now, codes, names, ts in view.batches:
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
    for now, ends, symbols in view.tables:
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
        options = PipelineOptions(
            lake=lake, rules=rules_from(settings), processor=proc,
            partitions=settings.partitions, duration=seconds,
        )  # fmt: skip
        started, cpu = time.monotonic(), time.process_time()
        snapshot = EmbeddedPipeline(feed, options, metrics, view).run()
        elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    total, feed_ms, pipe_ms, closes = latencies(view, settings.partitions)
    return {
        "rate": rate,
        "symbols": symbols,
        "delivery_ms": delivery_ms,
        "cpu_per_s": round(cpu / elapsed, 3),
        "seconds": round(elapsed, 2),
        "ticks_per_s": round(snapshot.ticks_in / elapsed),
        "rows": int(len(total)),
        "closes": closes,
        "latency": distribution(total),
        "feed": distribution(feed_ms),
        "pipeline": distribution(pipe_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--delivery-ms", type=float, nargs="+", default=[25.0, 2.0, 1.0])
    args = parser.parse_args()
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
    print(json.dumps({"embedded": results}))


if __name__ == "__main__":
    main()
