"""Options of the commands that write to (or read from) storage, and the sinks they build."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from marketpulse.assemble import lake_location
from marketpulse.config import Secret, Settings
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from marketpulse.sinks import Sink

__all__ = [
    "INFLUX_URL_OPTION",
    "POSTGRES_TABLES_OPTION",
    "POSTGRES_URL_OPTION",
    "SINK_OPTION",
    "SinkKind",
    "build_sink",
    "build_sinks",
    "lake_location",
    "url_overrides",
]


class SinkKind(StrEnum):
    """Where the pipeline's tables can be stored."""

    lake = "lake"
    postgres = "postgres"
    influx = "influx"


SINK_OPTION = typer.Option(
    None,
    "--sink",
    help="Store the tables here: lake, postgres or influx; repeat for several [default: lake].",
)
POSTGRES_URL_OPTION = typer.Option(
    None,
    "--postgres-url",
    help="PostgreSQL URL, postgresql://user:password@host:5432/database "
    "[default: MARKETPULSE_POSTGRES_URL]; the password is never printed.",
    show_default=False,
)
INFLUX_URL_OPTION = typer.Option(
    None,
    "--influx-url",
    help="InfluxDB URL with the database (or bucket) as path, http://host:8086/market "
    "[default: MARKETPULSE_INFLUX_URL].",
    show_default=False,
)
POSTGRES_TABLES_OPTION = typer.Option(
    None,
    "--postgres-tables",
    help="Tables stored in PostgreSQL, comma-separated [default: bars,indicators,alerts,custom,"
    "predictions (custom: plugins' values; predictions: --forecast models'); add trades for "
    "every trade].",
)


def url_overrides(postgres_url: str | None, influx_url: str | None) -> dict[str, object]:
    """Settings overrides for the URL options (kept secret: they may hold a password)."""
    return {
        "postgres_url": Secret(postgres_url) if postgres_url else None,
        "influx_url": Secret(influx_url) if influx_url else None,
    }


def build_sink(
    kind: SinkKind | str,
    settings: Settings,
    *,
    lake_rows: int | None = None,
    max_age_s: float | None = None,
    postgres_tables: str | None = None,
) -> Sink:
    """Build (and for databases, open: connect, migrate, check) one sink.

    Raises:
        ConfigError: the sink's URL is not set.
        SinkError: the database cannot be reached or its tables differ.
    """
    # each sink's module alone: the database ones load their clients (psycopg, httpx)
    age = {} if max_age_s is None else {"max_age_s": max_age_s}
    if kind == SinkKind.lake:
        from marketpulse.sinks import LakeSink

        rows = {"max_rows": lake_rows} if lake_rows else {}
        return LakeSink(lake_location(settings), **rows, **age)
    if kind == SinkKind.postgres:
        if not settings.postgres_url:
            raise ConfigError("--sink postgres needs --postgres-url (or MARKETPULSE_POSTGRES_URL)")
        from marketpulse.sinks import PostgresSink

        tables = _tables(postgres_tables)
        return PostgresSink(settings.postgres_url, **tables, **age,
                            retry_s=settings.storage_retry).open()  # fmt: skip
    if kind == SinkKind.influx:
        if not settings.influx_url:
            raise ConfigError("--sink influx needs --influx-url (or MARKETPULSE_INFLUX_URL)")
        from marketpulse.sinks import InfluxSink

        try:
            sink = InfluxSink(settings.influx_url, **age, retry_s=settings.storage_retry)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return sink.open()
    raise ConfigError(f"unknown sink {kind!r} (known: {', '.join(SinkKind)})")


def _tables(spec: str | None) -> dict[str, tuple[str, ...]]:
    if not spec:
        return {}
    from marketpulse.sinks.postgres_schema import PG_TABLES

    tables = tuple(t.strip() for t in spec.split(",") if t.strip())
    unknown = [t for t in tables if t not in PG_TABLES]
    if unknown:
        raise ConfigError(
            f"--postgres-tables: unknown table {unknown[0]!r} (known: {', '.join(PG_TABLES)})"
        )
    return {"tables": tables}


def build_sinks(
    kinds: list[SinkKind] | None,
    settings: Settings,
    lake_rows: int,
    postgres_tables: str | None = None,
) -> tuple[Sink, ...]:
    """Build the sinks of a repeated ``--sink`` option (the lake when none is given).

    Raises:
        ConfigError, SinkError: as :func:`build_sink`; sinks already built are closed.
    """
    built: list[Sink] = []
    try:
        for kind in dict.fromkeys(kinds or [SinkKind.lake]):  # each once, in order
            built.append(build_sink(kind, settings, lake_rows=lake_rows,
                                    postgres_tables=postgres_tables))  # fmt: skip
    except BaseException:
        for sink in built:
            sink.close()
        raise
    return tuple(built)
