"""What a lake can tell of one dataset without a running pipeline.

Per table (bars, indicators, alerts, trades, quotes, dlq): its rows, the time
span they cover, its files and when they were last written; and the dead
letters counted by reason. The pipeline page shows this when the dashboard
only reads the lake (no live rates exist then), and beside the live figures
otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from marketpulse.serve.records import iso_time, to_records
from marketpulse.sinks.lake_location import LakeLocation

__all__ = ["TABLE_TIMES", "summarize"]

#: Each table and the columns its time span is read from (first, last).
TABLE_TIMES = {
    "bars": ("bar_start", "bar_end"),
    "indicators": ("bar_start", "bar_end"),
    "alerts": ("bar_end", "bar_end"),
    "trades": ("ts", "ts"),
    "quotes": ("ts", "ts"),
    "dlq": ("ts", "ts"),
}

Query = Callable[[str, list[Any]], pa.Table]


def summarize(query: Query, location: LakeLocation, dataset: str) -> dict[str, Any]:
    """Return one dataset's tables (rows, first, last, files, written) and dead-letter reasons.

    Args:
        query: runs SQL with ``$1`` bound to the dataset, over the lake's views.
        location: the lake, whose files are counted.
        dataset: the dataset.
    """
    parts = [
        f"SELECT '{table}' AS name, count(*) AS rows, min({first}) AS first, "  # noqa: S608
        f"max({last}) AS last FROM {table} WHERE dataset = $1"
        for table, (first, last) in TABLE_TIMES.items()
    ]
    counted = {row["name"]: row for row in to_records(query(" UNION ALL ".join(parts), [dataset]))}
    tables = []
    for table in TABLE_TIMES:
        directory = f"{table}/dataset={dataset}"
        files = location.files(directory, ".parquet") if location.exists() else []
        written = location.newest_change(directory) if files else 0
        row = counted.get(table, {})
        tables.append({
            "table": table, "rows": row.get("rows", 0), "first": row.get("first"),
            "last": row.get("last"), "files": len(files),
            "written": iso_time(written) if written else None,
        })  # fmt: skip
    reasons = query(
        "SELECT reason, count(*) AS count FROM dlq WHERE dataset = $1 "
        "GROUP BY reason ORDER BY count DESC, reason",
        [dataset],
    )
    return {"dataset": dataset, "tables": tables, "dead_letter_reasons": to_records(reasons)}
