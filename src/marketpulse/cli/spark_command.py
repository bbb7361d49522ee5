"""``marketpulse spark``: the processor inside Spark Structured Streaming (the ``spark`` extra)."""

from __future__ import annotations

import logging
import re
import threading

import typer

from marketpulse.cli import options
from marketpulse.cli.common import bounded, console, dataset_for, processor_settings, rules_from
from marketpulse.cli.kafka_options import open_bus
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.signals import stop_on_signals
from marketpulse.cli.sink_options import SinkKind, build_sink
from marketpulse.exceptions import RunFailure
from marketpulse.spark.options import MAX_OFFSETS_PER_TRIGGER

__all__ = ["spark"]

logger = logging.getLogger(__name__)


@grouped
def spark(
    checkpoint: str = typer.Option(
        ...,
        "--checkpoint",
        metavar="DIR",
        help="The query's checkpoint folder (a path, or a URI Spark writes: s3a://, hdfs://): "
        "its offsets and the buckets' state; a restart with the same folder resumes.",
    ),
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    master: str = typer.Option(
        None,
        "--master",
        metavar="URL",
        help="Spark master [default: the one spark-submit gave, else local[*]].",
    ),  # fmt: skip
    starting_offsets: str = typer.Option(
        "earliest",
        "--starting-offsets",
        metavar="earliest|latest",
        help="Where a new query starts reading ticks (a restart resumes from its checkpoint).",
    ),  # fmt: skip
    max_offsets_per_trigger: int = typer.Option(
        MAX_OFFSETS_PER_TRIGGER,
        "--max-offsets-per-trigger",
        min=1,
        metavar="N",
        help="Ticks read per micro-batch at most (a micro-batch's outputs are collected in "
        "the driver: this bounds its memory).",
    ),  # fmt: skip
    trigger: float = typer.Option(
        0.0,
        "--trigger",
        callback=bounded(0),
        metavar="SECONDS",
        help="Seconds between micro-batches (0: each starts when the last ends; 1 while bars "
        "close by the clock, see --idle-timeout).",
    ),  # fmt: skip
    available_now: bool = typer.Option(
        False,
        "--available-now",
        help="Process what the ticks topic holds now, then stop.",
    ),  # fmt: skip
    no_topics: bool = typer.Option(
        False, "--no-topics", help="Do not write the output topics (only the storage given)."
    ),
    lake: options.Lake = None,
    postgres_url: options.PostgresUrl = None,
    influx_url: options.InfluxUrl = None,
    sink: options.Sinks = None,
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="Dataset stamped on every output [default: live; or MARKETPULSE_DATASET].",
    ),  # fmt: skip
    processing: options.Processing = options.Processing(),
    idle_timeout: float = typer.Option(
        0.0,
        "--idle-timeout",
        callback=bounded(0),
        metavar="SECONDS",
        help="Seconds without input after which a bucket's bars close by processing time "
        "(0: never, bars close by input alone). Not the idle_timeout setting of process: "
        "while it is on, Spark runs a micro-batch at every trigger, input or not.",
    ),  # fmt: skip
    plugin: options.Plugins = None,
    name: str = typer.Option(
        "marketpulse-spark",
        "--name",
        help="The query's name (Spark's UI; the output transactions' id derives from it).",
    ),  # fmt: skip
    config: options.Config = None,
) -> None:
    """Run the processor inside Spark Structured Streaming: ticks in, the same outputs as process.

    Reads the ticks topic with Spark's Kafka source and runs each bucket (a ticks
    partition) through MarketPulse's processor in a stateful operator whose state
    Spark checkpoints (RocksDB). Each micro-batch's bars, indicators, alerts,
    dead letters (and plugins' values, the trades kept) go to the output topics in
    one Kafka transaction, and to the lake (--lake), PostgreSQL (--postgres-url) and
    InfluxDB (--influx-url): a micro-batch Spark runs again writes nothing twice.
    With --idle-timeout, a bucket without input for that long closes its bars by
    Spark's processing-time timers (micro-batches then run every --trigger seconds, 1
    by default, with input or not); otherwise, and with --available-now, bars close by
    input alone.
    Needs the spark extra: pip install 'marketpulse[spark]'.
    """
    import dataclasses

    from marketpulse.feeds.dataset import LIVE
    from marketpulse.spark import SparkOptions

    settings = options.overlay(spark, locals())
    try:
        spark_options = SparkOptions(
            checkpoint=checkpoint, master=master, starting_offsets=starting_offsets,
            max_offsets_per_trigger=max_offsets_per_trigger, trigger_seconds=trigger,
            available_now=available_now, to_kafka=not no_topics, name=name,
        )  # fmt: skip
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    stream = processor_settings(settings, wall_clock=True)
    stream = dataclasses.replace(
        stream,
        dataset=dataset_for(settings, dataset, LIVE),
        # a bounded run closes bars by input alone, as replays do (docs/guides/spark.md)
        idle_timeout=None if available_now or not idle_timeout else idle_timeout,
    )
    kinds = list(dict.fromkeys(sink or []))
    for given, kind in ((lake, SinkKind.lake), (postgres_url, SinkKind.postgres),
                        (influx_url, SinkKind.influx)):  # fmt: skip
        if given and kind not in kinds:
            kinds.append(kind)
    if no_topics and not kinds:
        raise typer.BadParameter("--no-topics leaves nothing to write: give --lake, "
                                 "--postgres-url or --influx-url")  # fmt: skip
    _run(settings, stream, rules_from(settings), spark_options, kinds)


