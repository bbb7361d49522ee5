"""Kafka end-to-end latency: a trade produced at a fixed rate -> its indicator row read.

For each ``--guarantee`` of the service (exactly-once, at-least-once) and each
rate (10k and 100k trades/s by default), on fresh topics (6 partitions):

* ``marketpulse process`` runs as a command (its own interpreter, as deployed)
  with ``--lateness 0`` and otherwise the defaults a user gets (commit
  interval, output grace, 1s/1m/5m bars, the default alert rules, idle
  timeout 2 s).
* A producer thread of this script sends simulated trades of 50 symbols
  (random walk prices) with the project's producer (idempotent, acks=all, lz4,
  the linger of ``marketpulse produce``): every 5 ms, the trades due at the
  rate so far, all stamped with the wall clock (``time.time_ns()``) just
  before ``send_columns``.
* A ``read_committed`` consumer on ``indicators`` with the client's default
  settings, in a process of its own, notes the wall clock at which each row
  arrives.

Latency of an indicator row: with lateness 0 a bar ``[S, E)`` closes when
its partition's watermark (the largest event time seen) reaches ``E``, so the
first trade of that ticks partition stamped ``>= E`` closes it (the processor
routes the row to the same partition number). Since trades are stamped with
the clock at which they are produced, the latency of a row is its arrival
time minus the stamp of that closing trade. Every row from the first one on
counts (start-up included: fresh topics, a service just started); 170 s per
run give more than 1,000 bar closes (6 partitions, a close each per second).

Where the time goes: the ``ticks`` topic is created with
``message.timestamp.type=LogAppendTime`` (each trade carries the broker's
append time) and the service writes the wall clock of its stages
(``MARKETPULSE_PROCESS_TRACE``, :mod:`marketpulse.runtime.latency_trace`): the
``breakdown`` of each run gives p50/p99 of each stage of a close's first row
(:data:`STAGES`).

What a consumer of ``indicators`` sees (``--feed command``): the trades
come from ``marketpulse produce --feed simulator --rate RATE`` as a command,
its defaults otherwise (50 symbols, quotes too, each trade stamped with its
arrival time on the wall clock and delivered on the simulator's 25 ms grid);
their stamps are read back from ``ticks`` after the run. Each row's latency is
also taken from its bar's end (``from_bar_end``): the bar ``[S, E)`` closes on
the partition's first trade stamped at or after ``E`` + the lateness
(``--lateness``: 0, or ``default``), and *first tick* is that wait.

A broker of its own is started in a temporary directory unless
``MARKETPULSE_KAFKA_BOOTSTRAP`` names one, at the default priority
(``--broker-nice`` to change it). Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka as ck
import msgspec
import numpy as np
from kafka_common import (
    PARTITIONS,
    bus_for,
    cluster,
    new_prefix,
    process_cpu_seconds,
)
from latency_feeds import PERIOD_S, SYMBOLS, CommandFeed, TradeProducer, child_env

from marketpulse.bus.base import partition_for
from marketpulse.bus.topics import Topics, topic_specs
from marketpulse.runtime.latency_trace import TRACE_ENV
from marketpulse.runtime.process import ProcessOptions
from marketpulse.runtime.produce import ProduceOptions
from marketpulse.stream import ProcessorSettings


class _Row(msgspec.Struct):
    symbol: str
    timeframe: str
    bar_end: int


_decode_row = msgspec.json.Decoder(_Row).decode


def _read_rows(bootstrap: str, topic: str, fetch_wait_ms, first, stop, out) -> None:
    """Body of the reader process: note each record's arrival; send the rows back at the end."""
    config = {
        "bootstrap.servers": bootstrap,
        "group.id": new_prefix("reader"),
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }
    if fetch_wait_ms is not None:
        config["fetch.wait.max.ms"] = fetch_wait_ms
    consumer = ck.Consumer(config)
    consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(PARTITIONS)])
    # arrival (ns), partition, value, record timestamp (ms: when the service produced it)
    rows: list[tuple[int, int, bytes, int]] = []
    error = None
    try:
        while not stop.is_set():
            message = consumer.poll(0.05)
            if message is None:
                continue
            arrival = time.time_ns()
            if message.error() is not None:
                raise RuntimeError(message.error().str())
            rows.append((arrival, message.partition(), message.value(), message.timestamp()[1]))
            first.set()
    except Exception as exc:  # noqa: BLE001 - reported by the main process
        error = repr(exc)
    finally:
        consumer.close()
        out.send((rows, error))


