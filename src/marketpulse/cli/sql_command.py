"""The ``sql`` and ``backfill`` commands."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from marketpulse.cli.common import (
    ADJUST_OPTION,
    COLUMNS_OPTION,
    CONFIG_OPTION,
    FORMAT_OPTION,
    INTERVALS_OPTION,
    LAKE_OPTION,
    LATENESS_OPTION,
    RULES_OPTION,
    SUSPICIOUS_OPTION,
    SYMBOL_OPTION,
    Adjust,
    FileFormat,
    console,
    file_feed,
    parse_intervals,
    processor_settings,
    rules_from,
    settings_from,
)
from marketpulse.exceptions import InputError

__all__ = ["FORMAT_OUTPUT_OPTION", "OutputFormat", "backfill", "sql"]


class OutputFormat(StrEnum):
    """How query results are written."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


FORMAT_OUTPUT_OPTION = typer.Option(
    OutputFormat.table, "--format", help="Output: table, csv, json or parquet."
)


def sql(
    query: str = typer.Argument(
        ..., help="DuckDB SQL over the views trades, bars, indicators, alerts, dlq."
    ),
    lake: str = LAKE_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
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
    result = run_query(settings.lake, query, s3=settings.s3)
    format_table(result, format.value, output)


def backfill(
    file: Path = typer.Option(
        None, "--file", help="Recompute from this file (else from the lake's trades)."
    ),
    format: FileFormat = FORMAT_OPTION,
    symbol: str = SYMBOL_OPTION,
    columns: str = COLUMNS_OPTION,
    include_suspicious: bool = SUSPICIOUS_OPTION,
    adjust: Adjust = ADJUST_OPTION,
    lake: str = LAKE_OPTION,
    rules: str = RULES_OPTION,
    intervals: str = INTERVALS_OPTION,
    lateness: float = LATENESS_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Recompute bars, indicators and alerts in batch, through the live kernels.

    The result replaces the lake's bars, indicators and alerts for the dates it
    covers; it equals what the live pipeline computes from the same input.
    """
    from marketpulse.analytics.backfill import backfill as run_backfill

    settings = settings_from(
        config, lake=lake, rules=rules, intervals=parse_intervals(intervals), lateness=lateness
    )
    if file is None and adjust != Adjust.none:
        raise InputError("backfill: --adjust applies to --file, not to the lake's trades")
    source = (
        file_feed(file, format, symbol, columns, include_suspicious, adjust)
        if file
        else settings.lake
    )
    result = run_backfill(source, settings.lake, processor_settings(settings), rules_from(settings))
    console.print(
        f"backfill done: ticks {result.ticks:,}, bars {result.bars:,}, indicator rows "
        f"{result.indicator_rows:,}, alerts {result.alerts:,}, rejected {result.rejected:,}"
    )
