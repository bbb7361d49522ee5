"""What sends the latency benchmark's trades: its own thread, or ``marketpulse produce``.

:class:`TradeProducer` sends simulated trades at a fixed rate every
:data:`PERIOD_S`, each stamped with the wall clock just before its send;
:class:`CommandFeed` runs ``marketpulse produce``'s simulator as a command,
as users run it, and reads the stamps back from ``ticks``. Both answer the
same questions: the closing stamps per partition, and the trades per second
sent in a window.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka as ck
import msgspec
import numpy as np
import pyarrow as pa
from kafka_common import PARTITIONS, bus_for, end_offsets, new_prefix

from marketpulse.bus.base import partition_for
from marketpulse.bus.topics import Topics
from marketpulse.models import TRADE_SCHEMA

__all__ = ["PERIOD_S", "SYMBOLS", "CommandFeed", "TradeProducer", "child_env"]

SYMBOLS = 50
PERIOD_S = 0.005


def child_env() -> dict[str, str]:
    """This environment without MarketPulse's settings: a command gets only its options."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


class TradeProducer(threading.Thread):
    """Sends trades at ``rate`` per second, stamped with the wall clock at each send."""

    def __init__(self, bootstrap: str, topic: str, rate: float, linger_ms: float) -> None:
        super().__init__(name="trade-producer", daemon=True)
        self.bootstrap, self.topic, self.rate, self.linger_ms = bootstrap, topic, rate, linger_ms
        self.stop = threading.Event()
        self.names = [f"SYM{i:02d}" for i in range(SYMBOLS)]
        self.dictionary = pa.array(self.names, pa.string())
        self.partition_of = np.array([partition_for(s, PARTITIONS) for s in self.names])
        self.stamps: list[int] = []  # one per send
        self.counts: list[int] = []  # the trades of each send
        self.hits: list[np.ndarray] = []  # the partitions each send reached
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def _run(self) -> None:
        rng = np.random.default_rng(7)
        prices = rng.uniform(20.0, 500.0, SYMBOLS)
        bus = bus_for(self.bootstrap)
        with bus.producer(linger_ms=self.linger_ms) as producer:
            start = beat = time.monotonic()
            while not self.stop.is_set():
                beat += PERIOD_S
                pause = beat - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                n = int(self.rate * (time.monotonic() - start)) - self.sent
                if n <= 0:
                    continue
                symbol = rng.integers(0, SYMBOLS, n).astype(np.int32)
                prices *= np.exp(rng.normal(0.0, 2e-4, SYMBOLS))
                stamp = time.time_ns()
                data = pa.RecordBatch.from_arrays(
                    [
                        pa.DictionaryArray.from_arrays(pa.array(symbol), self.dictionary),
                        pa.array(np.full(n, stamp, np.int64)),
                        pa.array(np.round(prices[symbol], 2)),
                        pa.array(np.full(n, 100.0)),
                        pa.nulls(n, pa.string()),  # exchange
                        pa.nulls(n, pa.string()),  # condition
                        pa.nulls(n, pa.string()),  # dataset: the processor's
                    ],
                    schema=TRADE_SCHEMA,
                )
                producer.send_columns(self.topic, "trade", data)
                self.stamps.append(stamp)
                self.counts.append(n)
                self.hits.append(np.unique(self.partition_of[symbol]))
                self.sent += n
        if producer.failed:
            raise RuntimeError(f"{producer.failed} trades not delivered: {producer.errors}")

    def trades_per_s(self, lo: int, hi: int) -> float:
        """Trades sent with a stamp in [lo, hi) ns, per second (after the thread stopped)."""
        return _per_second(np.asarray(self.stamps, np.int64), np.asarray(self.counts), lo, hi)

    def closing_stamps(self) -> dict[int, np.ndarray]:
        """Per ticks partition, the ascending stamps of the sends that reached it."""
        stamps = np.asarray(self.stamps, np.int64)
        out = {}
        for p in range(PARTITIONS):
            reached = np.array([p in hit for hit in self.hits], bool)
            out[p] = stamps[reached]
        return out