def _run(settings, stream, rules, spark_options, kinds) -> None:  # noqa: ANN001 - typed above
    from marketpulse.spark.terminal import quiet_start
    from marketpulse.spark.writer import BatchWriter

    bus, topics = open_bus(settings)
    bus.partitions(topics.ticks)  # a missing topic: one line, before Spark starts
    sinks = []
    try:
        for kind in kinds:
            sinks.append(build_sink(kind, settings, max_age_s=3600.0))
    except BaseException:
        for built in sinks:
            built.close()
        raise
    writer = BatchWriter(bus, topics, spark_options.name, sinks, spark_options.to_kafka)
    # after a stop, the JVM's threads the stop interrupts print their traces: left out
    with stop_on_signals() as stop, quiet_start(stopped=stop):
        failure = _query(settings, stream, rules, spark_options, writer, bus, topics, stop)
    console.print(f"spark: {writer.stats.line()}", highlight=False)
    if failure:
        raise RunFailure(f"spark: the query stopped: {failure}")
    if stop.signum is not None:
        raise typer.Exit(stop.exit_code)


def _query(settings, stream, rules, spark_options, writer, bus, topics, stop) -> str | None:  # noqa: ANN001
    """Run the query until it ends or ``stop`` is set; say why it failed (``None``: it did not).

    A query that fails because a Python worker Spark started in the driver did
    not connect back within Spark's fixed 10 s (a busy machine) starts again
    from its checkpoint, at most ``_STARTS`` times in all: the micro-batch it
    cut short runs again, as after a crash, and writes nothing twice.
    """
    from marketpulse.spark.job import start

    try:
        session = _session(spark_options, stop)
        if session is None:  # stopped while Spark started: nothing ran yet
            return None
        try:
            for attempt in range(1, _STARTS + 1):
                if stop.is_set():  # stopped as the session was made, or between starts
                    return None
                query = start(session, bus, topics, stream, rules, spark_options, writer,
                              store_trades=settings.process.store_trades)  # fmt: skip
                failure = _await(query, stop)
                if failure and stop.is_set():  # stopped on request: what the stop cut short
                    logger.debug("spark: the query ended as it was stopped: %s", failure)
                    return None  # runs again at the next start: no failure
                if not failure or attempt == _STARTS or not _transient(query):
                    return failure
                logger.warning(
                    "spark: the query failed (%s): starting it again from its checkpoint "
                    "(start %d of %d)", failure, attempt + 1, _STARTS,
                )  # fmt: skip
            return None  # not reached: the last start returns
        finally:
            session.stop()
    finally:
        writer.close()


