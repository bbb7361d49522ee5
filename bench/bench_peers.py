"""Peers on one Kafka topic: raw confluent-kafka, MarketPulse, its Spark route, Quix, PySpark.

``ticks`` (6 partitions) is preloaded as bench/bench_kafka_catchup.py does it
(the Lean day written 13 times, shifted by 0..12 days: 5,049,421 real trades,
JSON keyed by symbol, the project's producer). Then, one after the other, on
that topic:

* ``raw``: a plain ``confluent_kafka.Consumer`` reading every partition to its
  end, no decoding (the ceiling of a Python consumer; best of ``--repeat``);
* ``marketpulse``: ``marketpulse process --exit-when-idle 2 --lateness 0`` as a
  command (1s/1m/5m bars, 13 indicators, default alerts, exactly-once; lateness
  0 as the peers' grace and watermark), timed from its
  launch until its group's committed offsets reach the end of ``ticks``;
* ``quix-at-least-once``, ``quix-exactly-once``: bench/peers/quix/app.py
  (Quix Streams: 1-minute bars, EMA/MACD/RSI) with each processing guarantee,
  timed the same way (launch until its group's committed offsets reach the end);
* ``spark``: bench/peers/spark/app.py (PySpark Structured Streaming, 1-minute
  bars, ``availableNow``, ``local[2]``), timed from its launch until the query
  has finished (its offsets are in its checkpoint, not in a group);
* ``marketpulse-spark-local1``, ``-local2``: ``marketpulse spark --available-now
  --master local[N] --lateness 0`` as a command (the Spark route: the same
  processor per bucket in ``transformWithStateInPandas``), and
  ``marketpulse-spark-apply-local1``, ``-local2``: the same with the operator in
  ``applyInPandasWithState`` (bench/peer_spark.py), timed from launch to the end
  of the query's last micro-batch, by Spark's progress reports; they write
  ``process``'s own topics, and their bars are read from the end ``bars`` had
  before each started.

Each peer runs in its own environment (bench/peer_venvs.py makes them; the
Spark route in MarketPulse's, its ``spark`` extra). Each
engine's 1-minute bars are read back from its output topic (MarketPulse's
``bars``, 1-minute rows) and must equal MarketPulse's (bench/peer_bars.py:
each symbol's last window left out): a peer that fails or disagrees ends the
run with a one-line error naming the peer and the first differing bar.

``--smoke`` installs nothing and starts no JVM: raw and marketpulse on the
first 50,000 trades, MarketPulse's bars checked against plainly computed ones,
the checker checked on a bar changed on purpose, and the ``applyInPandasWithState``
operator run without Spark (a stand-in ``GroupState``) over the same ticks in two
micro-batches, its kept processors dropped between them, its bars checked too. Prints one JSON object
(last line); progress on standard error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import confluent_kafka as ck
import pyarrow as pa
from bench_kafka_catchup import NO_FETCH_BACKOFF, CommitWatch, best, cli_run, lean_days, preload
from bench_kafka_catchup import run_raw_consumer as raw_consumer
from kafka_common import bus_for, cluster, create_topics, end_offsets, new_prefix
from peer_bars import Bars, PeerDisagrees, check_equal, closed_by_event_time, reference_bars
from peer_spark import (
    SPARK_PEERS,
    ensure_connector,
    folder_bytes,
    java_version,
    log_settings,
    spark_command,
    spark_env,
    spark_timing,
)
from peer_venvs import PeerSetupError, ensure, ensure_spark_jars, peer_python, versions

from marketpulse.bus.topics import Topics

ROOT = Path(__file__).resolve().parents[1]
PEER_APPS = ROOT / "bench" / "peers"
ALL = ("raw", "marketpulse", "quix-at-least-once", "quix-exactly-once", "spark", *SPARK_PEERS)
SMOKE_TRADES = 50_000
#: A window closes when a trade at or after its end arrives, as Quix's grace 0 and
#: Spark's watermark 0 do (the default lateness, 0.5 s, keeps it open half a second more).
MARKETPULSE_OPTIONS = ("--lateness", "0")
#: The peers' output topics keep every record: with the broker's default retention by
#: time, records stamped with 2013's event times would be deleted within minutes.
KEEP = {"retention.ms": "-1", "retention.bytes": "-1"}


class PeerFailed(Exception):
    """A peer exited with an error or did not finish (the message is one line)."""


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def read_topic(
    bootstrap: str, topic: str, since: dict[int, int] | None = None
) -> list[tuple[bytes, bytes]]:
    """Every committed record of ``topic`` as (key, value), from ``since`` (default: the
    beginning) to the end of each partition."""
    ends = end_offsets(bootstrap, topic)
    since = since or {}
    consumer = ck.Consumer(
        {"bootstrap.servers": bootstrap, "group.id": new_prefix("read"),
         "enable.auto.commit": False, "enable.partition.eof": True,
         "isolation.level": "read_committed"}
    )  # fmt: skip
    records = []
    try:
        consumer.assign([ck.TopicPartition(topic, p, since.get(p, ck.OFFSET_BEGINNING))
                         for p in ends])  # fmt: skip
        pending = {p for p, end in ends.items() if end > since.get(p, 0)}
        deadline = time.monotonic() + 300
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is None:
                    records.append((message.key(), message.value()))
                elif error.code() == ck.KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise PeerFailed(f"reading {topic}: {error.str()}")
    finally:
        consumer.close()
    return records


def last_windows(batches: list[pa.RecordBatch]) -> dict[str, int]:
    """The start (ms) of each symbol's last 1-minute window in the input: no trade closes it."""
    table = pa.Table.from_batches(batches).select(["symbol", "ts"])
    table = table.set_column(0, "symbol", table.column("symbol").cast(pa.string()))
    grouped = table.group_by("symbol").aggregate([("ts", "max")]).to_pylist()
    return {row["symbol"]: row["ts_max"] // 1_000_000 // 60_000 * 60_000 for row in grouped}


def marketpulse_bars(records: list[tuple[bytes, bytes]]) -> Bars:
    """MarketPulse's 1-minute bars from its ``bars`` topic."""
    bars: Bars = {}
    for _, value in records:
        row = json.loads(value)
        if row.get("timeframe") != "1m":
            continue
        start = row["bar_start"] // 1_000_000
        bars[(row["symbol"], start)] = tuple(row[f] for f in ("open", "high", "low", "close",
                                                             "volume"))  # fmt: skip
    return bars


def peer_bars(records: list[tuple[bytes, bytes]]) -> Bars:
    """A peer's bars from its output topic: key the symbol, value JSON with ``start`` (ms)."""
    bars: Bars = {}
    for key, value in records:
        row = json.loads(value)
        bars[(key.decode(), int(row["start"]))] = tuple(
            float(row[f]) for f in ("open", "high", "low", "close", "volume")
        )  # type: ignore[assignment]
    return bars


def _last_line(path: Path) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Exception" in line]
    return (errors or lines or ["no output"])[-1][:300]


def tree_usage(root: int) -> tuple[float, int]:
    """CPU seconds and resident bytes of process ``root`` and its descendants, from /proc."""
    parents, stats = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        stats[int(entry.name)] = fields
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= more
        grew = bool(more)
    ticks, page = os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")
    cpu = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree if p in stats) / ticks
    rss = sum(int(stats[p][21]) for p in tree if p in stats) * page
    return cpu, rss