class _Stamp(msgspec.Struct):
    ts: int
    type: str = "trade"


_decode_stamp = msgspec.json.Decoder(_Stamp).decode


class CommandFeed:
    """``marketpulse produce --feed simulator --rate RATE`` as a command, its defaults otherwise.

    What a user runs: the simulator stamps each trade with its arrival time on
    the wall clock and delivers the arrivals due every 25 ms (its default grid),
    through the command's producer (its linger). The stamps are read back from
    ``ticks`` after the run (:meth:`closing_stamps`). The same interface as
    :class:`TradeProducer`.
    """

    def __init__(self, bootstrap: str, topics: Topics, rate: float, log: Path) -> None:
        self.bootstrap, self.topic, self.rate, self.log = bootstrap, topics.ticks, rate, log
        self.command = [
            sys.executable, "-m", "marketpulse", "produce", "--bootstrap-servers", bootstrap,
            "--topic-prefix", topics.prefix, "--feed", "simulator", "--rate", f"{rate:g}",
        ]  # fmt: skip
        self.stop = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.trades = np.zeros(0, np.int64)  # every trade's stamp, read back (closing_stamps)

    def start(self) -> None:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.command, stdout=out, stderr=subprocess.STDOUT,
                                         env=child_env())  # fmt: skip

    def trades_per_s(self, lo: int, hi: int) -> float:
        """Trades stamped in [lo, hi) ns, per second (after :meth:`closing_stamps`)."""
        return _per_second(self.trades, None, lo, hi)

    @property
    def error(self) -> BaseException | None:
        code = self.proc.poll() if self.proc is not None else None
        if code is None or (self.stop.is_set() and code in (0, 130)):
            return None
        return RuntimeError(f"marketpulse produce exited {code}:\n{self.log.read_text()[-3000:]}")

    def join(self) -> None:
        """Stop it as a user does (Ctrl-C: what it accepted is flushed) and wait for it."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def closing_stamps(self) -> dict[int, np.ndarray]:
        """Per ticks partition, the largest stamp so far at each of its records, in offset order.

        The first of them at or after a time is the stamp of the first trade of
        the partition stamped then or later: the one whose watermark closes a bar.
        """
        ends = end_offsets(self.bootstrap, self.topic)
        consumer = ck.Consumer({"bootstrap.servers": self.bootstrap, "group.id": new_prefix("stamps"),
                                "enable.auto.commit": False})  # fmt: skip
        stamps: dict[int, list[int]] = {p: [] for p in ends}  # of trades: quotes close no bar
        try:
            consumer.assign([ck.TopicPartition(self.topic, p, 0) for p, end in ends.items() if end])
            left = {p for p, end in ends.items() if end}
            deadline = time.monotonic() + 300
            while left and time.monotonic() < deadline:
                for message in consumer.consume(10_000, 1.0):
                    if message.error() is not None:
                        raise RuntimeError(message.error().str())
                    p = message.partition()
                    tick = _decode_stamp(message.value())
                    if tick.type == "trade":
                        stamps[p].append(tick.ts)
                    if message.offset() + 1 >= ends[p]:
                        left.discard(p)
            if left:
                raise RuntimeError(f"{self.topic}: partitions {sorted(left)} not read to their end")
        finally:
            consumer.close()
        self.trades = np.sort(np.concatenate([np.asarray(v, np.int64) for v in stamps.values()]))
        return {p: np.maximum.accumulate(np.asarray(v, np.int64)) if v else np.zeros(0, np.int64)
                for p, v in stamps.items()}  # fmt: skip


def _per_second(stamps: np.ndarray, counts: np.ndarray | None, lo: int, hi: int) -> float:
    """Trades per second stamped in [lo, hi) ns.

    ``stamps``: ascending; ``counts``: the trades of each (``None``: one each).
    """
    i, j = np.searchsorted(stamps, [lo, hi]).tolist()
    trades = j - i if counts is None else int(counts[i:j].sum())
    return trades / ((hi - lo) / 1e9)
