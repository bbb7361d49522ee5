"""Option types the commands share, each tied to the settings key it sets.

An option that sets a setting is declared once, as an ``Annotated`` type that
carries its typer option and a :class:`Setting` marker naming the key of the
settings tree (:class:`~marketpulse.config.Settings`) it overlays::

    def replay(lake: options.Lake = None, config: options.Config = None) -> None:
        settings = options.overlay(replay, locals())

:func:`overlay` loads the settings (``--config``, the file, the environment) and
lays every given option of the command over them, so a command's function
names each option once, in its signature. Options that are not settings (the
feed, the sinks, the dashboard's address) are plain parameters of the command.

The help texts stay where the commands that do not use these types yet read
them (``*_OPTION`` of :mod:`~marketpulse.cli.common` and its siblings); the
types here are built from those, so each is written once.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any

from marketpulse.cli import feed_options as live
from marketpulse.cli.common import (
    ALERTS_FILE_OPTION,
    COLUMNS_OPTION,
    CONDITIONS_OPTION,
    CONFIG_OPTION,
    DATASET_OPTION,
    FILL_GAPS_OPTION,
    FORMAT_OPTION,
    INDICATORS_OPTION,
    INTERVALS_OPTION,
    LAKE_OPTION,
    LATENESS_OPTION,
    MAX_SYMBOLS_OPTION,
    PLUGIN_OPTION,
    RULES_OPTION,
    SYMBOL_OPTION,
    FileFormat,
    parse_indicators,
    parse_intervals,
    plugin_specs,
    settings_from,
)
from marketpulse.cli.kafka_options import (
    BOOTSTRAP_OPTION,
    EXIT_WHEN_IDLE_OPTION,
    GROUP_OPTION,
    GUARANTEE_OPTION,
    PREFIX_OPTION,
)
from marketpulse.cli.metrics_options import METRICS_PORT_OPTION
from marketpulse.cli.sink_options import (
    INFLUX_URL_OPTION,
    POSTGRES_TABLES_OPTION,
    POSTGRES_URL_OPTION,
    SINK_OPTION,
    SinkKind,
)
from marketpulse.config import Secret, Settings

if typing.TYPE_CHECKING:
    from typer.models import OptionInfo

__all__ = [
    "AlertsFile", "BarInterval", "Bootstrap", "Calendar", "Columns", "Conditions", "Config",
    "DataFeed", "Dataset", "EnvFile", "ExitWhenIdle", "FillGaps", "Format", "Group", "Guarantee",
    "History", "Indicators", "InfluxUrl", "Intervals", "Lake", "Lateness", "MaxSymbols",
    "MetricsPort", "Plugins", "PostgresTables", "PostgresUrl", "RateLimit", "RestUrl", "Rules",
    "Setting", "Sinks", "Symbol", "Tickers", "TopicPrefix", "Url", "Watchlist", "live_options",
    "overlay", "setting_keys",
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


def _annotated(option: OptionInfo) -> OptionInfo:
    """The ``Annotated`` form of an option declared as a default (typer wants no default in it)."""
    info = copy(option)
    info.default = ...
    return info


def _secret(value: str | None) -> Secret | None:
    """A URL option kept secret: it may hold a password."""
    return Secret(value) if value else None


def _value(choice: Any) -> str | None:
    """An enum choice as the setting's text."""
    return None if choice is None else str(choice.value)


# The settings file and the storage.
Config = Annotated[Path | None, _annotated(CONFIG_OPTION)]
Lake = Annotated[str | None, _annotated(LAKE_OPTION), Setting("lake")]
Rules = Annotated[str | None, _annotated(RULES_OPTION), Setting("rules")]
AlertsFile = Annotated[str | None, _annotated(ALERTS_FILE_OPTION), Setting("alerts_file")]
Dataset = Annotated[str | None, _annotated(DATASET_OPTION)]  # checked by dataset_for
Sinks = Annotated[list[SinkKind] | None, _annotated(SINK_OPTION)]
PostgresUrl = Annotated[
    str | None, _annotated(POSTGRES_URL_OPTION), Setting("postgres_url", _secret)
]
PostgresTables = Annotated[str | None, _annotated(POSTGRES_TABLES_OPTION)]
InfluxUrl = Annotated[str | None, _annotated(INFLUX_URL_OPTION), Setting("influx_url", _secret)]

