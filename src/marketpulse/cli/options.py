"""Option types the commands share, each tied to the settings key it sets.

An option that sets a setting is declared once, as an ``Annotated`` type that
carries its typer option and a :class:`Setting` marker naming the key of the
settings tree (:class:`~marketpulse.config.Settings`) it overlays::

    def replay(lake: options.Lake = None, config: options.Config = None) -> None:
        settings = options.overlay(replay, locals())

:func:`overlay` loads the settings (``--config``, the file, the environment) and
lays every given option of the command over them, so a command's function
names each option once, in its signature. Options that are not settings (the
feed, the sinks, the dashboard's address) carry no :class:`Setting` mark.

Options several commands take together are declared once more as option
groups (:class:`Processing`, :class:`FileInput`, :class:`Storage`,
:class:`Simulated`, the live feed's
:class:`~marketpulse.cli.feed_options.LiveOptions` and the dashboard's
:class:`~marketpulse.cli.dashboard_command.DashboardAddress`): a command takes
a whole group as one parameter (:mod:`marketpulse.cli.option_groups`).

The help texts stay where the commands that do not use these types yet read
them (``*_OPTION`` of :mod:`~marketpulse.cli.common` and its siblings); the
types here are built from those, so each is written once.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from marketpulse.cli.common import (
    ADJUST_OPTION,
    ALERTS_FILE_OPTION,
    COLUMNS_OPTION,
    CONDITIONS_OPTION,
    CONFIG_OPTION,
    DATASET_OPTION,
    FILL_GAPS_OPTION,
    FORECAST_HORIZONS_OPTION,
    FORECAST_OPTION,
    FORMAT_OPTION,
    INDICATORS_OPTION,
    INTERVALS_OPTION,
    LAKE_OPTION,
    LATENESS_OPTION,
    MAX_SYMBOLS_OPTION,
    PLUGIN_OPTION,
    RULES_OPTION,
    SUSPICIOUS_OPTION,
    SYMBOL_OPTION,
    Adjust,
    FileFormat,
    bounded,
    forecast_horizons,
    forecast_models,
    parse_indicators,
    parse_intervals,
    plugin_specs,
    settings_from,
)
from marketpulse.cli.feed_options import LiveOptions
from marketpulse.cli.kafka_options import (
    BOOTSTRAP_OPTION,
    EXIT_WHEN_IDLE_OPTION,
    GROUP_OPTION,
    GUARANTEE_OPTION,
    PREFIX_OPTION,
)
from marketpulse.cli.metrics_options import METRICS_PORT_OPTION
from marketpulse.cli.option_groups import annotated, flatten, option_group
from marketpulse.cli.sink_options import (
    INFLUX_URL_OPTION,
    POSTGRES_TABLES_OPTION,
    POSTGRES_URL_OPTION,
    SINK_OPTION,
    SinkKind,
)
from marketpulse.config import IDLE_TIMEOUT, Secret, Settings

__all__ = [
    "AdjustPrices", "AlertsFile", "Bootstrap", "Columns", "Conditions", "Config", "Dataset",
    "ExitWhenIdle", "FileInput", "FillGaps", "Forecast", "ForecastHorizons", "Format", "Group",
    "Guarantee", "IncludeSuspicious", "Indicators", "InfluxUrl", "Intervals", "Lake",
    "Lateness", "LiveOptions", "MaxSymbols", "MetricsPort", "Plugins", "PostgresTables",
    "PostgresUrl", "Processing", "Rate", "Rules", "Seed", "Setting", "Simulated", "Sinks",
    "Storage", "Symbol", "Symbols", "TopicPrefix", "overlay", "setting_keys",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Setting:
    """Marks an option as the command-line value of a settings key.

    Attributes:
        key: the key in the settings tree, dotted for a section (``kafka.bootstrap``).
        convert: turns the option's value into the setting's (``None``: as given);
            it may refuse it with one line naming the option.
    """

    key: str
    convert: Callable[[Any], Any] | None = None


def _secret(value: str | None) -> Secret | None:
    """A URL option kept secret: it may hold a password."""
    return Secret(value) if value else None


def _value(choice: Any) -> str | None:
    """An enum choice as the setting's text."""
    return None if choice is None else str(choice.value)


# The settings file and the storage.
Config = Annotated[Path | None, annotated(CONFIG_OPTION)]
Lake = Annotated[str | None, annotated(LAKE_OPTION), Setting("lake")]
Rules = Annotated[str | None, annotated(RULES_OPTION), Setting("rules")]
AlertsFile = Annotated[str | None, annotated(ALERTS_FILE_OPTION), Setting("alerts_file")]
Dataset = Annotated[str | None, annotated(DATASET_OPTION)]  # checked by dataset_for
Sinks = Annotated[list[SinkKind] | None, annotated(SINK_OPTION)]
PostgresUrl = Annotated[
    str | None, annotated(POSTGRES_URL_OPTION), Setting("postgres_url", _secret)
]
PostgresTables = Annotated[str | None, annotated(POSTGRES_TABLES_OPTION)]
InfluxUrl = Annotated[str | None, annotated(INFLUX_URL_OPTION), Setting("influx_url", _secret)]

# How the processor builds bars, indicators and alerts.
Intervals = Annotated[
    str | None, annotated(INTERVALS_OPTION), Setting("intervals", parse_intervals)
]
FillGaps = Annotated[bool | None, annotated(FILL_GAPS_OPTION), Setting("fill_gaps")]
Conditions = Annotated[str | None, annotated(CONDITIONS_OPTION), Setting("conditions")]
Indicators = Annotated[
    str | None, annotated(INDICATORS_OPTION), Setting("indicators", parse_indicators)
]
Lateness = Annotated[float | None, annotated(LATENESS_OPTION), Setting("lateness")]
MaxSymbols = Annotated[int | None, annotated(MAX_SYMBOLS_OPTION), Setting("max_symbols")]
Plugins = Annotated[list[str] | None, annotated(PLUGIN_OPTION), Setting("plugins", plugin_specs)]
Forecast = Annotated[
    str | None, annotated(FORECAST_OPTION), Setting("forecast_models", forecast_models)
]
ForecastHorizons = Annotated[
    str | None,
    annotated(FORECAST_HORIZONS_OPTION),
    Setting("forecast_horizons", forecast_horizons),
]

