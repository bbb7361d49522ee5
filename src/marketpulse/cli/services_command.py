"""``marketpulse process`` and ``marketpulse sink``: the stages as Kafka services."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import typer

from marketpulse.cli.common import (
    CONFIG_OPTION,
    INTERVALS_OPTION,
    LAKE_OPTION,
    LATENESS_OPTION,
    RULES_OPTION,
    console,
    parse_intervals,
    processor_settings,
    rules_from,
)
from marketpulse.cli.kafka_options import (
    BOOTSTRAP_OPTION,
    EXIT_WHEN_IDLE_OPTION,
    GROUP_OPTION,
    PREFIX_OPTION,
    kafka_settings,
    open_bus,
)

__all__ = ["process", "sink_app", "stop_on_signals"]

sink_app = typer.Typer(
    help="Store the processor's output topics (a consumer group per sink).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an event that SIGINT (Ctrl-C) and SIGTERM set, for a clean stop."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def process(
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    group: str = GROUP_OPTION,
    instance_id: str = typer.Option(
        None,
        "--instance-id",
        envvar="MARKETPULSE_INSTANCE_ID",
        help="Stable name of this instance (one per instance): a restart with the same "
        "name takes its partitions and transactions back at once [default: random].",
    ),
    commit_interval: float = typer.Option(
        0.1,
        "--commit-interval",
        min=0.001,
        help="Seconds between transaction commits: outputs become visible to "
        "read_committed readers at each commit.",
    ),  # fmt: skip
    exit_when_idle: float = EXIT_WHEN_IDLE_OPTION,
    rules: str = RULES_OPTION,
    intervals: str = INTERVALS_OPTION,
    lateness: float = LATENESS_OPTION,
    idle_timeout: float = typer.Option(
        None,
        "--idle-timeout",
        help="Seconds without input after which a partition's bars close by processing "
        "time [default: 2]; 0 never closes them so (outputs then depend on input alone).",
    ),  # fmt: skip
    config: Path = CONFIG_OPTION,
) -> None:
    """Run the processor as a consumer-group member: ticks in, bars/indicators/alerts out.

    Consumes the ticks topic, builds bars, indicators and alerts, and produces
    them inside Kafka transactions that also carry the consumed offsets and the
    changed symbols' state, so a crash or a rebalance loses and duplicates
    nothing. Start more instances with the same --group to share the partitions.
    """
    from marketpulse.services.process import ProcessOptions, ProcessService
    from marketpulse.stream import Processor

    settings = kafka_settings(
        config, bootstrap_servers, topic_prefix, rules=rules, lateness=lateness,
        intervals=parse_intervals(intervals),
        idle_timeout=None if idle_timeout is None else (idle_timeout or 1e12),
    )  # fmt: skip
    processor = Processor(processor_settings(settings), rules_from(settings))
    bus, topics = open_bus(settings)
    options = ProcessOptions(
        group=group or "marketpulse-process", instance=instance_id,
        commit_interval=commit_interval, exit_when_idle=exit_when_idle,
    )  # fmt: skip
    with stop_on_signals() as stop:
        stats = ProcessService(bus, topics, processor, options, stop).run()
    console.print(f"process: {stats.line()}", highlight=False)


@sink_app.command("lake")
def sink_lake(
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    group: str = GROUP_OPTION,
    exit_when_idle: float = EXIT_WHEN_IDLE_OPTION,
    lake: str = LAKE_OPTION,
    max_age: float = typer.Option(
        5.0, "--max-age", min=0.0, help="Seconds rows wait at most before they are written."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Write the output topics to the Parquet lake, idempotently.

    Reads bars, indicators, alerts and dlq with read_committed; files are named
    after the offsets they hold, so rows written again after a crash replace
    their earlier file; offsets are committed once the files are durable.
    """
    from marketpulse.services.sink import SinkOptions, SinkService
    from marketpulse.sinks import LakeSink

    settings = kafka_settings(config, bootstrap_servers, topic_prefix, lake=lake)
    bus, topics = open_bus(settings)
    sink = LakeSink(settings.lake, max_age_s=max_age)
    options = SinkOptions(group=group or "marketpulse-sink-lake", exit_when_idle=exit_when_idle)
    with stop_on_signals() as stop:
        stats = SinkService(bus, topics, sink, options, stop).run()
    console.print(f"sink lake: {stats.line()}", highlight=False)
