"""``marketpulse topics create|describe|delete``: the topics of a deployment on Kafka."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import CONFIG_OPTION, bounded, console, err_console
from marketpulse.cli.kafka_options import BOOTSTRAP_OPTION, PREFIX_OPTION, kafka_settings, open_bus
from marketpulse.config import (
    TOPIC_PARTITIONS,
    TOPIC_REPLICATION,
    TOPIC_RETENTION_HOURS,
    Settings,
)
from marketpulse.exceptions import BusError, ConfigError

if TYPE_CHECKING:
    from marketpulse.bus.kafka import KafkaBus

__all__ = ["topics_app"]

logger = logging.getLogger(__name__)

topics_app = typer.Typer(
    help="Create, describe and delete the MarketPulse topics on a Kafka cluster.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: Topic settings `describe` shows.
_SHOWN_CONFIGS = ("cleanup.policy", "retention.ms", "min.insync.replicas")


@topics_app.command("create")
def topics_create(
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    partitions: int = typer.Option(
        None, "--partitions", min=1, help=f"Partitions of each topic [default: {TOPIC_PARTITIONS}]."
    ),
    replication_factor: int = typer.Option(
        None,
        "--replication-factor",
        min=1,
        help="Replicas of each partition; at most the number of brokers "
        f"[default: {TOPIC_REPLICATION}].",
    ),  # fmt: skip
    min_insync_replicas: int = typer.Option(
        None,
        "--min-insync-replicas",
        min=1,
        help="Replicas that must hold a record before a write with acks=all succeeds "
        "(each topic's min.insync.replicas); at most the replication factor; with "
        "replication 3, 2 keeps topics writable while one broker is down "
        "[default: the brokers' own min.insync.replicas].",
    ),  # fmt: skip
    retention_hours: float = typer.Option(
        None,
        "--retention-hours",
        callback=bounded(-1),
        help="Hours the data topics keep records, -1 for ever "
        f"[default: {TOPIC_RETENTION_HOURS:g}]; "
        "the state topic is compacted (the latest state of each symbol stays).",
    ),  # fmt: skip
    config: Path = CONFIG_OPTION,
) -> None:
    """Create every MarketPulse topic that does not exist yet.

    ticks, bars, indicators, alerts and dlq delete records after the retention;
    state is compacted. Topics that already exist are reported and left as they
    are, so running it again is harmless.
    """
    settings = kafka_settings(
        config, bootstrap_servers, topic_prefix,
        **{"kafka.partitions": partitions, "kafka.replication": replication_factor,
           "kafka.retention_hours": retention_hours},
    )  # fmt: skip
    from marketpulse.bus.topics import topic_specs

    kafka = _checked(settings, min_insync_replicas).kafka
    bus, topics = open_bus(settings)
    specs = topic_specs(topics, kafka.retention_hours)
    names = [spec.name for spec in specs]
    extra = {"min.insync.replicas": str(min_insync_replicas)} if min_insync_replicas else {}
    configs = {spec.name: {**spec.config, **extra} for spec in specs}
    logger.info(
        "topics create: %s on %s (%d partitions, replication %d, min.insync.replicas %s)",
        ", ".join(names), kafka.bootstrap, kafka.partitions, kafka.replication,
        min_insync_replicas or "of the brokers",
    )  # fmt: skip
    created = set(bus.create_topics(names, kafka.partitions, kafka.replication, configs))
    _wait_for(bus, names, present=True)
    for spec in specs:
        if spec.name in created:
            console.print(
                f"created  {spec.name}  ({kafka.partitions} partitions, {_policy(spec.config)})",
                highlight=False,
            )
        else:
            count = bus.partitions(spec.name)
            console.print(
                f"exists   {spec.name}  ({count} partitions; left unchanged)", highlight=False
            )
    console.print(
        f"{len(created)} created, {len(names) - len(created)} already existed", highlight=False
    )


@topics_app.command("describe")
def topics_describe(
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Show each topic: partitions, replication, cleanup and retention, end offsets.

    Exits non-zero when a topic is missing.
    """
    from marketpulse.bus.topics import topic_specs

    settings = kafka_settings(config, bootstrap_servers, topic_prefix)
    bus, topics = open_bus(settings)
    names = [spec.name for spec in topic_specs(topics)]
    described = _describe(bus, names)
    for name in names:
        info = described.get(name)
        if info is None:
            console.print(f"{name}: missing", highlight=False)
            continue
        configs = ", ".join(f"{k}={v}" for k, v in info.configs.items())
        total = sum(info.end_offsets)
        offsets = " ".join(f"{p}:{o:,}" for p, o in enumerate(info.end_offsets))
        console.print(
            f"{name}: {len(info.end_offsets)} partitions, replication factor "
            f"{info.replication}, {configs}\n  end offsets ({total:,} in all): {offsets}",
            highlight=False,
            soft_wrap=True,
        )
    missing = [name for name in names if name not in described]
    if missing:
        raise BusError(
            f"{len(missing)} of {len(names)} topics missing under prefix {topics.prefix!r}: "
            "create them with `marketpulse topics create`"
        )


