"""Compare what the lake sink and the PostgreSQL sink stored from the same topics.

Run inside the marketpulse image, on the compose network, by ``stack_smoke.sh``:
the lake volume mounted at ``LAKE`` (default ``/data/lake``), PostgreSQL at
``MARKETPULSE_POSTGRES_URL``. For each of bars, indicators and alerts it reads
every row from both stores (the columns they share; times as microseconds,
NaN and NULL alike) and prints one line of counts. Exit status 0 when both
stores hold the same rows and at least one bar, 1 when they differ (the first
differing rows are printed), 2 when a store cannot be read yet.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from pathlib import Path

import duckdb
import psycopg

TABLES = ("bars", "indicators", "alerts")
#: Columns that only one store has, or that name where a row lives.
SKIP = {"dataset", "period"}


def normal(value: object) -> object:
    """One form per value in both stores: times in microseconds, NaN as None."""
    if isinstance(value, dt.datetime):
        return round(value.timestamp() * 1_000_000)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str) and value.startswith("{"):
        value = json.loads(value)  # the lake's JSON text, PostgreSQL's jsonb
    if isinstance(value, dict):
        return repr(sorted(value.items()))
    return value


def lake_rows(lake: Path, table: str) -> tuple[list[str], set[tuple]]:
    """Every row of a lake table (no rows when the table has no file yet)."""
    if not any((lake / table).rglob("*.parquet")):
        return [], set()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    source = f"read_parquet('{lake / table}/**/*.parquet', hive_partitioning = true)"
    rel = con.sql(f"SELECT * FROM {source}")
    names = [n for n in rel.columns if n not in SKIP]
    kinds = dict(zip(rel.columns, rel.types, strict=True))
    # times as epoch microseconds in SQL: DuckDB's Python times need pytz
    cols = [
        f"epoch_us(CAST({n} AS TIMESTAMPTZ))" if "TIMESTAMP" in str(kinds[n]) else n for n in names
    ]
    rows = con.sql(f"SELECT {', '.join(cols)} FROM {source}").fetchall()  # noqa: S608
    return names, {tuple(normal(v) for v in row) for row in rows}


def pg_rows(url: str, table: str, names: list[str]) -> set[tuple]:
    """Every row of a PostgreSQL table, in the lake's column order."""
    with psycopg.connect(url) as conn:
        have = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
            )
        }
        missing = [n for n in names if n not in have]
        if missing:
            raise SystemExit(f"compare_stores: PostgreSQL {table} has no column {missing[0]}")
        cols = ", ".join(names)
        rows = conn.execute(f"SELECT {cols} FROM {table}").fetchall()  # noqa: S608
    return {tuple(normal(v) for v in row) for row in rows}


def main() -> int:
    """Compare the stores; the exit status says whether they agree."""
    lake = Path(os.environ.get("LAKE", "/data/lake"))
    url = os.environ["MARKETPULSE_POSTGRES_URL"]
    counts = []
    same = True
    bars = 0
    for table in TABLES:
        try:
            names, in_lake = lake_rows(lake, table)
            in_pg = pg_rows(url, table, names) if names else set()
        except (duckdb.Error, psycopg.Error) as exc:
            print(f"compare_stores: {table}: {exc}".splitlines()[0], file=sys.stderr)
            return 2
        counts.append(f"{table} lake {len(in_lake)} postgres {len(in_pg)}")
        if table == "bars":
            bars = len(in_lake)
        if in_lake != in_pg:
            same = False
            for label, rows in (("lake only", in_lake - in_pg), ("postgres only", in_pg - in_lake)):
                for row in sorted(rows, key=repr)[:3]:
                    print(f"compare_stores: {table} {label}: {row}", file=sys.stderr)
    print("; ".join(counts))
    return 0 if same and bars > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
