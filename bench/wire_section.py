"""The text of the wire section: why the Kafka wire keeps integer epoch times."""

from __future__ import annotations

from typing import Any

from section_text import measured, out


def render_wire(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    wire = out(run, "bench_wire_times")
    cost = wire["iso_seconds"] / wire["int_seconds"]
    return f"""## Times on the Kafka wire (`bench/bench_wire_times.py`)

{measured(run)}

Wherever people read times (the lake, SQL, PostgreSQL, JSON/CSV output, the REST API)
they are timestamp types or ISO-8601 text. On the Kafka wire they stay integer epoch
nanoseconds, because text times cost measurably: {wire["trades"]:,} real trades (the Lean
day) encoded as `ticks` records and decoded back with msgspec, best of {wire["repeat"]} runs.

| time on the wire | seconds | records/s | bytes per record |
|---|---:|---:|---:|
| integer epoch ns (`"ts":1381132800464000000`) | {wire["int_seconds"]:.3f} | {wire["int_per_s"]:,} | {wire["int_bytes"]:.1f} |
| RFC 3339 text (`"ts":"2013-10-07T08:00:00.464000000Z"`) | {wire["iso_seconds"]:.3f} | {wire["iso_per_s"]:,} | {wire["iso_bytes"]:.1f} |

Text times take {cost:.1f} times as long to encode and decode, and make each record
{wire["iso_bytes"] / wire["int_bytes"] - 1:.0%} larger.
"""