# Kafka.
Bootstrap = Annotated[str | None, annotated(BOOTSTRAP_OPTION), Setting("kafka.bootstrap")]
TopicPrefix = Annotated[str | None, annotated(PREFIX_OPTION), Setting("kafka.topic_prefix")]
Guarantee = Annotated[str | None, annotated(GUARANTEE_OPTION), Setting("process.guarantee")]
MetricsPort = Annotated[int | None, annotated(METRICS_PORT_OPTION), Setting("metrics_port")]
Group = Annotated[str | None, annotated(GROUP_OPTION)]  # each service's own
ExitWhenIdle = Annotated[float | None, annotated(EXIT_WHEN_IDLE_OPTION)]
IdleTimeout = Annotated[
    float | None,
    typer.Option(
        "--idle-timeout",
        callback=bounded(0),
        help="Seconds without input after which a partition's bars close by processing "
        "time; 0: never, bars close by input alone (outputs then depend on input alone) "
        f"[default: idle_timeout or MARKETPULSE_IDLE_TIMEOUT, else {IDLE_TIMEOUT:g}].",
    ),
    Setting("idle_timeout"),
]

# A file to replay or publish (not settings: they describe the file).
Format = Annotated[FileFormat | None, annotated(FORMAT_OPTION)]
Symbol = Annotated[str | None, annotated(SYMBOL_OPTION)]
Columns = Annotated[str | None, annotated(COLUMNS_OPTION)]
IncludeSuspicious = Annotated[bool, annotated(SUSPICIOUS_OPTION)]
AdjustPrices = Annotated[Adjust, annotated(ADJUST_OPTION)]

# The simulated market.
Symbols = Annotated[
    int | None,
    typer.Option("--symbols", min=1, help="Simulator: number of symbols [default: 50]."),
    Setting("simulator.symbols"),
]
Rate = Annotated[
    float | None,
    typer.Option("--rate", callback=bounded(0, above=True),
                 help="Simulator: trades per second, all symbols together [default: 5000]."),
    Setting("simulator.rate"),
]  # fmt: skip
Seed = Annotated[
    int | None,
    typer.Option("--seed", min=0,
                 help="Simulator: random seed; the same seed gives the same market [default: 0]."),
    Setting("simulator.seed"),
]  # fmt: skip


# Option groups: options several commands take together (see option_groups).


@option_group
@dataclass(frozen=True, slots=True)
class Processing:
    """How the processor builds bars, indicators and alerts (``run``, ``replay``, ...)."""

    rules: Rules = None
    intervals: Intervals = None
    fill_gaps: FillGaps = None
    conditions: Conditions = None
    indicators: Indicators = None
    lateness: Lateness = None
    max_symbols: MaxSymbols = None
    forecast: Forecast = None
    forecast_horizons: ForecastHorizons = None


@option_group
@dataclass(frozen=True, slots=True)
class FileInput:
    """How a trades or bars file is read: ``replay``, ``produce --file``, ``backfill --file``."""

    format: Format = None
    symbol: Symbol = None
    columns: Columns = None
    include_suspicious: IncludeSuspicious = False
    adjust: AdjustPrices = Adjust.none


@option_group
@dataclass(frozen=True, slots=True)
class Storage:
    """Where a pipeline's tables go besides the lake: ``run`` and ``replay``."""

    sink: Sinks = None
    postgres_url: PostgresUrl = None
    postgres_tables: PostgresTables = None
    influx_url: InfluxUrl = None


@option_group
@dataclass(frozen=True, slots=True)
class Simulated:
    """The simulated market: ``run`` and ``produce``."""

    symbols: Symbols = None
    rate: Rate = None
    seed: Seed = None

    def given(self) -> bool:
        """Whether any of them was given."""
        return any(v is not None for v in (self.symbols, self.rate, self.seed))


@functools.cache
def setting_keys(command: Callable[..., object]) -> dict[str, Setting]:
    """Return the settings key of each of ``command``'s parameters that sets one, by name."""
    hints = typing.get_type_hints(command, include_extras=True)
    keys = {}
    for name in inspect.signature(command).parameters:
        marks = [m for m in getattr(hints.get(name), "__metadata__", ()) if isinstance(m, Setting)]
        if marks:
            keys[name] = marks[0]
    return keys


def overlay(
    command: Callable[..., object], arguments: Mapping[str, Any], **overrides: object
) -> Settings:
    """Load the settings of ``command``'s ``--config`` with its given options laid over them.

    An option not given (``None``) keeps the file's or the environment's value.
    Options are converted in the order of the command's parameters, before the
    file is read, so a wrong option is named first.

    Args:
        command: the command's function (its parameters' :class:`Setting` marks).
        arguments: its arguments by name (``locals()`` at its start).
        overrides: further settings by key, computed by the command.

    Raises:
        InputError: an option's value is refused by its conversion.
        ConfigError: the settings file or environment is wrong.
    """
    given = {}
    arguments = flatten(arguments)
    for name, setting in setting_keys(command).items():
        value = arguments[name]
        if value is not None and setting.convert is not None:
            value = setting.convert(value)
        given[setting.key] = value
    return settings_from(arguments.get("config"), **given, **overrides)
