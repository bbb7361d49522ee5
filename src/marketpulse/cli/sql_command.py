"""The ``sql`` and ``backfill`` commands."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli import options
from marketpulse.cli.common import (
    CONFIG_OPTION,
    LAKE_OPTION,
    Adjust,
    console,
    err_console,
    file_feed,
    processor_settings,
    rules_from,
    settings_from,
)
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.sink_options import lake_location
from marketpulse.exceptions import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from marketpulse.analytics import Lake

__all__ = ["FORMAT_OUTPUT_OPTION", "OutputFormat", "backfill", "print_record", "sql"]


class OutputFormat(StrEnum):
    """How query results are written."""

    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


FORMAT_OUTPUT_OPTION = typer.Option(
    OutputFormat.table, "--format", help="Output: table, csv, json or parquet."
)


def print_record(
    record: pa.Table, format: OutputFormat, output: Path | None, first: Sequence[str]
) -> None:
    """Write a track record; a table for the terminal keeps the ``first`` columns that fit.

    The columns left out to fit the terminal's width are named in one line on
    standard error; CSV, JSON, Parquet and a file keep them all.
    """
    from marketpulse.analytics import format_table
    from marketpulse.analytics.results import fit_columns

    if format == OutputFormat.table and output is None:
        width = shutil.get_terminal_size().columns
        record, dropped = fit_columns(record, width, first)
        if dropped:
            print(f"{len(dropped)} columns left out to fit {width} characters: "
                  f"{', '.join(dropped)} (--format csv or json has them all)",
                  file=sys.stderr)  # fmt: skip
    format_table(record, format.value, output)


def sql(
    query: str = typer.Argument(
        ...,
        help="DuckDB SQL over the views trades, quotes, bars, indicators, alerts, dlq and "
        "bars_with_indicators.",
    ),
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="Read this dataset's rows alone, in every table the query reads "
        "[default: all datasets, with a note on standard error when the query mixes several].",
    ),
    lake: str = LAKE_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = typer.Option(
        None, "--output", "-o", help="Write to this file (required for parquet)."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Run SQL over the lake.

    Each view has its table's columns, with dataset, timeframe and period (the
    first day of the partition) from the partition path, so `WHERE dataset =
    'indexProcessed'` or `WHERE period = '2013-10-07'` reads only those files.
    --dataset NAME scopes every view to one dataset. A query that reads tables
    holding several datasets and names no dataset column gets a note on
    standard error naming them. Times are written as ISO 8601 UTC text, alert
    details as JSON objects. Example:

        marketpulse sql --dataset lean-2013-10-07-trades "SELECT symbol, count(*) FROM bars WHERE timeframe = '1m' GROUP BY 1"
    """  # noqa: E501
    from marketpulse.analytics import Lake, format_table
    from marketpulse.analytics.sql_scope import mixed_datasets
    from marketpulse.models import is_dataset_name

    settings = settings_from(config, lake=lake)
    if dataset is not None and not is_dataset_name(dataset):  # feeds.dataset's rule, without
        raise InputError(  # loading the feeds (pandas): sql stays quick to start
            f"--dataset: {dataset!r} is not a dataset name (1 to 64 letters, digits, '.', '_' "
            "or '-', beginning with a letter or digit)"
        )
    with Lake(lake_location(settings), dataset=dataset) as opened:
        _check_known(opened)
        result = opened.query(query)
        mixed = mixed_datasets(opened, query)
    if mixed:  # on standard error: piped CSV or JSON stays clean
        err_console.print(
            f"note: the tables this query reads hold {len(mixed)} datasets "
            f"({', '.join(mixed)}) and it names none of them: its rows may mix them; "
            "add --dataset NAME to read one (or WHERE dataset = ...)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    format_table(result, format.value, output)


def _check_known(lake: Lake) -> None:
    """Stop if the lake's scope (``--dataset``) is not one of its datasets (naming them)."""
    if lake.dataset is None:
        return
    from marketpulse.analytics.lake_datasets import dataset_names

    lake.connection  # noqa: B018 - opening it says first when there is no lake
    known = dataset_names(lake.store)
    if lake.dataset not in known:
        held = ", ".join(known) if known else "none"
        raise InputError(f"--dataset: no dataset {lake.dataset!r} in the lake (it holds: {held})")


@grouped
def backfill(
    file: Path = typer.Option(
        None, "--file", help="Recompute from this file (else from the lake's trades)."
    ),
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="Dataset to recompute: its trades in the lake are read, its bars, indicators "
        "and alerts replaced [default: the lake's only dataset; with --file, the file's name].",
    ),
    reading: options.FileInput = options.FileInput(),
    lake: options.Lake = None,
    processing: options.Processing = options.Processing(),
    config: options.Config = None,
) -> None:
    """Recompute one dataset's bars, indicators and alerts in batch, through the live kernels.

    The result replaces every bar, indicator and alert of that dataset (other
    datasets are left alone); it equals what the live pipeline computes from
    the same input. A lake holding several datasets needs --dataset.
    """
    from marketpulse.analytics.backfill import backfill as run_backfill
    from marketpulse.cli.common import dataset_for
    from marketpulse.feeds.dataset import file_dataset

    settings = options.overlay(backfill, locals())
    if file is None and reading.adjust != Adjust.none:
        raise InputError("backfill: --adjust applies to --file, not to the lake's trades")
    location = lake_location(settings)
    source = file_feed(file, reading) if file else location
    # with --file: the file's name; from the lake: None, the lake's only dataset
    name = dataset_for(settings, dataset, file_dataset(file) if file else "") or None
    result = run_backfill(
        source, location, processor_settings(settings), rules_from(settings), dataset=name
    )
    console.print(
        f"backfill of dataset {result.dataset} done: ticks {result.ticks:,}, bars "
        f"{result.bars:,}, indicator rows {result.indicator_rows:,}, alerts {result.alerts:,}, "
        f"rejected {result.rejected:,}",
        soft_wrap=True,
    )
    damage = getattr(source, "damage", None)
    if damage:  # as replay: the rows before the damage are stored, the file was not whole
        from marketpulse.cli.app import _fail

        _fail("; ".join(str(d) for d in damage), 1)
