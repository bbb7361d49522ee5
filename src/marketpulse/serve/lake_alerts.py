"""The alerts' filters as SQL, and the alerts counted by rule (the alerts page's count).

The filters (dataset, symbol, rule, severity, when the alert's bar ended) are
parameters, never SQL text; the count is the lake's, whatever a page reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from marketpulse.serve.records import to_records

__all__ = ["alert_filter", "count_alerts"]


def alert_filter(
    dataset: str,
    symbol: str | None,
    rule: str | None,
    severity: str | None,
    start: int | None,
    end: int | None,
) -> tuple[str, list[Any]]:
    """Return the WHERE clause (``?`` placeholders) and parameters of the alerts' filters.

    ``start`` and ``end`` (UTC ns) bound the end of the alert's bar: ``[start, end)``.
    """
    where = ["dataset = ?"]
    params: list[Any] = [dataset]
    for column, value in (("symbol", symbol), ("rule", rule), ("severity", severity)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if start is not None:
        where.append("epoch_ns(bar_end) >= ?")
        params.append(start)
    if end is not None:
        where.append("epoch_ns(bar_end) < ?")
        params.append(end)
    return " AND ".join(where), params


def count_alerts(
    query: Callable[[str, list[Any]], pa.Table],
    dataset: str,
    symbol: str | None,
    rule: str | None,
    severity: str | None,
    start: int | None,
    end: int | None,
) -> dict[str, Any]:
    """Count a dataset's alerts matching every filter, and per rule those matching the others.

    Returns ``{"count": n, "by_rule": [{"rule": ..., "count": ...}, ...]}``, the
    rules by name; ``by_rule`` leaves the ``rule`` filter out, so it lists every
    rule a page could filter by.
    """
    where, params = alert_filter(dataset, symbol, None, severity, start, end)
    table = query(
        f"SELECT rule, count(*) AS count FROM alerts WHERE {where} GROUP BY rule ORDER BY rule",
        params,
    )
    by_rule = to_records(table)
    count = sum(r["count"] for r in by_rule if rule is None or r["rule"] == rule)
    return {"count": count, "by_rule": by_rule}