# How the processor builds bars, indicators and alerts.
Intervals = Annotated[
    str | None, _annotated(INTERVALS_OPTION), Setting("intervals", parse_intervals)
]
FillGaps = Annotated[bool | None, _annotated(FILL_GAPS_OPTION), Setting("fill_gaps")]
Conditions = Annotated[str | None, _annotated(CONDITIONS_OPTION), Setting("conditions")]
Indicators = Annotated[
    str | None, _annotated(INDICATORS_OPTION), Setting("indicators", parse_indicators)
]
Lateness = Annotated[float | None, _annotated(LATENESS_OPTION), Setting("lateness")]
MaxSymbols = Annotated[int | None, _annotated(MAX_SYMBOLS_OPTION), Setting("max_symbols")]
Plugins = Annotated[list[str] | None, _annotated(PLUGIN_OPTION), Setting("plugins", plugin_specs)]

# Kafka.
Bootstrap = Annotated[str | None, _annotated(BOOTSTRAP_OPTION), Setting("kafka.bootstrap")]
TopicPrefix = Annotated[str | None, _annotated(PREFIX_OPTION), Setting("kafka.topic_prefix")]
Guarantee = Annotated[str | None, _annotated(GUARANTEE_OPTION), Setting("process.guarantee")]
MetricsPort = Annotated[int | None, _annotated(METRICS_PORT_OPTION), Setting("metrics_port")]
Group = Annotated[str | None, _annotated(GROUP_OPTION)]  # each service's own
ExitWhenIdle = Annotated[float | None, _annotated(EXIT_WHEN_IDLE_OPTION)]

# A file to replay or publish (not settings: they describe the file). Options with a
# default of their own (--include-suspicious, --adjust, --quotes) keep the default
# style, ``= SUSPICIOUS_OPTION``: a type here would need the default written again.
Format = Annotated[FileFormat | None, _annotated(FORMAT_OPTION)]
Symbol = Annotated[str | None, _annotated(SYMBOL_OPTION)]
Columns = Annotated[str | None, _annotated(COLUMNS_OPTION)]

# A live vendor feed (not settings: see feed_options.LiveOptions).
Url = Annotated[str | None, _annotated(live.URL_OPTION)]
RestUrl = Annotated[str | None, _annotated(live.REST_URL_OPTION)]
Tickers = Annotated[str | None, _annotated(live.TICKERS_OPTION)]
Watchlist = Annotated[Path | None, _annotated(live.WATCHLIST_OPTION)]
DataFeed = Annotated[str | None, _annotated(live.DATA_FEED_OPTION)]
BarInterval = Annotated[str | None, _annotated(live.BAR_INTERVAL_OPTION)]
History = Annotated[str | None, _annotated(live.HISTORY_OPTION)]
Calendar = Annotated[str | None, _annotated(live.CALENDAR_OPTION)]
RateLimit = Annotated[str | None, _annotated(live.RATE_LIMIT_OPTION)]
EnvFile = Annotated[Path | None, _annotated(live.ENV_FILE_OPTION)]


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
    for name, setting in setting_keys(command).items():
        value = arguments[name]
        if value is not None and setting.convert is not None:
            value = setting.convert(value)
        given[setting.key] = value
    return settings_from(arguments.get("config"), **given, **overrides)


def live_options(arguments: Mapping[str, Any]) -> live.LiveOptions:
    """The live-feed options among a command's arguments (``locals()``), by name."""
    return live.LiveOptions(**{f.name: arguments[f.name] for f in fields(live.LiveOptions)})
