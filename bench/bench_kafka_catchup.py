"""Kafka catch-up throughput: the process service against raw consumption of the same topic.

``ticks`` (6 partitions) is preloaded with the Lean day
(``../shared/data/lean-2013-10-07/trades.csv.gz``, 388,417 trades, suspicious
prints included) written 13 times, shifted by 0..12 whole days so event time
keeps increasing per symbol: 5,049,421 trades, JSON, keyed by symbol, by the
project's producer (idempotent, acks=all, lz4). Then, on that topic:

* the process service (``ProcessService``, the code of ``marketpulse process``)
  consumes, decodes, builds 1s/1m/5m bars and indicators, evaluates the
  default alerts and produces everything in transactions (commit interval
  0.1 s, the default). Timed from the start of the service to the moment its
  group's committed offsets reach the end of ``ticks`` (polled every 50 ms
  with the admin client), so the ``--exit-when-idle`` wait is not counted.
  Routes: in-process (the service in a thread of this script, numba kernels
  warmed up first, with the collector settings of the service commands:
  ``marketpulse.runtime.heap.settle_heap``) and ``marketpulse process
  --exit-when-idle 2`` as a command (interpreter start, imports and numba
  cache load included).
* the ceilings: ``kcat -C -e -o beginning -q`` to /dev/null, and a plain
  ``confluent_kafka.Consumer`` assigned all 6 partitions reading to EOF with
  ``consume(num_messages=10000)`` batches, checking each record's error and
  nothing else (no decoding): the consumer once with the fetch sizes of the
  service's consumer, kcat once with its defaults, and each once more with
  ``queued.min.messages=1000000`` (librdkafka's default of 100,000 makes it
  pause a partition's fetches for ``fetch.queue.backoff.ms``, 1 s, whenever
  that many records wait locally; kcat's older librdkafka pauses for a fixed 1 s).
  The consumer with that setting has all of the service consumer's fetch settings.
* the output floors (unless ``--no-floors``; they need the in-process route):
  the relays of ``bench/scale_floor.py`` read the same ``ticks`` with the
  service's consumer and write, in transactions every 0.1 s, as many records a
  tick as the in-process run wrote (real bars and indicator rows of that run,
  in turn), then with the references to the kept trades, then with the state
  records too: the Kafka traffic of the service with no processing at all.

A broker of its own is started in a temporary directory unless
``MARKETPULSE_KAFKA_BOOTSTRAP`` names one. ``--profile cprofile:FILE`` or
``--profile py-spy:FILE`` profiles the in-process service during catch-up and
prints the hotspots to standard error. Prints one JSON object (last line).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import confluent_kafka as ck
import pyarrow as pa
from confluent_kafka.admin import AdminClient
from kafka_common import (
    LEAN,
    PARTITIONS,
    Cluster,
    bus_for,
    cluster,
    create_topics,
    dead_letter_reasons,
    end_offsets,
    new_prefix,
    process_cpu_seconds,
    recreate_topics,
)
from profiling import PySpy, print_cprofile, print_py_spy
from scale_floor import relay, sample_sizes, sample_values

from marketpulse.alerts import default_rules
from marketpulse.bus.base import Batch, Message
from marketpulse.bus.codec import encode_rows
from marketpulse.bus.topics import Topics
from marketpulse.feeds import FileReplay
from marketpulse.runtime.heap import settle_heap
from marketpulse.runtime.process import ProcessOptions, ProcessService
from marketpulse.stream import Processor, ProcessorSettings
from marketpulse.stream.checkpoint import META_KEY, NAMES_KEY

KCAT_HELP = (
    "kcat is not installed: install it with `apt-get update && apt-get install -y kcat` "
    "(Debian/Ubuntu package kcat), or pass --no-kcat"
)
OUTPUTS = ("bars", "indicators", "alerts", "dlq", "state", "trades")


def lean_days(copies: int) -> list[pa.RecordBatch]:
    """The Lean day's trades ``copies`` times, shifted by 0..copies-1 days, as batches."""
    batches = []
    for shift in range(copies):
        replay = FileReplay(LEAN, shift_days=shift, include_suspicious=True)
        batches += [b.data.drop_columns(["line"]) for b in replay.batches()]
    return batches