class RowReader:
    """A read_committed consumer of a topic, in a process of its own, noting each arrival.

    Its own process, so that the producer thread of this script never delays
    it (both would share one interpreter lock otherwise).
    """

    def __init__(self, bootstrap: str, topic: str, fetch_wait_ms: int | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        self.first = context.Event()
        self.stop = context.Event()
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_read_rows, args=(bootstrap, topic, fetch_wait_ms, self.first, self.stop, send),
            name="row-reader", daemon=True,
        )  # fmt: skip
        self.rows: list[tuple[int, int, bytes, int]] = []
        self.error: BaseException | None = None

    def start(self) -> None:
        self._process.start()

    def join(self) -> None:
        """Collect the rows (call after ``stop.set()``)."""
        if self._receive.poll(60):
            self.rows, error = self._receive.recv()
            if error is not None:
                self.error = RuntimeError(f"row reader: {error}")
        else:
            self.error = RuntimeError("row reader: no rows sent back within 60 s")
        self._process.join(10)


def start_service(
    bootstrap: str, prefix: str, log: Path, commit_interval: float | None = None,
    guarantee: str | None = None, trace: Path | None = None, lateness: float | None = 0.0,
) -> subprocess.Popen:  # fmt: skip
    """``marketpulse process --lateness 0``, with the defaults a user gets otherwise.

    ``lateness``: the option's value; ``None`` leaves it out (the default).
    """
    command = [
        sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers", bootstrap,
        "--topic-prefix", prefix, "--group", f"{prefix}process", "--instance-id", "latency",
    ]  # fmt: skip
    if lateness is not None:
        command += ["--lateness", f"{lateness:g}"]
    if commit_interval is not None:
        command += ["--commit-interval", str(commit_interval)]
    if guarantee is not None:
        command += ["--guarantee", guarantee]
    env = child_env()
    if trace is not None:
        env[TRACE_ENV] = str(trace)
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)


def start_relay(bootstrap: str, prefix: str, log: Path, guarantee: str | None) -> subprocess.Popen:
    """``bench/kafka_relay.py``: the same clients, no analytics (the floor; see its docstring)."""
    command = [
        sys.executable, str(Path(__file__).with_name("kafka_relay.py")), "--bootstrap", bootstrap,
        "--prefix", prefix, "--guarantee", guarantee or "exactly-once",
    ]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=child_env())


#: What reads ``ticks`` and writes ``indicators``: the service, or the relay (the floor).
ENGINES = ("service", "relay")
#: What sends the trades: this script's thread (:class:`TradeProducer`), or
#: ``marketpulse produce``'s simulator as a command (:class:`CommandFeed`).
FEEDS = ("thread", "command")


