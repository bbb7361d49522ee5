"""``marketpulse db`` (PostgreSQL schema) and ``marketpulse lake`` (lake maintenance)."""

from __future__ import annotations

from pathlib import Path

import typer

from marketpulse.cli.common import CONFIG_OPTION, console, settings_from
from marketpulse.cli.sink_options import POSTGRES_URL_OPTION, url_overrides
from marketpulse.exceptions import ConfigError

__all__ = ["db_app", "lake_app"]

db_app = typer.Typer(help="The PostgreSQL schema.", no_args_is_help=True, rich_markup_mode=None)
lake_app = typer.Typer(
    help="Inspect and maintain the Parquet lake (local or s3://).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@db_app.command("migrate")
def db_migrate(
    postgres_url: str = POSTGRES_URL_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Create or upgrade the PostgreSQL schema (versioned; running it again changes nothing).

    Tables bars, indicators, alerts and trades with primary keys on their
    natural keys; TimescaleDB hypertables where that extension is installed.
    """
    from marketpulse.sinks import PostgresSink
    from marketpulse.sinks.postgres_schema import MIGRATIONS

    settings = settings_from(config, **url_overrides(postgres_url, None))
    if not settings.postgres_url:
        raise ConfigError("db migrate needs --postgres-url (or MARKETPULSE_POSTGRES_URL)")
    sink = PostgresSink(settings.postgres_url, tables=("bars", "indicators", "alerts", "trades"))
    with sink:
        applied = sink.open().applied
    latest = MIGRATIONS[-1][0]
    done = f"applied {', '.join(map(str, applied))}" if applied else "nothing to do"
    console.print(f"{sink.where}: schema version {latest} ({done})", highlight=False,
                  soft_wrap=True)  # fmt: skip
