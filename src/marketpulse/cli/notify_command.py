"""``marketpulse notify``: the committed alerts of a Kafka cluster to the rules file's channels."""

from __future__ import annotations

from pathlib import Path

import typer

from marketpulse.cli import options
from marketpulse.cli.common import bounded, console, notifications_from
from marketpulse.cli.kafka_options import (
    open_bus,
)
from marketpulse.cli.metrics_options import metrics_endpoint
from marketpulse.cli.signals import stop_on_signals
from marketpulse.exceptions import ConfigError

__all__ = ["notify"]


def notify(
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    group: options.Group = None,
    rules: options.Rules = None,
    ledger: Path = typer.Option(
        Path("./data/notified.ids"),
        "--ledger",
        help="File of the ids of the alerts notified (kept between runs: what is in it is "
        "not sent again).",
        dir_okay=False,
    ),  # fmt: skip
    commit_interval: float = typer.Option(
        1.0,
        "--commit-interval",
        callback=bounded(0.001),
        help="Seconds between offset commits at most.",
    ),  # fmt: skip
    exit_when_idle: options.ExitWhenIdle = None,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
) -> None:
    """Send the committed alerts (read_committed) to the channels of --rules, each alert once.

    Reads the alerts topic as a consumer group; an alert's id goes to --ledger
    once every channel is done with it, and offsets are committed after that:
    after a crash the alerts read again are not notified again.
    """
    from marketpulse.runtime import Metrics
    from marketpulse.runtime.notify import NotifyFigures, NotifyOptions, NotifyService

    settings = options.overlay(notify, locals())
    notifications = notifications_from(settings)
    if not notifications:
        raise ConfigError("notify: --rules FILE with a 'notifiers:' table is required")
    bus, topics = open_bus(settings)
    metrics = Metrics()
    service_options = NotifyOptions(
        group=group or "marketpulse-notify",
        ledger=str(ledger),
        commit_interval=commit_interval,
        exit_when_idle=exit_when_idle,
    )
    with metrics_endpoint(settings, "notify") as endpoint, stop_on_signals() as stop:
        service = NotifyService(bus, topics, notifications, service_options, stop, metrics.notified)
        if endpoint is not None:
            endpoint.attach(NotifyFigures(service, metrics.notifications))
        service.run()
    counts = ", ".join(f"{c} {o} {n}" for (c, o), n in sorted(metrics.notifications().items()))
    console.print(
        f"notify: alerts read {service.read}, already notified {service.skipped}, "
        f"dead letters {service.dead}; {counts or 'nothing sent'}",
        highlight=False,
    )
    if stop.signum is not None:
        raise typer.Exit(stop.exit_code)