def measure(bootstrap: str, rate: float, warmup: float, duration: float, linger_ms: float,
            work: Path, commit_interval: float | None = None, guarantee: str | None = None,
            closes_csv: Path | None = None, reader_fetch_wait_ms: int | None = None,
            engine: str = "service", feed: str = "thread",
            lateness: float | None = 0.0) -> dict:  # fmt: skip
    """Run the engine, the producer and the reader at one rate; return the latency figures.

    ``closes_csv``: also write one line per bar close (partition, bar end,
    closing stamp, rows, latency of its first and last row, until produced),
    to see which closes make the tail. ``lateness``: the service's
    ``--lateness`` (``None``: its default); a bar ``[S, E)`` closes on the
    first trade of its partition stamped at or after ``E`` + lateness.
    """
    started = time.monotonic()
    topics = Topics(new_prefix(f"latency{int(rate)}"))
    specs = {spec.name: dict(spec.config) for spec in topic_specs(topics)}
    # the broker stamps each trade with its append time: the "to the broker" stage
    specs[topics.ticks]["message.timestamp.type"] = "LogAppendTime"
    bus_for(bootstrap).create_topics(list(specs), PARTITIONS, 1, specs)  # all in one request
    topics_s = time.monotonic() - started
    tag = f"{engine}-{int(rate)}-{guarantee or 'default'}"
    log, trace = work / f"{tag}.log", work / f"trace-{tag}.jsonl"
    if engine == "relay":
        service = start_relay(bootstrap, topics.prefix, log, guarantee)
    else:
        service = start_service(bootstrap, topics.prefix, log, commit_interval, guarantee, trace,
                                lateness)  # fmt: skip
    reader = RowReader(bootstrap, topics.name("indicators"), reader_fetch_wait_ms)
    producer: TradeProducer | CommandFeed
    if feed == "command":
        producer = CommandFeed(bootstrap, topics, rate, work / f"produce-{tag}.log")
    else:
        producer = TradeProducer(bootstrap, topics.ticks, rate, linger_ms)
    late_ns = round((ProcessorSettings().lateness if lateness is None else lateness) * 1e9)
    try:
        reader.start()
        producer.start()
        deadline = time.monotonic() + 90
        while not reader.first.wait(0.5):
            if producer.error is not None:  # a producer that died sends nothing: say why
                raise RuntimeError(f"trade producer: {producer.error!r}") from producer.error
            if time.monotonic() > deadline:
                raise RuntimeError(f"no indicator row within 90 s:\n{log.read_text()[-3000:]}")
        first_ns = time.time_ns()
        first_s = time.monotonic() - started
        time.sleep(warmup)
        begin_ns, cpu0 = time.time_ns(), process_cpu_seconds(service.pid)
        time.sleep(duration)
        end_ns, cpu1 = time.time_ns(), process_cpu_seconds(service.pid)
        producer.stop.set()
        producer.join()
        time.sleep(min(1.0, duration / 4))  # rows of the last bars closed in the window
    finally:
        producer.stop.set()
        if isinstance(producer, CommandFeed):
            producer.join()  # a no-op when it stopped
        service.send_signal(signal.SIGTERM)  # it stops while the reader hands its rows back
        reader.stop.set()
        reader.join()
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
    print(f"  topics {topics_s:.1f} s, first row {first_s:.1f} s, run and stop "
          f"{time.monotonic() - started - first_s:.1f} s", file=sys.stderr)  # fmt: skip
    for thread in (producer, reader):
        if thread.error is not None:
            raise thread.error
    if service.returncode not in (0, 143):  # 143: stopped cleanly by the SIGTERM above
        raise RuntimeError(f"the {engine} failed:\n{log.read_text()[-3000:]}")
    closing = producer.closing_stamps()
    latencies, produced, closes = _latencies(reader.rows, closing, begin_ns, end_ns, late_ns)
    if closes_csv is not None:
        _write_closes(closes_csv, closes)
    start_up = np.asarray(_latencies(reader.rows, closing, first_ns, begin_ns, late_ns)[0]) / 1e6
    whole_ns, _, whole_closes = _latencies(reader.rows, closing, first_ns, end_ns, late_ns)
    whole = np.asarray(whole_ns, np.float64) / 1e6
    ms = np.asarray(latencies, np.float64) / 1e6
    # the part until the service produced the row (record timestamps have ms resolution)
    part = np.asarray(produced, np.float64) / 1e6
    window = (end_ns - begin_ns) / 1e9
    p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if len(ms) else (np.nan,) * 3
    return {
        "engine": engine,
        "rate": rate,
        "guarantee": guarantee or "exactly-once",
        "produced_per_s": producer.trades_per_s(begin_ns, end_ns),
        "seconds": window,
        "samples": len(ms),
        "bar_closes": len(closes),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": float(ms.max()) if len(ms) else np.nan,
        "to_service_produce_p50_ms": float(np.median(part)) if len(part) else np.nan,
        "to_service_produce_p99_ms": float(np.percentile(part, 99)) if len(part) else np.nan,
        "service_cpu_share": (cpu1 - cpu0) / window,
        # a warm-up, from the first row on (fresh topics), when one was asked for
        "start_up_samples": len(start_up),
        "start_up_p99_ms": float(np.percentile(start_up, 99)) if len(start_up) else np.nan,
        "start_up_max_ms": float(start_up.max()) if len(start_up) else np.nan,
        # every row from the first on, warm-up included: what a target is judged on
        "with_start_up": {
            "samples": len(whole),
            "bar_closes": len(whole_closes),
            "p50_ms": float(np.percentile(whole, 50)) if len(whole) else np.nan,
            "p99_ms": float(np.percentile(whole, 99)) if len(whole) else np.nan,
            "max_ms": float(whole.max()) if len(whole) else np.nan,
        },
        "breakdown": breakdown(whole_closes, trace, reader.rows),
        "feed": feed,
        "lateness_s": late_ns / 1e9,
        "from_bar_end": from_bar_end(whole_closes),
        "tail": tail(whole_closes),
    }


#: The first seconds of closes a tail is attributed to start-up in (:func:`tail`).
START_UP_S = 10
MINUTE_NS = 60 * 1_000_000_000


