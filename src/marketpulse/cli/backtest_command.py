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
    parse_horizons,
    parse_indicators,
    rules_from,
    settings_from,
)
from marketpulse.cli.sink_options import lake_location
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat, print_record
from marketpulse.cli.storage_command import date_option

__all__ = ["backtest"]

#: The track record's columns a narrow terminal keeps first (the rest follow in order).
_FIRST_COLUMNS = ("rule", "horizon", "alerts", "hit_rate", "baseline_hit_rate", "p_value",
                  "mean_return_pct", "baseline_mean_return_pct", "with_return", "hit_low",
                  "hit_high", "baseline_hit_low", "baseline_hit_high")  # fmt: skip


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
    Rules that watch timeframes the dataset has no bars of are left out, named
    in one line. The table fits the terminal's width (COLUMNS), leaving out the
    least telling columns (named in one line); csv and json have them all.
    """
    import pyarrow as pa

    from marketpulse.analytics import Lake
    from marketpulse.analytics.backtest import BacktestScope
    from marketpulse.analytics.backtest import backtest as run_backtest
    from marketpulse.analytics.results import mark_percent

    settings = settings_from(
        config, lake=lake, rules=rules, indicators=parse_indicators(indicators)
    )
    scope = BacktestScope(
        dataset=dataset or settings.dataset or None,
        start=date_option(start, "--start") if start else None,
        end=date_option(end, "--end") if end else None,
        symbols=tuple(s.strip() for s in (symbols or "").split(",") if s.strip()),
        horizons=parse_horizons(horizons, "5,15,60"),
        baseline=baseline,
        seed=seed,
    )
    with Lake(lake_location(settings)) as opened:
        result = run_backtest(opened, rules_from(settings), scope, declared_indicators(settings))
    applied = len(set(result.record.column("rule").to_pylist())) - len(result.not_applied)
    print(
        f"backtest of dataset {result.dataset}: {result.bars:,} bars, {len(result.alerts):,} "
        f"alerts from {applied} rules; baseline "
        f"{baseline} random bars per alert (seed {seed})",
        file=sys.stderr,
    )
    record = result.record
    if result.not_applied:
        import pyarrow.compute as pc

        idle = [rule.name for rule in result.not_applied]
        record = record.filter(pc.invert(pc.is_in(record.column("rule"), pa.array(idle))))
        watched = ", ".join(
            f"{r.name} ({', '.join(r.intervals or ())})" for r in result.not_applied
        )
        print(f"not applied, as dataset {result.dataset} has no bars of the timeframes they "
              f"watch (it has {', '.join(result.timeframes)}): {watched}",
              file=sys.stderr)  # fmt: skip
    record = mark_percent(
        record, signed=("mean_return_pct", "baseline_mean_return_pct"),
        unsigned=("mean_abs_return_pct", "baseline_mean_abs_return_pct"),
    )  # fmt: skip
    print_record(record, format, output, _FIRST_COLUMNS)