class TreeSampler(threading.Thread):
    """Samples a process tree's CPU time and memory every 0.2 s until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.cpu, self.rss = pid, 0.0, 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                cpu, rss = tree_usage(self.pid)
            except (OSError, ValueError, IndexError):
                cpu, rss = 0.0, 0
            self.cpu, self.rss = max(self.cpu, cpu), max(self.rss, rss)
            self.halt.wait(0.2)


def run_peer(name: str, command: list[str], log: Path, watch: CommitWatch | None,
             trades: int, env: dict[str, str] | None = None,
             timing: Callable[[str], dict] | None = None) -> dict:  # fmt: skip
    """Run a peer's program; time it from launch to its group's commit at the end, or its end.

    Its standard output carries ``{"ready": T}`` and ``{"done": T}`` lines, or
    ``timing`` finds them (and more figures) in its log, which goes to ``log``.
    CPU time and peak memory are its process tree's (the JVM of Spark and its
    Python workers included), sampled every 0.2 s.
    """
    say(f"  {name}: running")
    launched = time.time()
    with log.open("w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    committed_at = None
    try:
        if watch is not None:
            last_say = time.monotonic()
            while True:
                committed = watch.committed()
                done = sum(min(committed.get(p, 0), e) for p, e in watch.ends.items() if e > 0)
                if done >= sum(watch.ends.values()):
                    committed_at = time.time()
                    break
                if proc.poll() is not None:
                    break
                if time.monotonic() - last_say > 15:
                    say(f"  {name}: {max(done, 0):,} of {trades:,} trades committed")
                    last_say = time.monotonic()
                time.sleep(0.05)
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait()
    except BaseException:
        proc.kill()
        raise
    finally:
        sampler.halt.set()
        sampler.join()
    if proc.returncode != 0:
        raise PeerFailed(f"{name} exited {proc.returncode}: {_last_line(log)} (log: {log})")
    stamps: dict = {}
    for line in out.splitlines():
        if line.startswith("{"):
            stamps.update(json.loads(line))
    if timing is not None:
        try:
            stamps = timing(log.read_text(errors="replace"))
        except ValueError as exc:
            raise PeerFailed(f"{name}: {exc} (log: {log})") from None
        stamps["summary"] = next((line for line in out.splitlines() if line.strip()), "")
    if "done" not in stamps:
        raise PeerFailed(f"{name} printed no end time (log: {log})")
    if watch is not None and committed_at is None:
        raise PeerFailed(f"{name} stopped before committing the end of the topic (log: {log})")
    done = stamps.pop("done")
    end = committed_at if watch is not None else done
    seconds = end - launched
    ready = stamps.pop("ready", None)
    return {
        "seconds": seconds,
        "ticks_per_s": trades / seconds,
        "start_up_seconds": ready - launched if ready is not None else None,
        "cpu_seconds": sampler.cpu,
        "max_rss_mb": sampler.rss / 2**20,
        "exit_seconds": time.time() - launched,
        **stamps,
    }


def run_spark_peer(name: str, bootstrap: str, topics: Topics, trades: int, work: Path,
                   settings: Path, options: tuple[str, ...]) -> dict:  # fmt: skip
    """Run Spark peer ``name`` (bench/peer_spark.py); its figures and where ``bars`` ended before."""
    since = end_offsets(bootstrap, topics.name("bars"))
    checkpoint = work / f"{name}-checkpoint"
    command = spark_command(name, bootstrap, topics.prefix, checkpoint, options)
    result = run_peer(name, command, work / f"{name}.log", None, trades, env=spark_env(settings),
                      timing=spark_timing)  # fmt: skip
    if result["ticks_read"] != trades:
        raise PeerFailed(f"{name} read {result['ticks_read']:,} ticks, not {trades:,}")
    result["checkpoint_state_bytes"] = folder_bytes(checkpoint / "state")
    result["checkpoint_bytes"] = folder_bytes(checkpoint)
    return {**result, "bars_since": since}


class _GroupState:
    """A stand-in for Spark's ``GroupState``: what the operator reads and updates."""

    def __init__(self) -> None:
        self.value: tuple | None = None

    @property
    def exists(self) -> bool:
        return self.value is not None

    @property
    def get(self) -> tuple:
        assert self.value is not None
        return self.value

    def update(self, value: tuple) -> None:
        self.value = tuple(value)