def tail(closes: dict) -> dict:
    """Which closes the rows at or above the p99 (start-up included) come from.

    At a minute's end the 1m bars (every fifth minute the 5m bars too) close with
    the 1s bars: such a close writes two or three times the rows of the others.
    Shares of the tail's rows at a minute's end and in the first
    :data:`START_UP_S` seconds of closes, the share of all rows at a minute's
    end, and the p99 of the rows of the other closes.
    """
    rows = [(latency, end, stamp) for (_, end, stamp), got in closes.items() for latency, _ in got]
    if not rows:
        return {}
    latency = np.asarray([r[0] for r in rows], np.float64) / 1e6
    minute = np.asarray([r[1] % MINUTE_NS == 0 for r in rows])
    stamps = np.asarray([r[2] for r in rows], np.int64)
    early = stamps - stamps.min() < START_UP_S * 1_000_000_000
    slow = latency >= np.percentile(latency, 99)
    others = latency[~minute]
    return {
        "rows": int(slow.sum()),
        "at_minute_end": float(minute[slow].mean()),
        "in_start_up": float(early[slow].mean()),
        "minute_end_rows": float(minute.mean()),
        "minute_end_closes": len({(p, end) for p, end, _ in closes if end % MINUTE_NS == 0}),
        "p99_other_closes_ms": float(np.percentile(others, 99)) if len(others) else np.nan,
    }


def from_bar_end(closes: dict) -> dict:
    """What a consumer of ``indicators`` waits for: a bar's end -> its row at the reader.

    Of every row (start-up included) and apart, per close, the first part of it:
    ``first_tick``, the bar's end -> the stamp of the trade that closes it (the
    lateness, then the first trade of the partition past it).
    """
    rows = [stamp - end + latency for (_, end, stamp), got in closes.items() for latency, _ in got]
    ms = np.asarray(rows, np.float64) / 1e6
    first = np.asarray([stamp - end for _, end, stamp in closes], np.float64) / 1e6

    def spread(values: np.ndarray) -> dict:
        if not len(values):
            return {"p50_ms": np.nan, "p99_ms": np.nan, "max_ms": np.nan}
        p50, p99 = np.percentile(values, [50, 99])
        return {"p50_ms": float(p50), "p99_ms": float(p99), "max_ms": float(values.max())}

    return {"samples": len(ms), "bar_closes": len(first), **spread(ms),
            "first_tick": spread(first)}  # fmt: skip


#: The stages of a bar close's latency, in order (see :func:`breakdown`).
STAGES = (
    ("to_broker", "produce call -> broker append (producer linger, request)"),
    ("to_service", "broker append -> the service's poll returns it (fetch)"),
    ("process", "poll -> outputs handed to the producer (decode, bars, indicators)"),
    ("wait", "-> commit begins (grace for other partitions, other work)"),
    ("offsets", "commit begins -> offsets and state in the transaction"),
    ("end_txn", "-> commit returns (EndTxn)"),
    ("to_reader", "commit returns -> the reader has the row (markers, read_committed fetch; "
                  "at least once: from the outputs' send)"),
)  # fmt: skip


def breakdown(closes: dict, trace: Path, rows: list) -> dict:
    """p50/p99 (ms) of each stage over the bar closes the service's trace follows.

    A close's first row: the stage ends are the produce stamp of its closing
    trade, the broker's append time of its input (the last record of the
    service's batch: ms resolution), when that poll returned, when its bars
    were handed to the producer, the commit that followed (begin, offsets in,
    return) and the reader's arrival. At least once the outputs do not wait
    for a commit: ``wait``, ``offsets`` and ``end_txn`` are left out and
    ``to_reader`` counts from the send.
    """
    if not trace.exists():
        return {}
    outputs: dict[tuple[int, int], list[int]] = {}
    commits: list[list[int]] = []
    for line in trace.read_text().splitlines():
        record = json.loads(line)
        if "o" in record:
            partition, end, poll, record_ms, sent = record["o"]
            outputs.setdefault((partition, end), [poll, record_ms, sent])
        elif record["c"][3]:  # commits holding outputs
            commits.append(record["c"])
    starts = np.asarray([c[0] for c in commits], np.int64)
    stages: dict[str, list[float]] = {name: [] for name, _ in STAGES}
    followed = 0
    for (partition, end, stamp), latencies in closes.items():
        found = outputs.get((partition, end))
        if found is None:
            continue
        poll, record_ms, sent = found
        arrival = stamp + min(latency for latency, _ in latencies)
        followed += 1
        append = record_ms * 1_000_000
        stages["to_broker"].append(append - stamp)
        stages["to_service"].append(poll - append)
        stages["process"].append(sent - poll)
        i = int(np.searchsorted(starts, sent))
        if i < len(commits) and commits[i][2] <= arrival:
            start, offsets, done, _ = commits[i]
            stages["wait"].append(start - sent)
            stages["offsets"].append(offsets - start)
            stages["end_txn"].append(done - offsets)
            stages["to_reader"].append(arrival - done)
        else:  # not behind a commit (at least once)
            stages["to_reader"].append(arrival - sent)
    out: dict = {"closes": followed}
    for name, values in stages.items():
        if values:
            ms = np.asarray(values, np.float64) / 1e6
            out[name] = {"p50_ms": float(np.percentile(ms, 50)),
                         "p99_ms": float(np.percentile(ms, 99)), "n": len(ms)}  # fmt: skip
    return out


