"""``marketpulse backtest``: a rules file's track record over the lake's history."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from marketpulse.cli.common import (
    CONFIG_OPTION,
    INDICATORS_OPTION,
    LAKE_OPTION,
    RULES_OPTION,
    declared_indicators,
    parse_indicators,
    rules_from,
    settings_from,
)
from marketpulse.cli.sink_options import lake_location
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat
from marketpulse.cli.storage_command import date_option
from marketpulse.exceptions import InputError

__all__ = ["backtest"]


def backtest(
    rules: str = RULES_OPTION,
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="The dataset to backtest over [default: MARKETPULSE_DATASET, else the lake's only "
        "one].",
    ),  # fmt: skip
    start: str = typer.Option(
        None, "--start", help="First date (UTC) whose alerts count, YYYY-MM-DD [default: all]."
    ),
    end: str = typer.Option(
        None, "--end", help="Last date (UTC) whose alerts count, YYYY-MM-DD [default: all]."
    ),
    symbols: str = typer.Option(None, "--symbols", help="Comma-separated symbols [default: all]."),
    horizons: str = typer.Option(
        "5,15,60",
        "--horizons",
        help="Bars after each alert to take its return at, comma-separated.",
    ),  # fmt: skip
    baseline: int = typer.Option(
        20,
        "--baseline",
        min=1,
        help="Random bars per alert for the baseline (same symbol and timeframe).",
    ),  # fmt: skip
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the baseline's random bars."),
    indicators: str = INDICATORS_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file."),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Evaluate alert rules over a dataset's history and report each rule's track record.

    The same indicator kernels and alert engine as the stream, over the lake's
    bars (the alerts are those the stream raises for them; stored alerts are
    left alone). Per rule and horizon: alerts, mean forward return, hit rate
    in the alert's direction with its 95% interval, and the same for random
    bars of the same symbols and timeframes, with the p-value of the difference.
    """
    from marketpulse.analytics import Lake, format_table
    from marketpulse.analytics.backtest import BacktestScope
    from marketpulse.analytics.backtest import backtest as run_backtest

    settings = settings_from(
        config, lake=lake, rules=rules, indicators=parse_indicators(indicators)
    )
    scope = BacktestScope(
        dataset=dataset or settings.dataset or None,
        start=date_option(start, "--start") if start else None,
        end=date_option(end, "--end") if end else None,
        symbols=tuple(s.strip() for s in (symbols or "").split(",") if s.strip()),
        horizons=_horizons(horizons),
        baseline=baseline,
        seed=seed,
    )
    with Lake(lake_location(settings)) as opened:
        result = run_backtest(opened, rules_from(settings), scope, declared_indicators(settings))
    print(
        f"backtest of dataset {result.dataset}: {result.bars:,} bars, {len(result.alerts):,} "
        f"alerts from {len(set(result.record.column('rule').to_pylist()))} rules; baseline "
        f"{baseline} random bars per alert (seed {seed})",
        file=sys.stderr,
    )
    format_table(result.record, format.value, output)


def _horizons(text: str) -> tuple[int, ...]:
    """``--horizons 5,15,60`` as bar counts."""
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"--horizons: expected whole numbers of bars such as 5,15,60, "
                         f"got {text!r}") from None  # fmt: skip
    if not values or min(values) < 1:
        raise InputError(f"--horizons: whole numbers of bars, at least 1, got {text!r}")
    return values