def preload(bootstrap: str, topics: Topics, batches: list[pa.RecordBatch]) -> dict:
    """Produce every batch to ``ticks`` with the project's producer; time it to the last ack."""
    bus = bus_for(bootstrap)
    start, cpu = time.perf_counter(), time.process_time()
    with bus.producer() as producer:
        for data in batches:
            producer.send_columns(topics.ticks, "trade", data)
    seconds = time.perf_counter() - start
    if producer.failed:
        raise RuntimeError(f"preload: {producer.failed} records failed: {producer.errors}")
    sent = sum(b.num_rows for b in batches)
    return {
        "trades": sent,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu,
        "ticks_per_s": sent / seconds,
    }


def run_kcat(bootstrap: str, topic: str, trades: int, settings: dict | None = None) -> dict:
    """Time ``kcat -C ... -e -o beginning -q > /dev/null`` (consume the topic to its end)."""
    command = ["kcat", "-C", "-b", bootstrap, "-t", topic, "-e", "-o", "beginning", "-q"]
    for name, value in (settings or {}).items():
        command += ["-X", f"{name}={value}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        subprocess.run(command, stdout=devnull, stderr=subprocess.PIPE, check=True, timeout=600)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": seconds, "ticks_per_s": trades / seconds, "cpu_seconds": cpu}


#: The fetch settings KafkaBus.consumer gives the service's consumer.
SERVICE_FETCH = {
    "isolation.level": "read_committed",
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 8 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
}
#: librdkafka postpones a partition's next fetch by fetch.queue.backoff.ms (1 s) whenever its
#: local queue holds more than queued.min.messages (100,000): a fast reader then starves.
#: kcat's librdkafka (Debian's 2.0.2) backs a partition off for a fixed second in that case.
NO_BACKOFF = {"queued.min.messages": 1_000_000}
NO_FETCH_BACKOFF = {**SERVICE_FETCH, **NO_BACKOFF}


def best(runs: list[dict]) -> dict:
    """The fastest of ``runs``, with every run's seconds beside it (``runs_seconds``)."""
    return {**min(runs, key=lambda r: r["seconds"]), "runs_seconds": [r["seconds"] for r in runs]}


def run_raw_consumer(
    bootstrap: str, topic: str, ends: dict[int, int], settings: dict[str, object]
) -> dict:
    """A plain confluent-kafka consumer reading every partition to EOF; no decoding."""
    consumer = ck.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": new_prefix("raw"),
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            **settings,
        }
    )
    start, cpu = time.perf_counter(), time.process_time()
    try:
        consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in ends])
        pending = {p for p, end in ends.items() if end > 0}
        records = 0
        eof = ck.KafkaError._PARTITION_EOF
        while pending:
            for message in consumer.consume(num_messages=10_000, timeout=1.0):
                error = message.error()
                if error is None:
                    records += 1
                elif error.code() == eof:
                    pending.discard(message.partition())
                else:
                    raise RuntimeError(error.str())
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu
    finally:
        consumer.close()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "records": records,
            "ticks_per_s": records / seconds}  # fmt: skip


def warm_up(batches: list[pa.RecordBatch]) -> None:
    """Load numba's cached kernels and touch the decode path, outside the timed run."""
    keys, values = encode_rows("trade", batches[0].slice(0, 20_000))
    messages = [
        Message(k.encode(), v, i) for i, (k, v) in enumerate(zip(keys, values, strict=True))
    ]
    batch = Batch("warm", 0, 0, len(messages) - 1, messages=messages)
    processor = Processor(ProcessorSettings(), default_rules())
    processor.process(batch)
    processor.idle(time.monotonic() + 10)