def _latencies(
    rows: list, closing: dict[int, np.ndarray], lo: int, hi: int, lateness_ns: int = 0
) -> tuple:
    """Latency and part until produced (ns) of each row whose closing trade was sent in [lo, hi).

    Also the rows of each bar close, keyed by (partition, bar end, closing stamp).
    The closing trade: the partition's first stamped at or after the bar's end
    and ``lateness_ns``.
    """
    latencies, produced, closes, mismatched = [], [], {}, 0
    for arrival, partition, value, created_ms in rows:
        row = _decode_row(value)
        if partition_for(row.symbol, PARTITIONS) != partition:
            mismatched += 1  # the producer's partitioner disagrees with ours: not measurable
            continue
        stamps = closing[partition]
        i = np.searchsorted(stamps, row.bar_end + lateness_ns)  # first send stamped >= E + L
        if i == len(stamps) or not lo <= stamps[i] < hi:
            continue
        latencies.append(arrival - int(stamps[i]))
        produced.append(created_ms * 1_000_000 - int(stamps[i]))
        closes.setdefault((partition, row.bar_end, int(stamps[i])), []).append(
            (latencies[-1], produced[-1])
        )
    if mismatched:
        raise RuntimeError(f"{mismatched} rows on a partition other than their symbol's")
    return latencies, produced, closes


