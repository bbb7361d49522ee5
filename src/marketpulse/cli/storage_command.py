"""``marketpulse db`` (PostgreSQL schema) and ``marketpulse lake`` (lake maintenance)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from marketpulse.cli.common import CONFIG_OPTION, LAKE_OPTION, console, settings_from
from marketpulse.cli.sink_options import POSTGRES_URL_OPTION, lake_location, url_overrides
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat
from marketpulse.exceptions import ConfigError

__all__ = ["date_option", "db_app", "lake_app"]

db_app = typer.Typer(help="The PostgreSQL schema.", no_args_is_help=True, rich_markup_mode=None)
lake_app = typer.Typer(
    help="Inspect and maintain the Parquet lake (local or s3://).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@db_app.command("migrate")
def db_migrate(
    postgres_url: str = POSTGRES_URL_OPTION,
    dataset: str = typer.Option(
        "legacy",
        "--dataset",
        help="Dataset of the rows of an earlier MarketPulse's tables, which this converts.",
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Create or upgrade the PostgreSQL schema (versioned; running it again changes nothing).

    Tables bars, indicators, alerts and trades with primary keys on their
    natural keys, the view bars_with_indicators; TimescaleDB hypertables where
    that extension is installed. Tables of an earlier MarketPulse (columns
    interval, start, end, ts) are converted, their rows filed under --dataset.
    """
    from marketpulse.feeds.dataset import check_dataset
    from marketpulse.sinks import PostgresSink
    from marketpulse.sinks.postgres_schema import CONVERTS, MIGRATIONS, PG_TABLES

    check_dataset(dataset)
    settings = settings_from(config, **url_overrides(postgres_url, None))
    if not settings.postgres_url:
        raise ConfigError("db migrate needs --postgres-url (or MARKETPULSE_POSTGRES_URL)")
    sink = PostgresSink(settings.postgres_url, tables=tuple(PG_TABLES), convert=dataset)
    with sink:
        applied = sink.open().applied
    latest = MIGRATIONS[-1][0]
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to do"
    if applied and applied[0] > 1 and CONVERTS in applied:  # tables an earlier version made
        done += f"; the tables' rows were converted, under dataset {dataset}"
    console.print(f"{sink.where}: schema version {latest} ({done})", highlight=False,
                  soft_wrap=True)  # fmt: skip


def _store(lake: str | None, config: Path | None, old_layout: bool = False):  # noqa: ANN202
    """The lake's store (a sinks.lake_store.Store); refused if of the earlier layout."""
    from marketpulse.sinks.lake_store import open_store

    location = lake_location(settings_from(config, lake=lake))
    if not location.is_s3 and not location.exists():
        raise ConfigError(f"no lake at {location}: not a directory")
    return open_store(location, old_layout=old_layout)


