"""Which datasets a query over the lake mixes.

Every lake table holds several datasets side by side (a replayed file, the
simulator, a live feed). A query that reads such tables and names no
``dataset`` column anywhere (no filter, no grouping, no column of its result)
puts rows of different datasets together unawares: :func:`mixed_datasets`
names those datasets, so ``marketpulse sql`` can say so and suggest
``--dataset``. A query that names ``dataset`` is taken as one that keeps them
apart (``WHERE dataset = ...``, ``GROUP BY dataset``).

Example::

    from marketpulse.analytics import Lake
    from marketpulse.analytics.sql_scope import mixed_datasets

    with Lake("data/lake") as lake:
        mixed_datasets(lake, "SELECT symbol, count(*) FROM bars GROUP BY 1")
"""

from __future__ import annotations

import duckdb

from marketpulse.analytics.sql import Lake
from marketpulse.sinks.lake_layout import ROW_SCHEMAS
from marketpulse.sinks.lake_location import LakeAccessError

__all__ = ["mixed_datasets", "tables_read"]

#: The lake's views over other views, by the tables they read.
_JOINED_VIEWS = {"bars_with_indicators": ("bars", "indicators")}

_PREFIX = "dataset="


def tables_read(sql: str) -> set[str]:
    """The lake tables ``sql`` names (the joined views by the tables they read)."""
    try:
        # the parser's names (a CTE's own name is left out); parsed on a connection
        # without the lake's views, so nothing is read or bound to files
        named = {n.lower() for n in duckdb.connect().get_table_names(sql)}
    except duckdb.Error:
        named = {token.lower() for token in _identifiers(sql)}
    tables = {t for t in named if t in ROW_SCHEMAS}
    for view, read in _JOINED_VIEWS.items():
        if view in named:
            tables.update(read)
    return tables


def mixed_datasets(lake: Lake, sql: str) -> list[str]:
    """The datasets ``sql`` reads together without naming ``dataset``, sorted; empty if none.

    Empty when the query names the ``dataset`` column, when the lake is opened
    for one dataset, or when the tables it reads hold one dataset between them.
    Only the lake's folders are listed: no file is read.
    """
    if lake.dataset is not None or "dataset" in {t.lower() for t in _identifiers(sql)}:
        return []
    names: set[str] = set()
    for table in tables_read(sql):
        try:
            folders = lake.store.directories(table)
        except (OSError, LakeAccessError):  # the note is a courtesy: the query's result stands
            return []
        names.update(d.removeprefix(_PREFIX) for d in folders if d.startswith(_PREFIX))
    return sorted(names) if len(names) > 1 else []


def _identifiers(sql: str) -> list[str]:
    """The identifiers of ``sql`` (unquoted), from DuckDB's tokenizer; none if it cannot."""
    try:
        tokens = duckdb.tokenize(sql)
    except duckdb.Error:
        return []
    ends = [position for position, _ in tokens[1:]] + [len(sql)]
    return [
        sql[start:end].strip().strip('"')
        for (start, kind), end in zip(tokens, ends, strict=True)
        if kind == duckdb.token_type.identifier
    ]