def _write_closes(path: Path, closes: dict) -> None:
    lines = ["partition,bar_end_ns,closing_stamp_ns,rows,first_ms,last_ms,produced_max_ms"]
    for (partition, end, stamp), rows in sorted(closes.items(), key=lambda item: item[0][2]):
        arrived = [latency for latency, _ in rows]
        lines.append(
            f"{partition},{end},{stamp},{len(rows)},{min(arrived) / 1e6:.2f},"
            f"{max(arrived) / 1e6:.2f},{max(p for _, p in rows) / 1e6:.2f}"
        )
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10000,100000", help="trades/s, comma-separated")
    parser.add_argument(
        "--guarantees", default="exactly-once,at-least-once",
        help="the service's --guarantee values to run, comma-separated",
    )  # fmt: skip
    parser.add_argument(
        "--warmup", type=float, default=0.0,
        help="seconds from the first row reported apart as start-up (still counted in the "
        "figures with start-up)",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=float, default=170.0,
        help="seconds measured per rate (6 partitions close a bar each per second: "
        "170 s give more than 1,000 closes)",
    )  # fmt: skip
    parser.add_argument(
        "--linger-ms", type=float, default=ProduceOptions().linger_ms,
        help="producer linger.ms [default: that of marketpulse produce]",
    )  # fmt: skip
    parser.add_argument(
        "--commit-interval", type=float, default=None,
        help="the service's --commit-interval [default: the service's own]",
    )  # fmt: skip
    parser.add_argument(
        "--reader-fetch-wait-ms", type=int, default=None,
        help="the reader's fetch.wait.max.ms [default: the client's]",
    )  # fmt: skip
    parser.add_argument(
        "--broker-warmup", type=float, default=0.0,
        help="seconds of a first, unmeasured run at the first rate (the broker's JVM "
        "compiles its hot paths then)",
    )  # fmt: skip
    parser.add_argument(
        "--broker-nice", type=int, default=0,
        help="nice value of the broker this script starts (0: the default priority, as the "
        "targets ask)",
    )  # fmt: skip
    parser.add_argument(
        "--engine", choices=ENGINES, default="service",
        help="what reads ticks and writes indicators: marketpulse process, or "
        "bench/kafka_relay.py (the same clients with no analytics: the floor)",
    )  # fmt: skip
    parser.add_argument(
        "--feed", choices=FEEDS, default="thread",
        help="what sends the trades: this script's thread (every 5 ms, stamped at the send), "
        "or marketpulse produce's simulator as a command (stamped on arrival, its grid)",
    )  # fmt: skip
    parser.add_argument(
        "--lateness", default="0",
        help="the service's --lateness, or 'default' to leave the option out [default: 0]",
    )  # fmt: skip
    parser.add_argument(
        "--closes", type=Path, metavar="DIR",
        help="write closes-RATE.csv here: one line per bar close, to see which make the tail",
    )  # fmt: skip
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    guarantees = [g.strip() for g in args.guarantees.split(",") if g.strip()]
    try:
        lateness = None if args.lateness == "default" else float(args.lateness)
    except ValueError:
        parser.error(f"--lateness: a number of seconds or 'default', not {args.lateness!r}")
    if args.engine == "relay" and lateness != 0:
        parser.error(
            "--engine relay: lateness 0 only (it closes a second on the first trade past it)"
        )
    results = []
    with (
        cluster(args.broker_nice) as kafka,
        tempfile.TemporaryDirectory(prefix="mp-bench-latency-") as work,
    ):
        if args.broker_warmup > 0:
            warm = measure(kafka.bootstrap, rates[0], 0.0, args.broker_warmup,
                           args.linger_ms, Path(work), args.commit_interval)  # fmt: skip
            print(f"broker warm-up at {rates[0]:,.0f}/s (not counted): p50 "
                  f"{warm['p50_ms']:.1f} ms, p99 {warm['p99_ms']:.1f} ms", file=sys.stderr)  # fmt: skip
        for guarantee in guarantees:
            for rate in rates:
                name = f"closes-{args.engine}-{int(rate)}-{guarantee}.csv"
                csv = args.closes / name if args.closes else None
                result = measure(
                    kafka.bootstrap, rate, args.warmup, args.duration, args.linger_ms,
                    Path(work), args.commit_interval, guarantee, csv, args.reader_fetch_wait_ms,
                    args.engine, args.feed, lateness,
                )  # fmt: skip
                whole = result["with_start_up"]
                print(
                    f"{args.engine} {guarantee} {rate:,.0f}/s: p50 {whole['p50_ms']:.1f} ms, p99 "
                    f"{whole['p99_ms']:.1f} ms, max {whole['max_ms']:.1f} ms "
                    f"({whole['bar_closes']} closes, start-up included); stages "
                    + ", ".join(
                        f"{k} {v['p50_ms']:.1f}/{v['p99_ms']:.1f}"
                        for k, v in result["breakdown"].items() if isinstance(v, dict)
                    ),
                    file=sys.stderr,
                )  # fmt: skip
                end = result["from_bar_end"]
                print(f"  from the bar's end: p50 {end['p50_ms']:.1f} ms, p99 {end['p99_ms']:.1f} "
                      f"ms (first tick p50 {end['first_tick']['p50_ms']:.1f}, p99 "
                      f"{end['first_tick']['p99_ms']:.1f})", file=sys.stderr)  # fmt: skip
                slow = result["tail"]
                if slow:
                    print(f"  tail: {slow['rows']} rows at or above the p99, "
                          f"{slow['at_minute_end']:.0%} at a minute's end (those closes: "
                          f"{slow['minute_end_rows']:.0%} of all rows), "
                          f"{slow['in_start_up']:.0%} in the first {START_UP_S} s; p99 of the "
                          f"other closes {slow['p99_other_closes_ms']:.1f} ms",
                          file=sys.stderr)  # fmt: skip
                results.append(result)
        broker = kafka.describe()
    print(
        json.dumps(
            {
                "broker": broker,
                "broker_nice": kafka.broker_nice or 0,
                "engine": args.engine,
                "partitions": PARTITIONS,
                "symbols": SYMBOLS,
                "commit_interval_s": args.commit_interval,
                "default_commit_interval_s": ProcessOptions().settings.commit_interval,
                "lateness_s": ProcessorSettings().lateness if lateness is None else lateness,
                "lateness_default": lateness is None,
                "feed": args.feed,
                "linger_ms": args.linger_ms,
                "reader_fetch_wait_ms": args.reader_fetch_wait_ms,
                "send_period_ms": PERIOD_S * 1000,
                "warmup_s": args.warmup,
                "broker_warmup_s": args.broker_warmup,
                "stages": dict(STAGES),
                "rates": results,
            }
        )
    )


if __name__ == "__main__":
    main()
