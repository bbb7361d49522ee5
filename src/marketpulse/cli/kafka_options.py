"""Options every Kafka command shares, and the bus they build."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import bounded, settings_from
from marketpulse.config import KafkaSettings, Settings

if TYPE_CHECKING:
    from marketpulse.bus.kafka import KafkaBus
    from marketpulse.bus.topics import Topics

__all__ = [
    "BOOTSTRAP_OPTION",
    "EXIT_WHEN_IDLE_OPTION",
    "GROUP_OPTION",
    "PREFIX_OPTION",
    "kafka_settings",
    "open_bus",
]

_DEFAULTS = KafkaSettings()
BOOTSTRAP_OPTION = typer.Option(
    None,
    "--bootstrap-servers",
    help="Kafka bootstrap servers, host:port[,host:port] "
    f"[default: MARKETPULSE_KAFKA_BOOTSTRAP, else {_DEFAULTS.bootstrap}].",
)
PREFIX_OPTION = typer.Option(
    None, "--topic-prefix", help=f"Prefix of every topic name [default: {_DEFAULTS.topic_prefix}]."
)
GROUP_OPTION = typer.Option(None, "--group", help="Consumer group of this service.")
EXIT_WHEN_IDLE_OPTION = typer.Option(
    None,
    "--exit-when-idle",
    help="Exit cleanly, offsets committed, once no input arrived for this many seconds "
    "(counted from the partitions' assignment; before it, at least 30 s to join the group).",
    callback=bounded(0),
)


def kafka_settings(
    config: Path | None, bootstrap: str | None, prefix: str | None, **overrides: object
) -> Settings:
    """Load settings with the Kafka options applied."""
    return settings_from(
        config, **{"kafka.bootstrap": bootstrap, "kafka.topic_prefix": prefix}, **overrides
    )


def open_bus(settings: Settings) -> tuple[KafkaBus, Topics]:
    """Return the Kafka bus of the settings, checked reachable, and its topic names."""
    from marketpulse.bus.kafka import KafkaBus  # confluent_kafka: for the commands that use it
    from marketpulse.bus.topics import Topics

    bus = KafkaBus(settings.kafka)
    bus.check()
    return bus, Topics(settings.kafka.topic_prefix)
