"""``marketpulse process`` and ``marketpulse sink``: the stages as Kafka services."""

from __future__ import annotations

from typing import Annotated

import typer

from marketpulse.cli import options
from marketpulse.cli.common import (
    bounded,
    console,
    dataset_for,
    processor_settings,
    rules_from,
)
from marketpulse.cli.kafka_options import (
    open_bus,
)
from marketpulse.cli.metrics_options import metrics_endpoint
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.options import Setting
from marketpulse.cli.signals import stop_on_signals
from marketpulse.cli.sink_options import (
    SinkKind,
    build_sink,
)
from marketpulse.config import COMMIT_INTERVAL, Settings

__all__ = ["process", "sink_app"]

sink_app = typer.Typer(
    help="Store the processor's output topics (a consumer group per sink).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@grouped
def process(
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    group: options.Group = None,
    instance_id: str = typer.Option(
        None,
        "--instance-id",
        envvar="MARKETPULSE_INSTANCE_ID",
        help="Stable name of this instance (one per instance): a restart with the same "
        "name takes its partitions and transactions back at once [default: random].",
    ),
    commit_interval: Annotated[
        float | None,
        typer.Option(
            "--commit-interval",
            callback=bounded(0.001),
            help="Seconds a transaction with outputs may stay open while catching up on a "
            "backlog; otherwise outputs are committed (visible to read_committed readers) as "
            "soon as the input at hand is handled [default: [process] commit_interval or "
            f"MARKETPULSE_PROCESS_COMMIT_INTERVAL, else {COMMIT_INTERVAL:g}].",
        ),
        Setting("process.commit_interval"),
    ] = None,
    guarantee: options.Guarantee = None,
    exit_when_idle: options.ExitWhenIdle = None,
    processing: options.Processing = options.Processing(),
    idle_timeout: options.IdleTimeout = None,
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="Dataset stamped on every output (bars, indicators, alerts, dead letters); one "
        "ticks topic carries one dataset (use a topic prefix per dataset) "
        "[default: live; or MARKETPULSE_DATASET].",
    ),
    plugin: options.Plugins = None,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
) -> None:
    """Run the processor as a consumer-group member: ticks in, bars/indicators/alerts out.

    Consumes the ticks topic, builds bars, indicators and alerts, and produces
    them inside Kafka transactions that also carry the consumed offsets and the
    changed symbols' state, so a crash or a rebalance loses and duplicates
    nothing (--guarantee at-least-once: outputs go at once, outside the
    transactions; a crash then repeats the outputs since the last commit).
    Start more instances with the same --group to share the partitions.
    """
    import dataclasses

    from marketpulse.feeds.dataset import LIVE
    from marketpulse.runtime.heap import settle_heap
    from marketpulse.runtime.process import ProcessOptions, ProcessService
    from marketpulse.runtime.service_figures import ProcessFigures
    from marketpulse.stream import Processor

    settings = options.overlay(process, locals())
    name = dataset_for(settings, dataset, LIVE)
    stream = dataclasses.replace(processor_settings(settings, wall_clock=True), dataset=name)
    processor = Processor(stream, rules_from(settings))
    service_options = ProcessOptions(
        group=group or "marketpulse-process", instance=instance_id,
        exit_when_idle=exit_when_idle, compression=settings.kafka.compression,
        settings=settings.process,
    )  # fmt: skip
    with metrics_endpoint(settings, "process") as endpoint:
        bus, topics = open_bus(settings)
        processor.warm_up()
        settle_heap()
        figures = ProcessFigures() if endpoint is not None else None
        with stop_on_signals() as stop:
            service = ProcessService(bus, topics, processor, service_options, stop,
                                     on_output=figures.on_output if figures else None,
                                     on_commit=figures.on_commit if figures else None)  # fmt: skip
            if endpoint is not None and figures is not None:
                figures.attach(service)
                endpoint.attach(figures)
            stats = service.run()
    console.print(f"process: {stats.line()}", highlight=False)
    if stop.signum is not None:  # stopped cleanly by Ctrl-C or SIGTERM
        raise typer.Exit(stop.exit_code)


MAX_AGE_OPTION = typer.Option(
    None, "--max-age", callback=bounded(0),
    help="Seconds rows wait at most before they are written "
    "[default: 5 for the lake, 2 for databases].",
)  # fmt: skip