@topics_app.command("delete")
def topics_delete(
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Delete without asking (needed when not on a terminal)."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Delete every MarketPulse topic under the prefix, with all its records.

    Asks first on a terminal; elsewhere it refuses unless --yes is given.
    """
    from marketpulse.bus.topics import Topics, topic_specs

    settings = kafka_settings(config, bootstrap_servers, topic_prefix)
    names = [spec.name for spec in topic_specs(Topics(settings.kafka.topic_prefix))]
    if not yes:
        if not sys.stdin.isatty():
            err_console.print(
                "[bold red]error:[/] refusing to delete topics without --yes "
                f"(this deletes {', '.join(names)} on {settings.kafka.bootstrap} "
                "and every record in them)",
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(2)
        question = f"Delete {', '.join(names)} on {settings.kafka.bootstrap}, records and all?"
        if not typer.confirm(question, default=False):
            err_console.print("nothing deleted")
            raise typer.Exit(1)
    bus, _ = open_bus(settings)
    logger.info("topics delete: %s on %s", ", ".join(names), settings.kafka.bootstrap)
    deleted = set(bus.delete_topics(names))
    _wait_for(bus, sorted(deleted), present=False)
    for name in names:
        word = "deleted" if name in deleted else "absent "
        console.print(f"{word}  {name}", highlight=False)
    console.print(f"{len(deleted)} deleted", highlight=False)


def _checked(settings: Settings, min_insync_replicas: int | None = None) -> Settings:
    """Refuse topic settings Kafka would refuse, or that no write could meet."""
    kafka = settings.kafka
    if kafka.partitions < 1 or kafka.replication < 1:
        raise ConfigError("kafka partitions and replication must be at least 1")
    if min_insync_replicas and min_insync_replicas > kafka.replication:
        raise ConfigError(
            f"--min-insync-replicas {min_insync_replicas} exceeds the replication factor "
            f"{kafka.replication}: no write with acks=all could ever succeed"
        )
    if not (kafka.retention_hours > 0 or kafka.retention_hours == -1):
        raise ConfigError(
            f"retention: expected a positive number of hours or -1 (for ever), "
            f"got {kafka.retention_hours:g}"
        )
    return settings


def _policy(config: dict[str, str]) -> str:
    if config.get("cleanup.policy") == "compact":
        return "compacted"
    ms = int(config["retention.ms"])
    return "kept for ever" if ms < 0 else f"retention {_duration(ms)}"


def _duration(ms: int) -> str:
    hours = ms / 3_600_000
    if hours >= 24 and hours % 24 == 0:
        return f"{hours / 24:g} d"
    return f"{hours:g} h"


# Admin look-ups `topics` needs beyond KafkaBus; candidates for KafkaBus itself.


@dataclass(frozen=True, slots=True)
class _TopicInfo:
    replication: int
    configs: dict[str, str] = field(default_factory=dict)
    end_offsets: list[int] = field(default_factory=list)


#: Kafka's error codes of a look-up on a topic just created, whose leaders are not known
#: everywhere yet: NOT_LEADER_FOR_PARTITION, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PART
#: (numbers: confluent_kafka is imported only by the commands that use it).
_LEADER_NOT_KNOWN = frozenset({6, 5, 3})


def _describe(bus: KafkaBus, names: list[str]) -> dict[str, _TopicInfo]:
    """Return partitions, key settings and end offsets of the topics that exist."""
    import confluent_kafka as ck
    from confluent_kafka.admin import ConfigResource, OffsetSpec, ResourceType

    admin, timeout = bus.admin(), bus.connect_timeout
    deadline = time.monotonic() + timeout
    while True:
        metadata = admin.list_topics(timeout=timeout).topics
        present = [n for n in names if n in metadata and metadata[n].error is None]
        if not present:
            return {}
        try:
            resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
            configs = {r.name: f.result() for r, f in admin.describe_configs(resources).items()}
            wanted = {
                ck.TopicPartition(name, p): OffsetSpec.latest()
                for name in present
                for p in metadata[name].partitions
            }
            ends = {
                (tp.topic, tp.partition): f.result().offset
                for tp, f in admin.list_offsets(wanted, request_timeout=timeout).items()
            }
            break
        except ck.KafkaException as exc:
            # topics just created: their leaders may not be known everywhere yet
            # (NOT_LEADER_FOR_PARTITION): look again with fresh metadata
            error = exc.args[0]
            transient = error.retriable() or error.code() in _LEADER_NOT_KNOWN
            if not transient or time.monotonic() > deadline:
                raise BusError(
                    f"cannot describe topics on {bus.settings.bootstrap}: {exc}"
                ) from None
            time.sleep(0.2)
    out = {}
    for name in present:
        parts = metadata[name].partitions
        shown = {k: configs[name][k].value for k in _SHOWN_CONFIGS if k in configs[name]}
        if "retention.ms" in shown and shown.get("cleanup.policy") != "compact":
            ms = int(shown["retention.ms"])
            shown["retention.ms"] += " (for ever)" if ms < 0 else f" ({_duration(ms)})"
        elif shown.get("cleanup.policy") == "compact":
            shown.pop("retention.ms", None)
        out[name] = _TopicInfo(
            replication=len(parts[min(parts)].replicas) if parts else 0,
            configs=shown,
            end_offsets=[ends[(name, p)] for p in sorted(parts)],
        )
    return out


def _wait_for(bus: KafkaBus, names: list[str], present: bool) -> None:
    """Wait until the cluster's metadata shows ``names`` created (or deleted)."""
    deadline = time.monotonic() + bus.connect_timeout
    while names:
        topics = bus.admin().list_topics(timeout=bus.connect_timeout).topics
        if all((name in topics) == present for name in names):
            return
        if time.monotonic() > deadline:
            logger.warning("topics: metadata does not show the change yet; it will shortly")
            return
        time.sleep(0.1)
