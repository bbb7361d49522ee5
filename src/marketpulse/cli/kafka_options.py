"""Options every Kafka command shares, and the bus they build."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import bounded, settings_from
from marketpulse.config import GUARANTEE, GUARANTEES, KafkaSettings, Settings

if TYPE_CHECKING:
    from marketpulse.bus.kafka import KafkaBus
    from marketpulse.bus.topics import Topics

__all__ = [
    "BOOTSTRAP_OPTION",
    "EXIT_WHEN_IDLE_OPTION",
    "GROUP_OPTION",
    "GUARANTEE_OPTION",
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


def _guarantee(value: str | None) -> str | None:
    """Refuse a guarantee other than those offered, at parse time (one line, exit 2)."""
    if value is not None and value not in GUARANTEES:
        raise typer.BadParameter(f"expected one of {', '.join(GUARANTEES)}, got {value!r}")
    return value


GUARANTEE_OPTION = typer.Option(
    None,
    "--guarantee",
    envvar="MARKETPULSE_GUARANTEE",
    metavar="|".join(GUARANTEES),
    callback=_guarantee,
    help="Processing guarantee on Kafka: exactly-once (outputs, state and offsets commit "
    "together in Kafka transactions: read_committed readers see outputs once each, when "
    "their transaction commits) or at-least-once (outputs sent at once, outside the "
    "transactions, a few ms sooner; after a crash the outputs sent since the last commit "
    "are sent again, identical) [default: [process] guarantee, MARKETPULSE_GUARANTEE or "
    f"MARKETPULSE_PROCESS_GUARANTEE, else {GUARANTEE}].",
)
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