class CommitWatch:
    """Polls a group's committed offsets until they reach given ends; notes when."""

    def __init__(self, bootstrap: str, group: str, topic: str, ends: dict[int, int]) -> None:
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self.group, self.topic, self.ends = group, topic, ends

    def committed(self) -> dict[int, int]:
        request = ck.ConsumerGroupTopicPartitions(
            self.group, [ck.TopicPartition(self.topic, p) for p in self.ends]
        )
        future = self.admin.list_consumer_group_offsets([request], request_timeout=10)[self.group]
        try:
            result = future.result()
        except ck.KafkaException:
            return {}
        return {tp.partition: tp.offset for tp in result.topic_partitions}

    def wait(self, alive, interval: float = 0.05, timeout: float = 900.0) -> float:
        """Return ``time.perf_counter()`` when every committed offset reached its end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = self.committed()
            if all(committed.get(p, -1) >= end for p, end in self.ends.items() if end > 0):
                return time.perf_counter()
            if not alive():
                raise RuntimeError("the process service stopped before catching up")
            time.sleep(interval)
        raise TimeoutError("the process service did not catch up in time")


def service_run(
    cluster_: Cluster,
    topics: Topics,
    ends: dict[int, int],
    profile: str | None = None,
    group: str = "process",
) -> dict:
    """Run the process service in a thread; time it to the end of ``ticks`` being committed."""
    group = f"{topics.prefix}{group}"
    # the time is taken when the committed offsets reach the end, never at the exit: a
    # longer quiet time before exiting costs no figure, and a fetch stalled for 2 s on a
    # busy machine (a CI run's smoke test, 2026-11-30) ended the service before the end
    options = ProcessOptions(group=group, instance="bench", exit_when_idle=10.0)
    bus = bus_for(cluster_.bootstrap)
    stop = threading.Event()
    kind, _, path = (profile or "").partition(":")
    profiler = cProfile.Profile() if kind == "cprofile" else None
    outcome: dict = {}

    def target() -> None:
        service = ProcessService(bus, topics, Processor(ProcessorSettings(), default_rules()),
                                 options, stop)  # fmt: skip
        try:
            if profiler is not None:
                profiler.enable()
            outcome["stats"] = service.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            outcome["error"] = exc
        finally:
            if profiler is not None:
                profiler.disable()

    settle_heap()  # the collector settings the service commands use
    watch = CommitWatch(cluster_.bootstrap, group, topics.ticks, ends)
    spy = PySpy(Path(path)) if kind == "py-spy" else None
    thread = threading.Thread(target=target, name="process-service")
    broker_cpu = cluster_.broker_cpu_seconds()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    thread.start()
    done, failure = None, None
    try:
        done = watch.wait(thread.is_alive)
    except (RuntimeError, TimeoutError) as exc:
        failure = exc
    after = resource.getrusage(resource.RUSAGE_SELF)
    broker_after = cluster_.broker_cpu_seconds()
    if spy is not None:
        spy.stop()
    thread.join(timeout=60)
    if thread.is_alive():
        stop.set()
        thread.join()
    if "error" in outcome:
        raise outcome["error"]  # the service's own failure explains the watch's
    if failure is not None:
        raise failure
    stats = outcome["stats"]
    seconds = done - start
    result = {
        "route": "in-process",
        "seconds": seconds,
        "records": stats.records,
        "ticks_per_s": stats.records / seconds,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "bars": stats.bars,
        "indicator_rows": stats.indicators,
        "alerts": stats.alerts,
        "dead": stats.dead,
        "transactions": stats.transactions,
    }
    if broker_cpu is not None:
        result["broker_cpu_seconds"] = broker_after - broker_cpu
    if profiler is not None:
        profiler.dump_stats(path)
        print_cprofile(path)
    if spy is not None:
        print_py_spy(Path(path), "process-service")
    return result


def output_sizes(bootstrap: str, topics: Topics, run: dict, ticks: int) -> dict:
    """What the in-process ``run`` wrote: records per tick, samples and mean sizes of them."""
    written = run["bars"] + run["indicator_rows"] + run["alerts"]
    # a bar, then its indicator row, in turn: the mix the service writes
    bars = sample_values(bootstrap, topics.name("bars"))
    rows = sample_values(bootstrap, topics.name("indicators"))
    values = [v for pair in zip(bars, rows, strict=False) for v in pair]
    return {
        "per_tick": written / ticks,
        "values": values,
        "value_bytes": sum(map(len, values)) / len(values),
        "trades_bytes": sample_sizes(bootstrap, topics.name("trades")),
        "state_bytes": sample_sizes(bootstrap, topics.name("state"), last=True,
                                    skip_keys=(META_KEY, NAMES_KEY)),
    }  # fmt: skip


def output_floors(bootstrap: str, topics: Topics, sizes: dict, ticks: int) -> dict:
    """The relays of ``scale_floor`` over ``ticks``: the service's Kafka traffic, no processing.

    Each reads every tick and writes as many records as the service wrote bars,
    indicator rows and alerts per tick: real bars and indicator rows of the
    service's, in turn (``output_sizes``). ``trades`` adds the reference to each
    batch's kept trades, ``state`` the state record of each symbol a transaction
    read too.
    """
    per_tick, size, values = sizes["per_tick"], sizes["value_bytes"], sizes["values"]
    trades_bytes, state_bytes = sizes["trades_bytes"], sizes["state_bytes"]
    floors = {
        "outputs": relay(bootstrap, topics, ticks, per_tick, size, values=values),
        "trades": relay(bootstrap, topics, ticks, per_tick, size, trades_bytes, values=values),
        "state": relay(bootstrap, topics, ticks, per_tick, size, trades_bytes, state_bytes,
                       values=values),
    }  # fmt: skip
    for name, floor in floors.items():
        print(f"output floor ({name}): {floor['ticks_per_s']:,.0f}/s", file=sys.stderr)
    kept = {k: v for k, v in sizes.items() if k != "values"}
    return {**floors, "sizes": kept}


def cli_run(
    cluster_: Cluster,
    topics: Topics,
    ends: dict[int, int],
    options: tuple[str, ...] = (),
    store_trades: bool = True,
) -> dict:
    """Run ``marketpulse process --exit-when-idle 2 [options]``; time it to the end being committed.

    ``store_trades`` false: with ``MARKETPULSE_PROCESS_STORE_TRADES=false`` (no ``trades``).
    """
    group = f"{topics.prefix}process-cli" + ("" if store_trades else "-no-trades")
    command = [
        sys.executable, "-m", "marketpulse", "process", "--bootstrap-servers",
        cluster_.bootstrap, "--topic-prefix", topics.prefix, "--group", group,
        "--instance-id", "bench-cli", "--exit-when-idle", "2", *options,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    if not store_trades:
        env["MARKETPULSE_PROCESS_STORE_TRADES"] = "false"
    watch = CommitWatch(cluster_.bootstrap, group, topics.ticks, ends)
    broker_cpu = cluster_.broker_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = b""
    try:
        done = watch.wait(lambda: proc.poll() is None)
        cpu = process_cpu_seconds(proc.pid)
        broker_after = cluster_.broker_cpu_seconds()
    finally:
        output, _ = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"marketpulse process failed:\n{output.decode(errors='replace')}")
    seconds = done - start
    trades = sum(ends.values())
    route = "command" if store_trades else "command-no-trades"
    result = {"route": route, "seconds": seconds, "ticks_per_s": trades / seconds,
              "cpu_seconds": cpu}  # fmt: skip
    if broker_cpu is not None:
        result["broker_cpu_seconds"] = broker_after - broker_cpu
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=13, help="Lean days written (default 13)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each ceiling; best kept, all recorded"
    )
    parser.add_argument(
        "--routes", default="in-process,command,command-no-trades",
        help="process service routes to time: in-process, command, command-no-trades (the "
        "command with [process] store_trades off) (comma-separated)",
    )  # fmt: skip
    parser.add_argument("--no-kcat", action="store_true", help="skip the kcat ceiling")
    parser.add_argument(
        "--no-floors", action="store_true",
        help="skip the output floors (relays writing the service's records, no processing)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", default=None,
        help="cprofile:FILE or py-spy:FILE: profile the in-process service run",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.no_kcat and shutil.which("kcat") is None:
        sys.exit(KCAT_HELP)
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    batches = lean_days(args.copies)
    warm_up(batches)
    with cluster() as kafka:
        topics = Topics(new_prefix("catchup"))
        bus = bus_for(kafka.bootstrap)
        create_topics(bus, topics)
        loaded = preload(kafka.bootstrap, topics, batches)
        ends = end_offsets(kafka.bootstrap, topics.ticks)
        if sum(ends.values()) != loaded["trades"]:
            raise RuntimeError(f"ticks holds {sum(ends.values())} records, not {loaded['trades']}")
        print(f"preloaded {loaded['trades']:,} trades: {loaded['ticks_per_s']:,.0f}/s; "
              f"per partition {ends}", file=sys.stderr)  # fmt: skip
        raw_runs: dict[str, list[dict]] = {"service_fetch": [], "no_fetch_backoff": []}

        def time_raw() -> None:
            for name, settings in (("service_fetch", SERVICE_FETCH),
                                   ("no_fetch_backoff", NO_FETCH_BACKOFF)):  # fmt: skip
                runs = [run_raw_consumer(kafka.bootstrap, topics.ticks, ends, settings)
                        for _ in range(args.repeat)]  # fmt: skip
                raw_runs[name] += runs
                print(f"raw confluent-kafka ({name}): "
                      f"{max(r['ticks_per_s'] for r in runs):,.0f}/s", file=sys.stderr)  # fmt: skip

        time_raw()
        kcat = None
        if not args.no_kcat:
            kcat = {}
            for name, settings in (("defaults", {}), ("no_fetch_backoff", NO_BACKOFF)):
                kcat[name] = best([run_kcat(kafka.bootstrap, topics.ticks, loaded["trades"],
                                            settings) for _ in range(args.repeat)])  # fmt: skip
                print(f"kcat ({name}): {kcat[name]['ticks_per_s']:,.0f}/s", file=sys.stderr)
        services, sizes = [], None
        for i, route in enumerate(routes):
            if i:
                recreate_topics(bus, topics, OUTPUTS)  # a fresh state topic: start from scratch
            if route == "in-process":
                run = service_run(kafka, topics, ends, args.profile)
                if not args.no_floors:
                    sizes = output_sizes(kafka.bootstrap, topics, run, sum(ends.values()))
            elif route in ("command", "command-no-trades"):
                run = cli_run(kafka, topics, ends, store_trades=route == "command")
            else:
                raise SystemExit(f"unknown route {route!r}")
            run["dead_reasons"] = dead_letter_reasons(kafka.bootstrap, topics.name("dlq"))
            print(f"process service ({route}): {run['ticks_per_s']:,.0f}/s", file=sys.stderr)
            services.append(run)
        floors = None
        if sizes is not None:
            floors = output_floors(kafka.bootstrap, topics, sizes, sum(ends.values()))
        # the raw reads again after the services: the ceiling is the best of all (right
        # after the preload the broker may still be busy writing it out)
        time_raw()
        raw = {name: best(runs) for name, runs in raw_runs.items()}
        result = {
            "broker": kafka.describe(),
            "partitions": PARTITIONS,
            "partition_records": {str(p): n for p, n in ends.items()},
            "preload": loaded,
            "process": services,
            "raw_consumer": raw,
            "kcat": kcat,
            "floors": floors,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
