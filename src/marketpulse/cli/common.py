"""Helpers shared by the commands: settings, logging, error reporting."""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.logging import RichHandler

from marketpulse.assemble import (
    declared_indicators,
    notifications_from,
    processor_settings,
    rules_from,
)
from marketpulse.config import BAR_INTERVALS, LATENESS, MAX_SYMBOLS, Settings, load_settings
from marketpulse.exceptions import InputError
from marketpulse.log_repeats import limit_repeats

if TYPE_CHECKING:  # imported where used: sql, report and lake start without them
    from marketpulse.cli.options import FileInput
    from marketpulse.feeds import FileReplay

__all__ = [
    "CONFIG_OPTION",
    "LAKE_OPTION",
    "bounded",
    "configure_logging",
    "console",
    "declared_indicators",
    "parse_columns",
    "parse_horizons",
    "processor_settings",
    "notifications_from",
    "rules_from",
    "settings_from",
]


def _console(stderr: bool = False) -> Console:
    """A console whose lines are never wrapped when they go to a pipe or a file.

    Rich wraps at 80 columns where it cannot ask a terminal for its width; a
    summary piped into a log or another program stays one line. On a terminal
    rich fits its width as usual (live tables and progress bars are drawn on
    terminals only).
    """
    out = Console(stderr=stderr)
    out.soft_wrap = not out.is_terminal
    return out


console = _console()
err_console = _console(stderr=True)

CONFIG_OPTION = typer.Option(
    None, "--config", help="TOML config file (default: ./marketpulse.toml when present).",
    dir_okay=False,
)  # fmt: skip
LAKE_OPTION = typer.Option(
    None, "--lake", help="Root of the Parquet lake, a directory or s3://bucket/prefix "
    "[default: ./data/lake, or MARKETPULSE_LAKE].",
)  # fmt: skip


def bounded(
    low: float, *, above: bool = False, high: float | None = None
) -> Callable[[float | None], float | None]:
    """Return an option callback refusing a number out of range at parse time.

    The command then stops before it starts with one line naming the option
    (``error: marketpulse run: Invalid value for '--rate': ...``) and exit code 2.

    Args:
        low: the smallest value allowed (``above``: the value must exceed it).
        above: refuse ``low`` itself.
        high: the largest value allowed (``None``: no upper bound).
    """
    wanted = f"{'above' if above else 'at least'} {low:g}"
    if high is not None:
        wanted += f" and at most {high:g}"

    def check(value: float | None) -> float | None:
        if value is None:  # not given
            return value
        if (not math.isfinite(value) or value < low or (above and value == low)
                or (high is not None and value > high)):  # fmt: skip
            raise typer.BadParameter(f"expected a number {wanted}, got {value:g}")
        return value

    check.allowed = wanted  # type: ignore[attr-defined]  # what a usage error names
    return check


