"""The ``sql`` and ``backfill`` commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from marketpulse.cli.common import (
    CONFIG_OPTION,
    LAKE_OPTION,
    console,
    parse_columns,
    processor_settings,
    rules_from,
    settings_from,
)

__all__ = ["backfill", "sql"]


class OutputFormat(StrEnum):
    """How query results are written."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def sql(
    query: str = typer.Argument(
        ..., help="DuckDB SQL over the views trades, bars, indicators, alerts, dlq."
    ),
    lake: str = LAKE_OPTION,
    format: OutputFormat = typer.Option(
        OutputFormat.table, "--format", help="Output: table, csv, json or parquet."
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write to this file (required for parquet)."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Run SQL over the lake.

    Each view has its table's columns plus `date` (from the partition path), so
    `WHERE date = '2013-10-07'` reads only that day's files. Example:

        marketpulse sql "SELECT symbol, count(*) FROM bars WHERE interval = '1m' GROUP BY 1"
    """
    from marketpulse.analytics import format_table
    from marketpulse.analytics import query as run_query

    settings = settings_from(config, lake=lake)
    result = run_query(settings.lake, query)
    format_table(result, format.value, output)


def backfill(
    file: Path = typer.Option(
        None, "--file", help="Recompute from this file (else from the lake's trades)."
    ),
    format: str = typer.Option(
        None, "--format", help="File kind: trades or bars (default: detected)."
    ),
    symbol: str = typer.Option(None, "--symbol", help="Symbol of a single-symbol bar file."),
    columns: str = typer.Option(
        None, "--columns", help="Map file columns to fields: 'px=price,qty=size'."
    ),
    include_suspicious: bool = typer.Option(
        False, "--include-suspicious", help="Keep trades flagged suspicious."
    ),
    lake: str = LAKE_OPTION,
    rules: str = typer.Option(
        None, "--rules", help="Alert rules file (default: the built-in rules)."
    ),
    intervals: str = typer.Option(
        None, "--intervals", help="Bar intervals, comma-separated [default: 1s,1m,5m]."
    ),
    lateness: float = typer.Option(
        None, "--lateness", help="Allowed lateness, seconds [default: 0.5]."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Recompute bars, indicators and alerts in batch, through the live kernels.

    The result replaces the lake's bars, indicators and alerts for the dates it
    covers; it equals what the live pipeline computes from the same input.
    """
    from marketpulse.analytics.backfill import backfill as run_backfill
    from marketpulse.feeds import FileReplay

    parsed = tuple(v.strip() for v in intervals.split(",")) if intervals else None
    settings = settings_from(config, lake=lake, rules=rules, intervals=parsed, lateness=lateness)
    source = (
        FileReplay(
            file,
            format=format,
            symbol=symbol,
            columns=parse_columns(columns),
            include_suspicious=include_suspicious,
        )  # fmt: skip
        if file
        else settings.lake
    )
    result = run_backfill(source, settings.lake, processor_settings(settings), rules_from(settings))
    console.print(
        f"backfill done: ticks {result.ticks:,}, bars {result.bars:,}, indicator rows "
        f"{result.indicator_rows:,}, alerts {result.alerts:,}, rejected {result.rejected:,}"
    )