@sink_app.command("lake")
def sink_lake(
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    group: options.Group = None,
    exit_when_idle: options.ExitWhenIdle = None,
    lake: options.Lake = None,
    max_age: float = MAX_AGE_OPTION,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
) -> None:
    """Write the output topics to the Parquet lake, idempotently.

    Reads bars, indicators, alerts, dlq (and, when their topics exist, custom:
    plugins' values, trades: the trades the processor kept, quotes, predictions: the
    forecasting models', and news: headlines) with read_committed;
    files are named
    after the offsets they hold, so rows written again after a crash replace
    their earlier file; offsets are committed once the files are durable.
    """
    from marketpulse.bus.topics import OPTIONAL_TOPICS, OUTPUT_TOPICS

    settings = options.overlay(sink_lake, locals())
    _serve_sink(SinkKind.lake, settings, group, exit_when_idle, max_age,
                (*OUTPUT_TOPICS, *OPTIONAL_TOPICS))  # fmt: skip


@sink_app.command("postgres")
def sink_postgres(
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    group: options.Group = None,
    exit_when_idle: options.ExitWhenIdle = None,
    postgres_url: options.PostgresUrl = None,
    max_age: float = MAX_AGE_OPTION,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
) -> None:
    """Upsert bars, indicators and alerts (and custom, predictions, news) into PostgreSQL.

    custom (plugins' values), predictions (the forecasting models') and news
    (headlines) are read where their topics exist.

    Migrates the schema first (as `marketpulse db migrate`); rows go by binary
    COPY into staging tables, then INSERT ... ON CONFLICT DO UPDATE on their
    natural keys; offsets are committed once the transaction has committed.
    """
    from marketpulse.bus.topics import FORECAST_TOPICS, NEWS_TOPICS, PLUGIN_TOPICS

    settings = options.overlay(sink_postgres, locals())
    _serve_sink(SinkKind.postgres, settings, group, exit_when_idle, max_age,
                ("bars", "indicators", "alerts", *PLUGIN_TOPICS, *FORECAST_TOPICS,
                 *NEWS_TOPICS))  # fmt: skip


@sink_app.command("influx")
def sink_influx(
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    group: options.Group = None,
    exit_when_idle: options.ExitWhenIdle = None,
    influx_url: options.InfluxUrl = None,
    max_age: float = MAX_AGE_OPTION,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
) -> None:
    """Write bars, indicators and alerts to InfluxDB as line protocol, idempotently.

    predictions and news are written too, where their topics exist.

    A point is keyed by measurement, tags (symbol, interval) and time, so
    points written again after a crash replace themselves; offsets are
    committed once InfluxDB has accepted the writes.
    """
    from marketpulse.bus.topics import FORECAST_TOPICS, NEWS_TOPICS

    settings = options.overlay(sink_influx, locals())
    _serve_sink(SinkKind.influx, settings, group, exit_when_idle, max_age,
                ("bars", "indicators", "alerts", *FORECAST_TOPICS, *NEWS_TOPICS))  # fmt: skip


def _serve_sink(
    kind: SinkKind,
    settings: Settings,
    group: str | None,
    exit_when_idle: float | None,
    max_age: float | None,
    tables: tuple[str, ...],
) -> None:
    from marketpulse.cli.failures import failure_line
    from marketpulse.exceptions import RunFailure
    from marketpulse.runtime.heap import settle_heap
    from marketpulse.runtime.service_figures import SinkFigures
    from marketpulse.runtime.sink import SinkOptions, SinkService
    from marketpulse.sinks.exceptions import StoreFailedError

    with metrics_endpoint(settings, f"sink {kind.value}") as endpoint:
        bus, topics = open_bus(settings)
        sink = build_sink(kind, settings, max_age_s=max_age)
        service_options = SinkOptions(
            group=group or f"marketpulse-sink-{kind.value}", tables=tables,
            exit_when_idle=exit_when_idle,
        )  # fmt: skip
        settle_heap()
        with stop_on_signals() as stop:
            service = SinkService(bus, topics, sink, service_options, stop)
            if endpoint is not None:
                endpoint.attach(SinkFigures(service))
            try:
                stats = service.run()
            except StoreFailedError as exc:  # the figures, then what was not stored
                console.print(f"sink {kind.value}: {service.stats.line()}", highlight=False)
                raise RunFailure(failure_line(exc, service.stats.rows)) from exc
    console.print(f"sink {kind.value}: {stats.line()}", highlight=False)
    if stop.signum is not None:
        raise typer.Exit(stop.exit_code)
