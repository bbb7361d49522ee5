"""``marketpulse verify``: nothing lost, nothing stored twice, in a lake or on the topics."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import (
    CONDITIONS_OPTION,
    CONFIG_OPTION,
    LAKE_OPTION,
    console,
    parse_intervals,
    settings_from,
)
from marketpulse.cli.kafka_options import BOOTSTRAP_OPTION, PREFIX_OPTION
from marketpulse.exceptions import InputError

if TYPE_CHECKING:
    from marketpulse.analytics.verify import Report, Stored
    from marketpulse.config import Settings

__all__ = ["verify"]


class VerifyFormat(StrEnum):
    """How the outcome is written."""

    table = "table"
    json = "json"


def verify(
    lake: str = LAKE_OPTION,
    dataset: str = typer.Option(
        None, "--dataset", metavar="NAME", help="Check this dataset only [default: every one]."
    ),
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    intervals: str = typer.Option(
        None,
        "--intervals",
        help="Intervals the bars should have, comma-separated (one missing altogether is then "
        "a violation) [default: the intervals stored].",
    ),  # fmt: skip
    conditions: str = CONDITIONS_OPTION,
    format: VerifyFormat = typer.Option(
        VerifyFormat.table, "--format", help="Output: table or json."
    ),
    config: Path = CONFIG_OPTION,
) -> None:
    """Check that every kept trade is in a bar or an open window, and no key is stored twice.

    Over a lake (--lake, as the other commands), or over the Kafka topics
    (--bootstrap-servers and/or --topic-prefix), read committed. Per dataset
    and timeframe, the bars' trade counts must equal the kept trades that
    belong in bars whose window has closed (trades past a symbol's newest
    bar are in open windows; late ones, auction prints the tape rules leave
    out and trades outside every session belong in none). Bars and
    indicators are keyed by dataset, symbol, timeframe and bar start, alerts
    by id, trades by the input lines or offsets their lake file holds. Exit
    code 0 when all holds, 1 with a line per violation.
    """
    from marketpulse.analytics.verify import verify as check
    from marketpulse.analytics.verify_rules import BarRules

    kafka = bootstrap_servers is not None or topic_prefix is not None
    if kafka and lake is not None:
        raise InputError("verify: --lake or --bootstrap-servers/--topic-prefix, not both")
    settings = settings_from(
        config, lake=lake, conditions=conditions,
        **{"kafka.bootstrap": bootstrap_servers, "kafka.topic_prefix": topic_prefix},
    )  # fmt: skip
    stored = _from_kafka(settings, dataset) if kafka else _from_lake(settings, dataset)
    rules = BarRules(settings.conditions, settings.session_calendar, settings.session_tz)
    wanted = parse_intervals(intervals)
    report = check(stored, rules, list(wanted) if wanted else None)
    if format == VerifyFormat.json:
        console.print_json(json.dumps(_as_json(report)))
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(1)


def _from_lake(settings: Settings, dataset: str | None) -> Stored:
    from marketpulse.analytics.verify_lake import read_lake
    from marketpulse.cli.sink_options import lake_location

    return read_lake(lake_location(settings), dataset)


def _from_kafka(settings: Settings, dataset: str | None) -> Stored:
    from marketpulse.analytics.verify import only_dataset
    from marketpulse.analytics.verify_kafka import read_topics
    from marketpulse.cli.kafka_options import open_bus

    bus, topics = open_bus(settings)  # one line, exit 2, when Kafka cannot be reached
    try:
        stored = read_topics(bus, topics)
    finally:
        bus.close()
    return stored if dataset is None else only_dataset(stored, dataset)


def _print(report: Report) -> None:
    import pyarrow as pa

    from marketpulse.analytics import format_table

    totals = report.totals
    console.print(
        f"{report.where}: trades {totals['trades']:,}, bars {totals['bars']:,}, indicator rows "
        f"{totals['indicators']:,}, alerts {totals['alerts']:,}, dlq {totals['dlq']:,}",
        highlight=False,
    )
    if report.rows:
        format_table(pa.Table.from_pylist([_row(r) for r in report.rows]), "table")
    for dataset, reasons in sorted(report.dlq.items()):
        text = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items()))
        console.print(f"dlq of {dataset}: {text}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    for line in report.violations:
        console.print(f"violation: {line}", highlight=False)
    if report.ok:
        console.print("verify: OK: every kept trade is in a bar or an open window; no key is "
                      "stored twice", highlight=False)  # fmt: skip
    else:
        n = len(report.violations)
        console.print(f"verify: FAILED: {n} violation{'s' * (n != 1)}", highlight=False)


def _row(row: object) -> dict:
    from dataclasses import asdict

    fields = asdict(row)  # type: ignore[call-overload]
    fields["not in bars"] = fields.pop("not_for_bars")
    fields["in bars"] = fields.pop("in_bars")
    order = ("dataset", "timeframe", "trades", "in bars", "open", "not in bars", "missing",
             "extra", "duplicates")  # fmt: skip
    return {name: fields[name] for name in order}


def _as_json(report: Report) -> dict:
    from dataclasses import asdict

    return {
        "ok": report.ok,
        "where": report.where,
        "totals": report.totals,
        "timeframes": [asdict(r) for r in report.rows],
        "dlq": report.dlq,
        "violations": report.violations,
        "notes": report.notes,
    }