def configure_logging(level: str) -> None:
    """Send log records to standard error, readable on a terminal and in files.

    Repeated warnings are rate-limited (:mod:`marketpulse.log_repeats`).
    """
    root = logging.getLogger()
    root.handlers.clear()
    if err_console.is_terminal:
        handler: logging.Handler = RichHandler(console=err_console, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    limit_repeats(handler)
    root.addHandler(handler)
    root.setLevel(level.upper())


def settings_from(config: Path | None, **overrides: object) -> Settings:
    """Load settings (file, environment) and apply command-line overrides."""
    settings = load_settings(config).replace(**overrides)
    configure_logging(settings.log_level)
    return settings


def parse_horizons(text: str, example: str, option: str = "--horizons") -> tuple[int, ...]:
    """``--horizons 5,15,60`` as bar counts (``example`` shows a good value in the error)."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"{option}: expected whole numbers of bars such as {example}, "
                         f"got {text!r}") from None  # fmt: skip
    if not values or min(values) < 1:
        raise InputError(f"{option}: whole numbers of bars, at least 1, got {text!r}")
    return values


def parse_columns(spec: str | None) -> dict[str, str] | None:
    """Parse ``--columns "px=price,qty=size"`` into a mapping."""
    if not spec:
        return None
    mapping = {}
    for item in spec.split(","):
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise InputError(f"--columns: expected FILE_COLUMN=FIELD pairs, got {item!r}")
        mapping[name.strip()] = target.strip()
    return mapping


class FileFormat(StrEnum):
    """Kinds of replay file."""

    trades = "trades"
    bars = "bars"


RULES_OPTION = typer.Option(
    None, "--rules", help="Alert rules file (YAML or TOML); default: the built-in rules."
)
INTERVALS_OPTION = typer.Option(
    None,
    "--intervals",
    help="Bar intervals built from trades, comma-separated: whole seconds, minutes or hours "
    "(90s, 15m, 4h), 1d and 1w follow the exchange's sessions "
    f"[default: {','.join(BAR_INTERVALS)}].",
)
FILL_GAPS_OPTION = typer.Option(
    None, "--fill-gaps/--no-fill-gaps",
    help="Close the intervals in which a symbol had no trade, between its first bar and the "
    "newest trade, as bars of the previous close, no volume, no trades [default: no; "
    "setting fill_gaps].",
)  # fmt: skip
CONDITIONS_OPTION = typer.Option(
    None, "--conditions", metavar="none|lean",
    help="Sale-condition rules: which trades set a bar's prices and which only add volume. "
    "lean: QuantConnect Lean's US equity bar rules (README, Tape rules) [default: none; "
    "setting conditions].",
)  # fmt: skip
INDICATORS_OPTION = typer.Option(
    None, "--indicators", metavar="DECLARATIONS",
    help="Indicators to compute, comma-separated: 'ema(50), rsi(7), bb=bbands(20, 2.5)' "
    "(`marketpulse indicators` lists the kinds) [default: indicators setting, or the 13 classic "
    "columns].",
)  # fmt: skip


def parse_indicators(value: str | None) -> tuple[str, ...] | None:
    """``--indicators`` as a settings override (``None``: not given, keep the config's)."""
    if value is None:
        return None
    if not value.strip():
        raise InputError("--indicators: no indicators given")
    return (value,)


LATENESS_OPTION = typer.Option(
    None, "--lateness", help=f"Allowed lateness of ticks, seconds [default: {LATENESS:g}].",
    callback=bounded(0),
)  # fmt: skip
MAX_SYMBOLS_OPTION = typer.Option(
    None, "--max-symbols", metavar="N", callback=bounded(1),
    help="Most symbols one input partition holds (about 26 kB of memory each, for the run); "
    "trades and bars of further symbols go to the DLQ with reason max_symbols "
    f"[default: max_symbols or MARKETPULSE_MAX_SYMBOLS, else {MAX_SYMBOLS:,}].",
)  # fmt: skip
PLUGIN_OPTION = typer.Option(
    None, "--plugin", metavar="MODULE:FUNCTION",
    help="A function of your own called on each batch of closed bars with their indicators "
    "(see README, Plugins); its columns go to the table custom, its alerts with the rules'. "
    "Repeat for several [default: plugins or MARKETPULSE_PLUGINS].",
)  # fmt: skip


FORECAST_OPTION = typer.Option(
    None, "--forecast", metavar="MODELS",
    help="Forecasting models run on each closed bar, comma-separated (online-linear, "
    "online-tree, persistence, always-up, drift, random, or a model trained into the lake: "
    "gbm:VERSION, lstm:VERSION, as forecast models lists them; see docs/guides/forecasts.md): "
    "their predictions go to the table predictions [default: forecast_models or "
    "MARKETPULSE_FORECAST_MODELS, else none].",
)  # fmt: skip
FORECAST_HORIZONS_OPTION = typer.Option(
    None, "--forecast-horizons", metavar="BARS",
    help="Bars ahead the --forecast models predict, comma-separated [default: "
    "forecast_horizons or MARKETPULSE_FORECAST_HORIZONS, else 1].",
)  # fmt: skip


def forecast_models(given: str | None) -> tuple[str, ...] | None:
    """``--forecast a,b`` as a settings override (``None``: not given, keep the config's)."""
    if given is None:
        return None
    return tuple(part.strip() for part in given.split(",") if part.strip())


def forecast_horizons(given: str | None) -> tuple[int, ...] | None:
    """``--forecast-horizons 1,5`` as a settings override."""
    if given is None:
        return None
    return parse_horizons(given, "1,5", option="--forecast-horizons")


def plugin_specs(given: list[str] | None) -> tuple[str, ...] | None:
    """The ``--plugin`` specs as a settings override (``None``: none given, keep the config's)."""
    return tuple(given) if given else None


ALERTS_FILE_OPTION = typer.Option(
    None,
    "--alerts-file",
    help="JSON-lines file alerts are appended to [default: ./data/alerts.jsonl].",
)


FORMAT_OPTION = typer.Option(None, "--format", help="Override detection: trades or bars.")
SYMBOL_OPTION = typer.Option(
    None, "--symbol", help="Symbol of a single-symbol bar file (Yahoo layout)."
)
COLUMNS_OPTION = typer.Option(
    None, "--columns", help="Map file columns to fields: 'px=price,qty=size,ticker=symbol'."
)
SUSPICIOUS_OPTION = typer.Option(
    False, "--include-suspicious", help="Keep trades flagged suspicious."
)


class Adjust(StrEnum):
    """Corporate-action adjustment of a bar file that carries an adjusted close."""

    none = "none"
    splits = "splits"
    all = "all"


ADJUST_OPTION = typer.Option(
    Adjust.none, "--adjust",
    help="Bar files with an adjusted close (Yahoo's Adj Close): none (raw prices), splits "
    "(split-adjusted), all (splits and dividends); indicators follow the adjusted prices.",
)  # fmt: skip
DATASET_OPTION = typer.Option(
    None, "--dataset", metavar="NAME",
    help="Dataset the rows are stored under, apart from other runs' [default: simulator, "
    "the file's name, or the vendor; or MARKETPULSE_DATASET].",
)  # fmt: skip


def dataset_for(settings: Settings, given: str | None, default: str) -> str:
    """The dataset of a run: ``--dataset``, else the ``dataset`` setting, else ``default``.

    Raises:
        InputError: the name given is not a dataset name (one line naming where it was given).
    """
    from marketpulse.feeds.dataset import check_dataset

    if given is not None:
        return check_dataset(given, "--dataset")
    if settings.dataset:
        return check_dataset(settings.dataset, "dataset (MARKETPULSE_DATASET or the config file)")
    return default


def parse_intervals(value: str | None) -> tuple[str, ...] | None:
    """Parse ``--intervals "1m,4h,1d"`` into canonical names (``60m`` is ``1h``).

    Raises:
        InputError: a value is not an interval, or they cannot be built together
            (one line naming the value).
    """
    if not value:
        return None
    from marketpulse.timeframes import parse_intervals as parse

    try:
        return tuple(i.name for i in parse(v for v in value.split(",") if v.strip()))
    except ValueError as exc:
        raise InputError(f"--intervals: {exc}") from None


def file_feed(file: Path, reading: FileInput) -> FileReplay:
    """Open a replay file with the file options of ``replay``, ``produce`` and ``backfill``."""
    from marketpulse.feeds import FileReplay

    return FileReplay(
        file, format=reading.format.value if reading.format else None, symbol=reading.symbol,
        columns=parse_columns(reading.columns), include_suspicious=reading.include_suspicious,
        adjust=reading.adjust.value,
    )  # fmt: skip
