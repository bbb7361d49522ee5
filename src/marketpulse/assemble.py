"""The pipeline's parts built from the settings tree, for the commands and ``Pipeline`` alike.

``marketpulse run`` and ``replay`` (:mod:`marketpulse.cli`) and the Python API
(:class:`marketpulse.Pipeline`) turn one :class:`~marketpulse.config.Settings`
into the processor's settings, the alert rules, the lake and the embedded
runner's options through these functions, so the two cannot drift apart.

Heavy modules (the processor, the sinks, the runner) are imported where used:
importing this module costs no more than the settings.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from marketpulse.config import Settings
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from marketpulse.alerts import Notifications, Rule
    from marketpulse.indicators import DeclaredSet
    from marketpulse.runtime.runner import RunnerOptions
    from marketpulse.sinks import Sink
    from marketpulse.sinks.lake_location import LakeLocation
    from marketpulse.stream import ProcessorSettings

__all__ = [
    "declared_indicators",
    "embedded_options",
    "lake_location",
    "notifications_from",
    "processor_settings",
    "rules_from",
    "runner_options",
]

logger = logging.getLogger(__name__)

#: Bar fields every alert rule may read besides the indicators.
_BAR_FIELDS = ("open", "high", "low", "close", "volume")


def processor_settings(settings: Settings, wall_clock: bool = False) -> ProcessorSettings:
    """Build the processor's settings from the global ones.

    An ``idle_timeout`` of 0 (never close bars by processing time) becomes ``None``.

    Args:
        settings: the settings tree.
        wall_clock: the input is live (times are checked against the wall clock).

    Raises:
        ConfigError: an interval, indicator or plugin is wrong (one line naming it).
    """
    from marketpulse.forecast.stage import ForecastSettings
    from marketpulse.plugins import load_plugins
    from marketpulse.stream import ProcessorSettings
    from marketpulse.timeframes import parse_intervals as parse

    plugins = load_plugins(settings.plugins)  # a bad spec: one line, before anything starts
    declared = declared_indicators(settings)
    try:
        intervals = tuple(i.name for i in parse(settings.intervals))
    except ValueError as exc:
        raise ConfigError(f"intervals (MARKETPULSE_INTERVALS or the config file): {exc}") from None
    # trained models (gbm:<version>, lstm:<version>) are read from the lake's artefacts
    forecast = ForecastSettings(settings.forecast_models, settings.forecast_horizons,
                                lake=lake_location(settings))  # fmt: skip
    try:
        return ProcessorSettings(
            forecast=forecast,
            indicators=declared,
            plugins=plugins,
            intervals=intervals,
            lateness=settings.lateness,
            idle_timeout=settings.idle_timeout or None,
            session_tz=settings.session_tz,
            session_calendar=settings.session_calendar,
            fill_gaps=settings.fill_gaps,
            conditions=settings.conditions,
            max_time_jump=settings.max_time_jump,
            max_symbols=settings.max_symbols,
            wall_clock=wall_clock,
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def declared_indicators(settings: Settings) -> DeclaredSet:
    """Return the declared indicators of the settings, or the default set.

    Raises:
        ConfigError: a declaration is wrong (one line naming it).
    """
    from marketpulse.indicators import DEFAULT, parse_set

    if not settings.indicators:
        return DEFAULT
    try:
        return parse_set(settings.indicators)
    except ValueError as exc:
        raise ConfigError(f"indicators: {exc}") from None


def rules_from(settings: Settings) -> list[Rule]:
    """Load the alert rules file of the settings, or the default rules, for the declared indicators.

    A rule of the file that reads a column the declared indicators lack stops
    the command (one line naming the rule and the column); a default rule
    that does is left out, and the log says so.

    Raises:
        ConfigError: a rule reads a column that is not declared.
        RulesError: the rules file is invalid.
    """
    from marketpulse.alerts import default_rules, load_rules
    from marketpulse.alerts.conditions import needs

    rules = load_rules(settings.rules) if settings.rules else default_rules()
    declared = declared_indicators(settings)
    available = {*declared.columns, *_BAR_FIELDS}
    kept = []
    for rule in rules:
        missing = sorted(set(needs(rule)) - available)
        if not missing:
            kept.append(rule)
        elif settings.rules:
            raise ConfigError(
                f"{settings.rules}: rule {rule.name!r} reads {', '.join(missing)}, which the "
                f"declared indicators do not make (declared: {', '.join(declared.columns)})"
            )
        else:
            logger.info(
                "default rule %s is off: it reads %s, not among the declared indicators",
                rule.name, ", ".join(missing),
            )  # fmt: skip
    return kept


def notifications_from(settings: Settings) -> Notifications | None:
    """Load the notification channels and routes of the settings' rules file (``None``: none).

    ``${NAME}``, ``secret_env`` and ``password_env`` read this process's environment.

    Raises:
        RulesError: a channel or route is invalid (one line naming file and line).
    """
    from marketpulse.alerts import load_notifications

    if not settings.rules:
        return None
    return load_notifications(settings.rules, os.environ) or None


def lake_location(settings: Settings) -> LakeLocation:
    """Return the lake every command reads and writes: the settings' root with their ``[s3]``.

    Raises:
        LakeLocationError: the lake is neither a directory nor ``s3://bucket/prefix``.
    """
    from marketpulse.sinks.lake_location import LakeLocation

    return LakeLocation.of(settings.lake, settings.s3)


def embedded_options(
    settings: Settings,
    rules: list[Rule],
    *,
    dataset: str | None,
    sinks: Sequence[Sink] = (),
    duration: float | None = None,
    speed: float | None = None,
    notifications: Notifications | None = None,
    processor: ProcessorSettings | None = None,
) -> RunnerOptions:
    """Build the embedded runner's options (``marketpulse run``, ``replay``, ``Pipeline``).

    Args:
        settings: the settings tree (lake, processor, partitions, ``[process]``, ...).
        rules: the alert rules (:func:`rules_from`).
        dataset: the dataset every stored row carries; ``None``: the feed's own.
        sinks: where the tables go; empty: the Parquet lake of the settings.
        duration: stop after this many seconds; ``None``: when the feed ends.
        speed: replay a file at this multiple of real time; ``None``: as fast as it goes.
        notifications: the rules file's notification channels (:func:`notifications_from`).
        processor: the processor's settings when already built; ``None``: from ``settings``.

    Raises:
        ConfigError: a processor setting is wrong.
        LakeLocationError: the lake is neither a directory nor ``s3://bucket/prefix``.
    """
    from marketpulse.runtime.runner import RunnerOptions

    return RunnerOptions(
        lake=lake_location(settings),
        rules=rules,
        processor=processor_settings(settings) if processor is None else processor,
        dataset=dataset,
        alerts_file=settings.alerts_file,
        notifications=notifications,
        partitions=settings.partitions,
        speed=speed,
        duration=duration,
        sinks=tuple(sinks),
        process=settings.process,
    )


def runner_options(
    settings: Settings,
    rules: list[Rule],
    *,
    dataset: str,
    duration: float | None = None,
    notifications: Notifications | None = None,
) -> RunnerOptions:
    """Build the runner's options on a Kafka cluster (``marketpulse run --kafka``).

    The topics it creates, the codec and the processor's timings follow the
    settings' ``[kafka]`` and ``[process]``.

    Args:
        settings: the settings tree.
        rules: the alert rules (:func:`rules_from`).
        dataset: the dataset every output of the run carries.
        duration: stop after this many seconds; ``None``: until stopped.
        notifications: the rules file's notification channels (:func:`notifications_from`).

    Raises:
        ConfigError: a processor setting is wrong.
        LakeLocationError: the lake is neither a directory nor ``s3://bucket/prefix``.
    """
    from marketpulse.runtime.runner import RunnerOptions

    kafka = settings.kafka
    return RunnerOptions(
        lake=lake_location(settings),
        rules=rules,
        processor=processor_settings(settings),
        dataset=dataset,
        alerts_file=settings.alerts_file,
        notifications=notifications,
        duration=duration,
        partitions=kafka.partitions,
        replication=kafka.replication,
        retention_hours=kafka.retention_hours,
        compression=kafka.compression,
        process=settings.process,
    )