@lake_app.command("ls")
def lake_ls(
    table: str = typer.Argument(None, help="List this table's partitions."),
    lake: str = LAKE_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Per table and dataset: partitions, files, rows and bytes; or one table's partitions."""
    from marketpulse.analytics import format_table
    from marketpulse.analytics.lake_admin import list_lake

    format_table(list_lake(_store(lake, config), table), format.value)


DATASET_OPTION = typer.Option(..., "--dataset", help="The dataset's name.")


@lake_app.command("datasets")
def lake_datasets(
    lake: str = LAKE_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """The lake's datasets: per table, partitions, files, rows, first and last time."""
    from marketpulse.analytics import format_table
    from marketpulse.analytics.lake_datasets import list_datasets

    format_table(list_datasets(_store(lake, config)), format.value)


lake_app.command("list", hidden=True)(lake_datasets)  # the same, by another name


@lake_app.command("drop")
def lake_drop(
    dataset: str = DATASET_OPTION,
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Remove every row of one dataset from every table (a table at a time, atomically)."""
    from marketpulse.analytics.lake_datasets import drop_dataset
    from marketpulse.feeds.dataset import check_dataset

    check_dataset(dataset)
    result = drop_dataset(_store(lake, config), dataset)
    console.print(
        f"dropped dataset {dataset}: {result.rows:,} rows in {result.files:,} files of "
        f"{result.tables} tables", highlight=False, soft_wrap=True,
    )  # fmt: skip


@lake_app.command("migrate")
def lake_migrate(
    dataset: str = typer.Option(
        "legacy", "--dataset", help="Dataset of the rows of the earlier layout."
    ),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Convert a lake of an earlier MarketPulse (date=YYYY-MM-DD partitions) in place.

    New files are written first, then the old ones removed; a migration that
    was stopped can be run again.
    """
    from marketpulse.analytics.lake_migrate import migrate
    from marketpulse.feeds.dataset import check_dataset

    check_dataset(dataset)
    result = migrate(_store(lake, config, old_layout=True), dataset)
    console.print(
        f"migrated {result.tables} tables to dataset {dataset}: {result.files_before:,} files"
        f" -> {result.files_after:,} ({result.rows:,} rows)", highlight=False, soft_wrap=True,
    )  # fmt: skip


@lake_app.command("compact")
def lake_compact(
    table: list[str] = typer.Option(
        None, "--table", help="Compact this table (repeatable) [default: all]."
    ),
    before: str = typer.Option(
        None,
        "--before",
        help="Compact periods that ended by this day (YYYY-MM-DD) [default: today, UTC].",
    ),
    min_files: int = typer.Option(
        2, "--min-files", min=2, help="Compact partitions with at least this many files."
    ),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Merge the small files of closed periods, atomically, losing and duplicating no row.

    Each partition becomes one file per Kafka source partition (named after the
    offsets it holds), one per replayed input (named after the input and its
    lines) plus one for the other rows. Hidden files of killed writers go too.
    """
    from marketpulse.analytics.lake_admin import compact

    until = date_option(before, "--before") if before else None
    result = compact(_store(lake, config), list(table or []) or None, until, min_files)
    console.print(
        f"compacted {result.partitions:,} partitions: {result.files_before:,} files -> "
        f"{result.files_after:,} ({result.rows:,} rows)", highlight=False, soft_wrap=True,
    )  # fmt: skip


@lake_app.command("ddl")
def lake_ddl(
    location: str = typer.Option(
        None,
        "--location",
        help="Where the lake is for the engine (s3://bucket/prefix) [default: the lake].",
    ),
    database: str = typer.Option("marketpulse", "--database", help="Athena/Glue database."),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Print CREATE EXTERNAL TABLE statements (Athena, Glue, Hive) matching the layout.

    Time columns are `timestamp`; partitions (dataset, timeframe, period) are
    projected, the timeframes being the configured intervals, `1d` and those in
    the lake. The indicators table has the default columns and the declared
    ones found in the lake's files. Queries name their dataset (`WHERE dataset
    = 'NAME'`). Ends with the view bars_with_indicators.
    """
    from marketpulse.analytics.lake_admin import external_table_ddl, lake_timeframes
    from marketpulse.analytics.sql import open_lake
    from marketpulse.sinks.lake_store import open_store

    settings = settings_from(config, lake=lake)
    timeframes = {*settings.intervals, "1d"}
    declared: list[str] = []
    lake_at = lake_location(settings)
    if lake_at.is_s3 or lake_at.exists():
        try:
            timeframes |= lake_timeframes(open_store(lake_at))
            with open_lake(lake_at) as con:
                declared = [row[0] for row in con.execute("DESCRIBE indicators").fetchall()]
        except OSError as exc:
            raise ConfigError(f"cannot list the lake at {lake_at}: {exc}") from None
    where = location or lake_at.root
    scheme, _, rest = where.partition("://")
    if rest and scheme != "s3" or scheme == "s3" and not rest.strip("/"):
        raise ConfigError(f"--location: expected s3://bucket/prefix or a directory, got {where!r}")
    if not where.startswith("s3://"):
        where = Path(where).resolve().as_uri()
    declared = [name for name in declared if name != "period"]
    print(external_table_ddl(where, database, sorted(timeframes), declared), end="")


def date_option(text: str, option: str) -> date:
    """Parse a YYYY-MM-DD option value."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option}: expected a date YYYY-MM-DD, got {text!r}") from None