def apply_operator_bars(bootstrap: str, topics: Topics) -> Bars:
    """The 1-minute bars of the ``applyInPandasWithState`` operator run without Spark.

    Each partition of ``ticks`` in two micro-batches, the worker's kept
    processors dropped between them: the second restores its bucket from the
    ``GroupState`` as a task of another worker would.
    """
    sys.path.insert(0, str(PEER_APPS / "marketpulse_spark"))
    import apply_operator
    import pandas as pd

    from marketpulse.alerts.loading import default_rules
    from marketpulse.stream import ProcessorSettings

    settings = ProcessorSettings(lateness=float(MARKETPULSE_OPTIONS[1]), idle_timeout=None,
                                 wall_clock=True)  # fmt: skip
    operator = apply_operator.ApplyOperator(settings, default_rules(), topics.prefix, True, None,
                                            "smoke")  # fmt: skip
    records = []
    for partition, frame in read_ticks(bootstrap, topics.ticks).items():
        state = _GroupState()
        half = len(frame) // 2
        for part in (frame.iloc[:half], frame.iloc[half:]):
            apply_operator._KEPT.clear()
            for out in operator((partition,), iter([part]), state):
                records.append(out)
    out = pd.concat(records, ignore_index=True)
    out = out[out["topic"] == topics.name("bars")]
    return marketpulse_bars(list(zip(out["key"], out["value"], strict=True)))


