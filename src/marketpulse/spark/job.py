"""The Spark job: Kafka's ``ticks`` through the bucket operator, written by :class:`BatchWriter`.

:func:`spark_session` makes (or joins) the session: ``local[*]`` unless
``spark-submit`` gave a master, the RocksDB state store, the Kafka connector
from Maven Central unless the session already has it, and on a local master
every server bound to the loopback address. :func:`start` starts the query.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from marketpulse.bus.topics import QUOTE_TOPICS, Topics
from marketpulse.exceptions import BusError, ConfigError
from marketpulse.spark.options import SparkOptions

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.streaming import StreamingQuery

    from marketpulse.alerts import Rule
    from marketpulse.bus.kafka import KafkaBus
    from marketpulse.spark.writer import BatchWriter
    from marketpulse.stream import ProcessorSettings

__all__ = ["CLOCK_TRIGGER_S", "KAFKA_PACKAGE", "SPARK_VERSION", "spark_session", "start"]

logger = logging.getLogger(__name__)

#: The Spark version the route is built and tested on (pyspark, the connector).
SPARK_VERSION = "4.2.0"
#: Spark's Kafka connector on Maven Central, for ``spark.jars.packages`` (``--packages``).
KAFKA_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_2.13:{SPARK_VERSION}"
#: Seconds between micro-batches when bars close by the clock and no --trigger is given.
CLOCK_TRIGGER_S = 1.0
_ROCKSDB = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def spark_session(options: SparkOptions) -> SparkSession:
    """Return the Spark session of the job (made here, or the one ``spark-submit`` started).

    Raises:
        ConfigError: pyspark is not installed (the ``spark`` extra).
    """
    try:
        from pyspark import SparkConf
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError(
            "the Spark route needs pyspark: pip install 'marketpulse[spark]'"
        ) from None
    # the Python workers run this interpreter (its packages: MarketPulse, pandas, ...)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    _quiet()
    conf = SparkConf()
    master = options.master or conf.get("spark.master", None) or "local[*]"
    builder = SparkSession.builder.appName(options.name).master(master)
    if master.startswith("local"):  # a local driver serves no one else: the loopback only
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config(
            "spark.driver.bindAddress", "127.0.0.1"
        )
    if not (conf.get("spark.jars.packages", "") or conf.get("spark.jars", "")):
        builder = builder.config("spark.jars.packages", KAFKA_PACKAGE)
    session = (
        builder.config("spark.sql.streaming.stateStore.providerClass", _ROCKSDB)
        .config("spark.ui.showConsoleProgress", "false")  # the log says what each batch did
        .config("spark.sql.adaptive.enabled", "false")  # not for stateful queries: Spark warns
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel(os.environ.get("MARKETPULSE_SPARK_LOG_LEVEL", "WARN"))
    return session


def _quiet() -> None:
    """Keep Spark's start-up notices and a failure's traces out of the terminal.

    pyspark warns that it does not fully support pandas 3 (the route is tested
    with it), and py4j logs each connection. A driver this process starts
    (not ``spark-submit``'s) logs through the package's log4j2 settings:
    warnings stay, and a failed task or query is left to the command's one
    line; ``MARKETPULSE_TRACEBACK=1`` keeps Spark's own settings, every trace.
    """
    warning = "ignore:PySpark does not yet fully support pandas:FutureWarning"
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    given = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = f"{given},{warning}" if given else warning  # the workers
    traces = bool(os.environ.get("MARKETPULSE_TRACEBACK"))
    # py4j logs a failed foreachBatch call's trace; the command prints its cause in one line
    logging.getLogger("py4j").setLevel(logging.WARNING if traces else logging.CRITICAL)
    if traces or "PYSPARK_GATEWAY_PORT" in os.environ:  # Spark's own log settings
        return
    if "PYSPARK_SUBMIT_ARGS" not in os.environ:
        settings = Path(__file__).with_name("log4j2.properties")
        os.environ["PYSPARK_SUBMIT_ARGS"] = (
            f'--driver-java-options "-Dlog4j2.configurationFile={settings}" pyspark-shell'
        )


def start(
    spark: SparkSession,
    bus: KafkaBus,
    topics: Topics,
    settings: ProcessorSettings,
    rules: list[Rule],
    options: SparkOptions,
    writer: BatchWriter,
    store_trades: bool = True,
) -> StreamingQuery:
    """Start the query: ``ticks`` by bucket through the operator, each micro-batch to ``writer``.

    Raises:
        BusError: ``ticks`` does not exist, or the outputs have fewer partitions.
    """
    from marketpulse.spark.bucket_operator import OUTPUT_SCHEMA, BucketOperator

    partitions = bus.partitions(topics.ticks)
    quotes = _existing(bus, topics, QUOTE_TOPICS)
    operator = BucketOperator(settings, rules, topics.prefix, store_trades,
                              quotes[0] if quotes else None, uuid.uuid4().hex)  # fmt: skip
    spark.conf.set("spark.sql.shuffle.partitions", str(options.shuffle_partitions or partitions))
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bus.settings.bootstrap)
        .option("subscribe", topics.ticks)
        .option("startingOffsets", options.starting_offsets)
        .option("failOnDataLoss", "true")
    )
    for key, value in _kafka_security(bus).items():
        reader = reader.option(f"kafka.{key}", value)
    if options.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(options.max_offsets_per_trigger))
    ticks = reader.load().selectExpr(
        "key", "value", "partition", "offset", "unix_millis(timestamp) AS timestamp"
    )
    # closing by the clock: processing-time timers, and a micro-batch at every trigger
    # (with input or not) so that they fire
    by_clock = settings.idle_timeout is not None
    records = ticks.groupBy("partition").transformWithStateInPandas(
        statefulProcessor=operator, outputStructType=OUTPUT_SCHEMA, outputMode="Append",
        timeMode="ProcessingTime" if by_clock else "None",
    )  # fmt: skip
    stream = (
        records.writeStream.queryName(options.name)
        .option("checkpointLocation", options.checkpoint)
        .foreachBatch(writer)
    )
    if options.available_now:
        stream = stream.trigger(availableNow=True)
    elif options.trigger_seconds or by_clock:
        # each trigger runs a micro-batch while timers are set: not back to back
        seconds = options.trigger_seconds or CLOCK_TRIGGER_S
        stream = stream.trigger(processingTime=f"{seconds} seconds")
    logger.info(
        "spark: query %s on %s: %s (%d partitions) by bucket, checkpoint %s, master %s; %s",
        options.name, bus, topics.ticks, partitions, options.checkpoint,
        spark.sparkContext.master,
        f"a bucket's bars close after {settings.idle_timeout:g} s without input"
        if by_clock else "bars close by input alone",
    )  # fmt: skip
    from marketpulse.spark.progress import ProgressLog

    if not getattr(spark, _PROGRESS, False):  # one log for the session's starts of the query
        spark.streams.addListener(ProgressLog())
        setattr(spark, _PROGRESS, True)
    return stream.start()


#: The attribute that marks a session whose queries' progress is logged already.
_PROGRESS = "_marketpulse_progress_log"


def _existing(bus: KafkaBus, topics: Topics, shorts: Sequence[str]) -> list[str]:
    found = []
    for short in shorts:
        try:
            bus.partitions(topics.name(short))
        except BusError:
            continue
        found.append(topics.name(short))
    return found


def _kafka_security(bus: KafkaBus) -> dict[str, str]:
    """The cluster's connection settings as Spark's (Java) Kafka client names them."""
    settings = bus.settings
    config = {"security.protocol": settings.security_protocol.upper()}
    if settings.sasl_mechanism:
        mechanism = settings.sasl_mechanism.upper()
        config["sasl.mechanism"] = mechanism
        module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
                  else "org.apache.kafka.common.security.scram.ScramLoginModule")  # fmt: skip
        password = settings.sasl_password.reveal() or ""
        config["sasl.jaas.config"] = (
            f'{module} required username="{settings.sasl_username or ""}" password="{password}";'
        )
    if settings.ssl_ca:
        config["ssl.truststore.type"] = "PEM"
        config["ssl.truststore.location"] = settings.ssl_ca
    # a client certificate (mutual TLS) is Spark's own setting: --conf, see docs/spark.md
    return config
