"""Scale in symbols: catch-up rate and memory of ``marketpulse process`` at 10 to 100,000 symbols.

For each number of symbols, a fresh ``ticks`` topic (6 partitions) is loaded
with the same number of simulated trades (``Simulator(realtime=False)``: the
reference tickers first, then synthetic ones; each symbol's share of the
trades falls off as rank^-0.7, so at 100,000 symbols the least active still
trades about 15 times in 5 M ticks, and every symbol has state to snapshot
and restore; 5 M is the size of the Lean catch-up of ``bench_kafka_catchup.py``,
5,049,421 trades, so the 10-symbol run compares with it). The event-time rate is fixed
(``--event-rate``, default 5,000 trades/s), so every size covers the same
1,000 s of market time and the bars per tick grow with the symbols, as they
do in a real market with more names.

After them, one trade per partition 10 minutes later moves every partition's
watermark past every window. Then ``marketpulse process`` runs as deployed
(its own interpreter, the default settings: 1s/1m/5m bars, 13 indicators,
default alerts, exactly-once transactions carrying the changed symbols'
state), with ``--idle-timeout 0`` (bars close by input alone, so the outputs
depend on the input alone and the bar count can be checked exactly):

1. a first service is killed (SIGKILL, like a crash) once its group's committed
   offsets pass half of ``ticks``;
2. a second one, with the same instance id (it fences the first and aborts its
   open transaction), restores every symbol's state from the ``state`` topic
   and finishes; it is timed to the moment the committed offsets reach the end
   of ``ticks`` and then exits when idle (``--exit-when-idle 5``: the time
   after the last commit is not measured, and a loaded machine can stall a
   fetch for over a second while records are left).

The rate is the ticks of the topic over both services' wall time (interpreter
start-ups, restore and the work redone after the kill included). Memory is the
peak resident set of each service (``wait4``'s ``ru_maxrss``). The restore time
is the second service's own figure ("assigned ... in X s": reading the state
topic and restoring every partition). Checked at the end: the committed
``bars`` topic holds exactly one bar per (symbol, interval, window) that
had a trade, no more (duplicates) and no fewer.

Then three relays (``bench/scale_floor.py``) read the same ``ticks`` and write
the service's traffic without its work: its bars and indicator rows (as many
per tick, of their mean size); those and a copy of every trade; those and the
state of every symbol read since the last commit. Their rates are the floors.

A broker of its own is started unless ``MARKETPULSE_KAFKA_BOOTSTRAP`` names
one. Prints one JSON object (last line) and writes the plot (``--svg``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka as ck
import msgspec
import numpy as np
import pyarrow as pa
from bench_kafka_catchup import CommitWatch
from kafka_common import (
    PARTITIONS,
    ROOT,
    bus_for,
    cluster,
    create_topics,
    dead_letter_reasons,
    end_offsets,
    new_prefix,
)
from scale_floor import relay, sample_sizes
from scale_section import write_svg

from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.feeds import Simulator
from marketpulse.models import TRADE_SCHEMA
from marketpulse.stream.checkpoint import META_KEY, NAMES_KEY

INTERVALS = {"1s": 1_000_000_000, "1m": 60_000_000_000, "5m": 300_000_000_000}
START_TS = 1_700_000_000_000_000_000  # a fixed event time: every run the same stream
ASSIGNED = re.compile(rb"process: assigned .* in ([0-9.]+) s")


def preload(bootstrap: str, topics: Topics, symbols: int, ticks: int, event_rate: float) -> dict:
    """Simulate ``ticks`` trades of ``symbols`` symbols into ``ticks``; the expected bar counts."""
    simulator = Simulator(
        symbols=symbols, rate=event_rate, seed=7, start_ts=START_TS, realtime=False,
        batch_size=65_536, max_events=ticks,
    )  # fmt: skip
    bus = bus_for(bootstrap)
    windows: dict[str, list[np.ndarray]] = {name: [] for name in INTERVALS}
    generate = 0.0
    start = time.perf_counter()
    sent = 0
    with bus.producer() as producer:
        batches = iter(simulator.batches())
        while True:
            before = time.perf_counter()
            feed = next(batches, None)
            generate += time.perf_counter() - before
            if feed is None:
                break
            data = feed.data
            producer.send_columns(topics.ticks, "trade", data)
            sid = data.column("symbol").indices.to_numpy().astype(np.int64)
            ts = data.column("ts").to_numpy()
            for name, ns in INTERVALS.items():
                windows[name].append(np.unique((ts // ns) * symbols + sid))
            sent += data.num_rows
    seconds = time.perf_counter() - start
    last_ts = int(ts[-1])
    if producer.failed:
        raise RuntimeError(f"preload: {producer.failed} records failed: {producer.errors}")
    expected = {name: int(len(np.unique(np.concatenate(w)))) for name, w in windows.items()}
    return {"ticks": sent, "last_ts": last_ts, "seconds": seconds, "generate_seconds": generate,
            "ticks_per_s": sent / seconds, "expected_bars": expected}  # fmt: skip


def close_windows(bootstrap: str, topics: Topics, ends: dict[int, int], last_ts: int) -> int:
    """Send one trade per used partition, 10 minutes after the last: every window closes.

    The processor runs with ``--idle-timeout 0`` (bars close by input alone), so
    its outputs depend on its input alone; these trades move each partition's
    watermark past every window of the simulated ones (their own stay open).
    """
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": new_prefix("keys"),
                            "enable.auto.commit": False})  # fmt: skip
    symbols: dict[int, str] = {}
    try:
        consumer.assign([ck.TopicPartition(topics.ticks, p, 0) for p, n in ends.items() if n])
        deadline = time.monotonic() + 60
        while len(symbols) < sum(1 for n in ends.values() if n) and time.monotonic() < deadline:
            for message in consumer.consume(100, 0.5):
                if message.error() is None:
                    symbols.setdefault(message.partition(), message.key().decode())
    finally:
        consumer.close()
    n = len(symbols)
    data = pa.RecordBatch.from_arrays(
        [pa.array(list(symbols.values())).dictionary_encode(),
         pa.array([last_ts + 600 * 1_000_000_000] * n, pa.int64()), pa.array([100.0] * n),
         pa.array([100.0] * n), pa.array(["Q"] * n), pa.nulls(n, pa.string()),
         pa.nulls(n, pa.string())],
        schema=TRADE_SCHEMA,
    )  # fmt: skip
    with bus_for(bootstrap).producer() as producer:
        producer.send_columns(topics.ticks, "trade", data)
    return n


def _command(bootstrap: str, topics: Topics, group: str) -> list[str]:
    return [
        sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers", bootstrap,
        "--topic-prefix", topics.prefix, "--group", group, "--instance-id", "bench-scale",
        "--exit-when-idle", "5", "--idle-timeout", "0",
    ]  # fmt: skip


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )
    return env


class Child:
    """``marketpulse process`` in its own interpreter; reaped with ``wait4`` for its peak RSS."""

    def __init__(self, command: list[str]) -> None:
        self.log = tempfile.TemporaryFile()
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=_env())  # fmt: skip
        self.code: int | None = None
        self.peak_mb = 0.0

    def _reaped(self, flags: int) -> bool:
        if self.code is None:
            pid, status, usage = os.wait4(self.proc.pid, flags)
            if pid == 0:
                return False
            self.code = os.waitstatus_to_exitcode(status)
            self.peak_mb = usage.ru_maxrss / 1024
        return True

    def alive(self) -> bool:
        """Whether it still runs (reaping it when not)."""
        return not self._reaped(os.WNOHANG)

    def wait(self, kill: bool = False) -> bytes:
        """Wait for its end (after SIGKILL with ``kill``); its output."""
        if kill and self.code is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self._reaped(0)
        self.proc.returncode = self.code
        self.log.seek(0)
        output = self.log.read()
        self.log.close()
        return output


def _committed_total(watch: CommitWatch) -> int:
    return sum(max(o, 0) for o in watch.committed().values())


def run_killed(bootstrap: str, topics: Topics, group: str, ends: dict[int, int]) -> dict:
    """The first service: started, then killed once half of ``ticks`` is committed."""
    total = sum(ends.values())
    watch = CommitWatch(bootstrap, group, topics.ticks, ends)
    child = Child(_command(bootstrap, topics, group))
    deadline = time.monotonic() + 900
    done = 0
    while time.monotonic() < deadline and child.alive():
        done = _committed_total(watch)
        if done >= total / 2:
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - child.started
    if not child.alive():
        output = child.wait()
        raise RuntimeError(f"the first service exited early:\n{output.decode()[-3000:]}")
    child.wait(kill=True)
    return {"seconds": seconds, "committed_at_kill": done, "share_at_kill": done / total,
            "peak_rss_mb": child.peak_mb}  # fmt: skip


def run_restored(bootstrap: str, topics: Topics, group: str, ends: dict[int, int]) -> dict:
    """The second service: restores the state, finishes, exits when idle."""
    watch = CommitWatch(bootstrap, group, topics.ticks, ends)
    child = Child(_command(bootstrap, topics, group))
    try:
        done = watch.wait(child.alive, interval=0.02)
    except (RuntimeError, TimeoutError):
        output = child.wait(kill=True)
        raise RuntimeError(f"the second service failed:\n{output.decode()[-3000:]}") from None
    output = child.wait()
    if child.code != 0:
        raise RuntimeError(f"the second service exited {child.code}:\n{output.decode()[-3000:]}")
    found = ASSIGNED.search(output)
    if found is None:
        raise RuntimeError(f"the second service reported no assignment:\n{output.decode()}")
    return {"seconds": done - child.started, "restore_seconds": float(found[1]),
            "peak_rss_mb": child.peak_mb}  # fmt: skip


class _BarKey(msgspec.Struct):
    symbol: str
    timeframe: str
    bar_start: int


def count_bars(bootstrap: str, topic: str) -> dict:
    """Committed bars by interval, and how many of them repeat a (symbol, interval, start)."""
    ends = end_offsets(bootstrap, topic)
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": new_prefix("bars"),
         "enable.auto.commit": False, "enable.partition.eof": True,
         "isolation.level": "read_committed"}
    )  # fmt: skip
    decoder = msgspec.json.Decoder(_BarKey)
    counts: dict[str, int] = {}
    keys: set[tuple[str, str, int]] = set()
    records = 0
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in ends])
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 600
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        continue
                    raise RuntimeError(error.str())
                bar = decoder.decode(message.value())
                counts[bar.timeframe] = counts.get(bar.timeframe, 0) + 1
                keys.add((bar.symbol, bar.timeframe, bar.bar_start))
                records += 1
    finally:
        consumer.close()
    return {"by_interval": counts, "duplicates": records - len(keys)}


def measure(bootstrap: str, symbols: int, ticks: int, event_rate: float) -> dict:
    """One size: preload, the killed service, the restored one, the bar check."""
    topics = Topics(new_prefix(f"scale{symbols}"))
    bus = bus_for(bootstrap)
    create_topics(bus, topics)
    loaded = preload(bootstrap, topics, symbols, ticks, event_rate)
    ends = end_offsets(bootstrap, topics.ticks)
    if sum(ends.values()) != loaded["ticks"]:
        raise RuntimeError(f"ticks holds {sum(ends.values())} records, not {loaded['ticks']}")
    closing = close_windows(bootstrap, topics, ends, loaded["last_ts"])
    ends = end_offsets(bootstrap, topics.ticks)
    group = f"{topics.prefix}process"
    first = run_killed(bootstrap, topics, group, ends)
    second = run_restored(bootstrap, topics, group, ends)
    bars = count_bars(bootstrap, topics.name("bars"))
    total_bars = sum(bars["by_interval"].values())
    # the floors: the same ticks in, as many records out (a bar and an indicator row per
    # bar, each of their mean size), no processing; then with the copy of each trade the
    # service keeps, then with the state of each symbol a transaction changed too
    size = (sample_sizes(bootstrap, topics.name("bars"))
            + sample_sizes(bootstrap, topics.name("indicators"))) / 2  # fmt: skip
    trades_bytes = sample_sizes(bootstrap, topics.name("trades"))
    # a symbol's state record (the partition's record and its names records aside)
    state_bytes = sample_sizes(
        bootstrap, topics.name("state"), last=True, skip_keys=(META_KEY, NAMES_KEY)
    )
    read, per_tick = sum(ends.values()), 2 * total_bars / sum(ends.values())
    floor = relay(bootstrap, topics, read, per_tick, size)
    floor_trades = relay(bootstrap, topics, read, per_tick, size, trades_bytes)
    floor_state = relay(bootstrap, topics, read, per_tick, size, trades_bytes, state_bytes)
    expected = loaded["expected_bars"]
    seconds = first["seconds"] + second["seconds"]
    result = {
        "symbols": symbols,
        "ticks": loaded["ticks"],
        "preload": loaded,
        "first": first,
        "second": second,
        "seconds": seconds,
        "closing_ticks": closing,
        "ticks_per_s": (loaded["ticks"] + closing) / seconds,
        "peak_rss_mb": max(first["peak_rss_mb"], second["peak_rss_mb"]),
        "restore_seconds": second["restore_seconds"],
        "bars": bars,
        "floor": floor,
        "floor_trades": floor_trades,
        "floor_state": floor_state,
        "state_bytes": state_bytes,
        "bars_complete": bars["by_interval"] == expected and bars["duplicates"] == 0,
        "dead_reasons": dead_letter_reasons(bootstrap, topics.name("dlq")),
    }
    bus.delete_topics(
        [spec.name for spec in topic_specs(topics)]
    )  # the broker's disk: 5 M ticks a size
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--symbols", default="10,1000,10000,100000", help="symbol counts, comma-separated"
    )
    parser.add_argument(
        "--ticks", type=int, default=5_000_000, help="trades at every size (default 5,000,000)"
    )
    parser.add_argument(
        "--event-rate", type=float, default=5000.0,
        help="simulated trades per second of event time (default 5,000: 1,000 s for 5 M)",
    )  # fmt: skip
    parser.add_argument(
        "--svg", default=str(ROOT / "docs" / "scale.svg"),
        help="where to write the plot (default docs/scale.svg); '' for none",
    )  # fmt: skip
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.symbols.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--symbols: not a list of whole numbers: {args.symbols!r}")
    if not sizes or min(sizes) < 1 or args.ticks < 1000:
        parser.error("--symbols must be positive and --ticks at least 1,000")
    runs = []
    with cluster() as kafka:
        for symbols in sizes:
            run = measure(kafka.bootstrap, symbols, args.ticks, args.event_rate)
            print(
                f"{symbols:,} symbols: {run['ticks_per_s']:,.0f} ticks/s (floors "
                f"{run['floor']['ticks_per_s']:,.0f} / {run['floor_trades']['ticks_per_s']:,.0f}"
                f" / {run['floor_state']['ticks_per_s']:,.0f}), peak RSS "
                f"{run['peak_rss_mb']:,.0f} MB, restore {run['restore_seconds']:.2f} s, "
                f"bars complete: {run['bars_complete']}",
                file=sys.stderr,
            )
            runs.append(run)
        result = {"broker": kafka.describe(), "partitions": PARTITIONS,
                  "event_rate": args.event_rate, "runs": runs}  # fmt: skip
    if args.svg:
        write_svg(result, Path(args.svg))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