def read_ticks(bootstrap: str, topic: str) -> dict:
    """``topic``'s records per partition as frames of key, value, offset and timestamp (ms)."""
    import pandas as pd

    ends = end_offsets(bootstrap, topic)
    consumer = ck.Consumer({"bootstrap.servers": bootstrap, "group.id": new_prefix("ticks"),
                            "enable.auto.commit": False, "enable.partition.eof": True})  # fmt: skip
    rows: dict[int, list] = {p: [] for p, end in ends.items() if end > 0}
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in rows])
        pending, deadline = set(rows), time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                error = message.error()
                if error is None:
                    rows[message.partition()].append(
                        (message.key(), message.value(), message.offset(), message.timestamp()[1])
                    )
                elif error.code() == ck.KafkaError._PARTITION_EOF:
                    pending.discard(message.partition())
                else:
                    raise PeerFailed(f"reading {topic}: {error.str()}")
    finally:
        consumer.close()
    columns = ["key", "value", "offset", "timestamp"]
    return {p: pd.DataFrame(r, columns=columns) for p, r in rows.items()}


def self_check(bars: Bars) -> str:
    """The checker finds a bar changed on purpose; its message (raises if it does not)."""
    key = sorted(bars)[len(bars) // 2]
    changed = dict(bars)
    changed[key] = (*bars[key][:3], bars[key][3] + 0.01, bars[key][4])
    try:
        check_equal("self-check", bars, changed)
    except PeerDisagrees as exc:
        return str(exc)
    raise PeerDisagrees("the bar checker missed a bar changed on purpose")


def _route_default() -> int | None:
    """The Spark route's default ticks per micro-batch at most (``None``: no cap)."""
    from marketpulse.spark import options

    return getattr(options, "MAX_OFFSETS_PER_TRIGGER", None)


def _version(value: str | tuple) -> str:
    """confluent-kafka's ``version()``: a string, or (string, number) in older releases."""
    return value[0] if isinstance(value, tuple) else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=13, help="Lean days written (default 13)")
    parser.add_argument(
        "--trades", type=int, default=0, help="only the first N trades (default 0: all)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of the raw consumer (best)")
    parser.add_argument(
        "--peers", default=",".join(ALL), help=f"comma-separated, of {', '.join(ALL)}"
    )
    parser.add_argument(
        "--max-offsets-per-trigger", type=int, default=0, metavar="N",
        help="the Spark route's ticks per micro-batch at most (default 0: the route's default)",
    )  # fmt: skip
    parser.add_argument(
        "--smoke", action="store_true",
        help="raw and marketpulse on 50,000 trades, bars checked plainly (and the "
        "applyInPandasWithState operator's, without Spark); no venvs, no JVM",
    )  # fmt: skip
    args = parser.parse_args()
    peers = ["raw", "marketpulse"] if args.smoke else [p.strip() for p in args.peers.split(",")]
    unknown = sorted(set(peers) - set(ALL))
    if unknown:
        parser.error(f"unknown peer {unknown[0]!r}: choose from {', '.join(ALL)}")
    if "marketpulse" not in peers and len(set(peers) - {"raw"}):
        parser.error("the peers' bars are checked against marketpulse's: include marketpulse")
    peers = sorted(set(peers), key=ALL.index)  # marketpulse's bars first: the reference
    copies = 1 if args.smoke else args.copies
    work = Path(tempfile.mkdtemp(prefix="mp-bench-peers-"))
    try:
        result = run(args, peers, copies, work)
    except (PeerFailed, PeerDisagrees, PeerSetupError, RuntimeError) as exc:
        # the peers' logs stay in ``work`` for a look
        sys.exit(f"bench_peers: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


def run(args: argparse.Namespace, peers: list[str], copies: int, work: Path) -> dict:
    """Preload, run each peer, check its bars; the JSON result."""
    environments = {}
    jars: list[Path] = []
    if not args.smoke:
        for venv in sorted({p.split("-")[0] for p in peers} & {"quix", "spark"}):
            environments[venv] = ensure(venv)
            if venv == "spark":
                jars = ensure_spark_jars(environments[venv])
    batches = lean_days(copies)
    limit = SMOKE_TRADES if args.smoke else args.trades
    if limit:
        batches = pa.Table.from_batches(batches).slice(0, limit).combine_chunks().to_batches()
    trades = sum(b.num_rows for b in batches)
    results: dict[str, dict] = {}
    with cluster() as kafka:
        topics = Topics(new_prefix("peers"))
        bus = bus_for(kafka.bootstrap)
        create_topics(bus, topics)
        say(f"preloading {trades:,} trades into {topics.ticks}")
        loaded = preload(kafka.bootstrap, topics, batches)
        ends = end_offsets(kafka.bootstrap, topics.ticks)
        if sum(ends.values()) != trades:
            raise RuntimeError(f"ticks holds {sum(ends.values())} records, not {trades}")
        say(f"  {loaded['ticks_per_s']:,.0f} trades/s")
        reference: Bars = {}
        last = last_windows(batches)
        checks: dict[str, int] = {}
        spark_settings: Path | None = None
        spark_options = MARKETPULSE_OPTIONS + (
            ("--max-offsets-per-trigger", str(args.max_offsets_per_trigger))
            if args.max_offsets_per_trigger else ()
        )  # fmt: skip
        for peer in peers:
            load = os.getloadavg()[0]  # other work on the machine as the peer starts
            if peer == "raw":
                say("  raw confluent-kafka: running")
                runs = [raw_consumer(kafka.bootstrap, topics.ticks, ends, NO_FETCH_BACKOFF)
                        for _ in range(1 if args.smoke else args.repeat)]  # fmt: skip
                results[peer] = best(runs)
            elif peer == "marketpulse":
                say("  marketpulse process: running")
                try:
                    results[peer] = cli_run(kafka, topics, ends, MARKETPULSE_OPTIONS)
                except RuntimeError as exc:
                    lines = [line for line in str(exc).splitlines() if line.strip()]
                    raise PeerFailed(f"marketpulse: {lines[-1] if lines else exc}") from None
                reference = closed_by_event_time(
                    marketpulse_bars(read_topic(kafka.bootstrap, topics.name("bars"))), last
                )
            elif peer in SPARK_PEERS:
                if spark_settings is None:
                    say("  the Spark route: Ivy fetches the Kafka connector into its cache (once, "
                        "not timed)")  # fmt: skip
                    ensure_connector(work)
                    spark_settings = log_settings(work)
                results[peer] = run_spark_peer(peer, kafka.bootstrap, topics, trades, work,
                                               spark_settings, spark_options)  # fmt: skip
                bars_read = read_topic(kafka.bootstrap, topics.name("bars"),
                                       results[peer].pop("bars_since"))  # fmt: skip
                bars = closed_by_event_time(marketpulse_bars(bars_read), last)
                checks[peer] = check_equal(peer, reference, bars)
                say(f"  {peer}: {checks[peer]:,} bars equal to marketpulse's")
            else:
                out_topic = f"{topics.prefix}{peer}-bars"
                # created here for both, so no peer's first outputs wait for a new topic; kept
                # whatever their records' times (Quix stamps a bar with its window's, in 2013)
                bus.create_topics([out_topic], 6, 1, {out_topic: KEEP})
                if peer.startswith("quix"):
                    guarantee = peer.removeprefix("quix-")
                    group = f"{topics.prefix}{peer}"
                    command = [str(peer_python("quix")), str(PEER_APPS / "quix" / "app.py"),
                               "--bootstrap", kafka.bootstrap, "--topic", topics.ticks,
                               "--output", out_topic, "--group", group,
                               "--state-dir", str(work / peer), "--guarantee", guarantee]  # fmt: skip
                    watch = CommitWatch(kafka.bootstrap, group, topics.ticks, ends)
                else:
                    command = [str(peer_python("spark")), str(PEER_APPS / "spark" / "app.py"),
                               "--bootstrap", kafka.bootstrap, "--topic", topics.ticks,
                               "--output", out_topic, "--checkpoint", str(work / "spark-checkpoint"),
                               "--jars", ",".join(str(j) for j in jars)]  # fmt: skip
                    watch = None
                results[peer] = run_peer(peer, command, work / f"{peer}.log", watch, trades)
                bars = closed_by_event_time(peer_bars(read_topic(kafka.bootstrap, out_topic)), last)
                checks[peer] = check_equal(peer, reference, bars)
                say(f"  {peer}: {checks[peer]:,} bars equal to marketpulse's")
            results[peer]["load_1min_at_start"] = round(load, 2)
            say(f"  {peer}: {results[peer]['seconds']:.1f} s, "
                f"{results[peer]['ticks_per_s']:,.0f} trades/s")  # fmt: skip
        if args.smoke and reference:
            plain, _ = reference_bars(
                (row["symbol"], row["ts"], row["price"], row["size"])
                for b in batches for row in b.select(["symbol", "ts", "price", "size"]).to_pylist()
            )  # fmt: skip
            checks["plain-python"] = check_equal("plain-python", reference,
                                                 closed_by_event_time(plain, last))  # fmt: skip
            say(f"  plain Python bars: {checks['plain-python']:,} equal to marketpulse's")
            say(f"  self-check: {self_check(reference)}")
            checks["apply-operator"] = check_equal(
                "apply-operator", reference,
                closed_by_event_time(apply_operator_bars(kafka.bootstrap, topics), last),
            )  # fmt: skip
            say(f"  applyInPandasWithState operator without Spark: {checks['apply-operator']:,} "
                "bars equal to marketpulse's")  # fmt: skip
        broker = kafka.describe()
    found = {venv: versions(venv) for venv in environments}
    if spark_settings is not None:
        import pyspark

        from marketpulse.spark.job import KAFKA_PACKAGE

        found["marketpulse-spark"] = {"pyspark": pyspark.__version__, "java": java_version(),
                                      "connector": KAFKA_PACKAGE}  # fmt: skip
    return {
        "broker": broker,
        "trades": trades,
        "copies": copies,
        "preload": loaded,
        "peers": results,
        "bars_compared": checks,
        "symbols": len(last),
        "partitions": len(ends),
        "ticks_per_partition": {str(p): n for p, n in sorted(ends.items())},
        "spark_route_options": [*spark_options, "--available-now"],
        "spark_route_max_offsets_default": _route_default(),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
        "versions": {
            "confluent-kafka": _version(ck.version()),
            "librdkafka": ck.libversion()[0],
            **{f"{venv}": v for venv, v in found.items()},
        },
    }


if __name__ == "__main__":
    main()