def _await(query, stop) -> str | None:  # noqa: ANN001 - a pyspark StreamingQuery, an Event
    """Wait for ``query`` to end or ``stop`` to be set, stop it; say why it failed."""
    try:
        while query.isActive and not stop.is_set():
            query.awaitTermination(0.5)
    except Exception:  # noqa: BLE001 - the query failed: _why says why, in one line
        logger.debug("spark: the query failed", exc_info=True)
    if query.isActive:
        logger.info("spark: stopping the query (a micro-batch under way runs again "
                    "at the next start)")  # fmt: skip
        query.stop()
    return _why(query)


#: Starts of the query in one run of the command (the first, and restarts after
#: a transient failure).
_STARTS = 3
#: Spark's words for a Python worker that did not connect back in time (its
#: PythonWorkerFactory waits a fixed 10 s for one it starts itself).
_TRANSIENT = ("Python worker failed to connect back",
              "waiting for the Python worker to connect back")  # fmt: skip


def _transient(query) -> bool:  # noqa: ANN001 - a pyspark StreamingQuery
    """Whether the query failed for a reason a restart from its checkpoint can outlast."""
    text = _failure_text(query) or ""
    return any(marker in text for marker in _TRANSIENT)


def _failure_text(query) -> str | None:  # noqa: ANN001 - a pyspark StreamingQuery
    """Spark's whole message of the query's failure (``None``: it did not fail)."""
    error = query.exception()
    return None if error is None else str(error.desc if hasattr(error, "desc") else error)


def _session(spark_options, stop):  # noqa: ANN001, ANN202 - a SparkSession, or None
    """Start Spark's session off the main thread; ``None`` when a signal stops the wait.

    Made in the main thread, pyspark's ``SparkContext`` takes SIGINT over: its
    handler raises ``KeyboardInterrupt`` inside whatever py4j call is under way,
    and py4j logs the tracebacks. Made in another thread, it leaves the signals
    to the command, and Ctrl-C while the JVM starts stops at once (the JVM exits
    with this process: it reads its standard input to the end).
    """
    from marketpulse.spark.job import spark_session

    made: list[object] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            made.append(spark_session(spark_options))
        except BaseException as exc:  # noqa: BLE001 - raised again in the main thread
            failed.append(exc)

    starter = threading.Thread(target=make, name="spark-start", daemon=True)
    starter.start()
    while starter.is_alive():
        if stop.wait(0.2):
            logger.info("spark: stopped while Spark started")
            return None
    if failed:
        raise failed[0]
    return made[0]


def _why(query) -> str | None:  # noqa: ANN001 - a pyspark StreamingQuery
    """One line saying why the query failed (``None``: it did not)."""
    text = _failure_text(query)
    if text is None:
        return None
    for marker in ("CheckpointError: ", "BusError: ", "SinkError: ", "StoreFailedError: "):
        at = text.rfind(marker)
        if at >= 0:
            return text[at + len(marker) :].splitlines()[0].strip()
    at = text.find(_PROXY)
    raised = _raised(text[at + len(_PROXY) :]) if at >= 0 else None
    if raised:  # a Python error in a micro-batch: its own line, not the traceback's header
        return raised
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(query.exception()).__name__
    first = lines[0]
    at = first.find(_TERMINATED)
    first = first[at + len(_TERMINATED) :] if at >= 0 else first
    return re.sub(r"\s*SQLSTATE: \w+", "", first)


#: Spark's words before the cause, in a failed query's message.
_TERMINATED = "terminated with exception: "
#: py4j's words before the traceback of a Python callback (a micro-batch's function).
_PROXY = "An exception was raised by the Python Proxy. Return Message: "
#: A traceback's last line: the exception's (qualified) name, and its message.
_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(?::\s.*)?")


def _raised(traceback: str) -> str | None:
    """The exception line of a Python traceback in a JVM message (the last one if chained)."""
    found = None
    for line in traceback.splitlines():
        if line.startswith(("\tat ", "at ")):  # the JVM's frames: the traceback ended
            break
        if line.startswith(": ") and found and "Py4JJavaError" in found:
            found = line[2:].strip()  # the JVM's error behind a py4j call: say that one
            continue
        if line[:1].isspace() or line.startswith(("Traceback ", "During handling", "The above")):
            continue
        if _EXCEPTION_LINE.fullmatch(line.strip()):
            found = line.strip()
    return found
