"""The Kafka latency floor section: ``bench_kafka_latency.py --engine relay``, no analytics."""

from __future__ import annotations

from typing import Any

from kafka_section import MIN_CLOSES_FOR_P99, TARGETS, _ms, warm_up_sentence
from results import history as saved_runs
from section_text import measured, out, verdict

#: Issue 38: the service's p99 at most this many times the relay's, per guarantee.
RATIO_TARGETS = {"exactly-once": 1.5, "at-least-once": 1.3}


def _row(r: dict[str, Any]) -> str:
    whole = r["with_start_up"]
    return (
        f"| {r['guarantee']} | {r['rate']:,.0f} | {r['produced_per_s']:,.0f} | "
        f"{whole['samples']:,} ({whole['bar_closes']:,}) | {_ms(whole['p50_ms'])} | "
        f"{_ms(whole['p99_ms'])} | {_ms(whole['max_ms'])} | "
        f"{_ms(r['to_service_produce_p50_ms'])} / {_ms(r['to_service_produce_p99_ms'])} | "
        f"{r['service_cpu_share']:.2f} |"
    )


def _against(floor: dict[str, Any]) -> str:
    """Each latency target of issue 24 beside the relay's p99 at the same rate and guarantee."""
    lines = []
    for (guarantee, rate), limit in TARGETS.items():
        found = [r for r in floor["rates"] if r["rate"] == rate and r["guarantee"] == guarantee]
        what = f"{guarantee}, p99 at most {limit:g} ms at {rate:,} ticks/s"
        if not found:
            lines.append(f"- {what}: the relay was not run")
            continue
        whole = found[0]["with_start_up"]
        figure = f"the relay's p99 {_ms(whole['p99_ms'])} ms over {whole['bar_closes']:,} closes"
        if whole["bar_closes"] < MIN_CLOSES_FOR_P99:
            lines.append(f"- {what}: not judged ({figure}; fewer than {MIN_CLOSES_FOR_P99:,})")
        elif whole["p99_ms"] > limit:
            lines.append(f"- {what}: below the floor ({figure}, with no analytics at all)")
        else:
            lines.append(f"- {what}: within reach of these clients ({figure})")
    return "\n".join(lines)


def _ratios(floor_run: dict[str, Any]) -> str:
    """Issue 38's targets: the Kafka section's service p99 over this relay's, rate by rate.

    The service's figures are those of the Kafka section's saved run measured last
    before this one (the sections run one after the other); both times are given.
    """
    before = [r for r in saved_runs("kafka") if r["measured_at"] <= floor_run["measured_at"]]
    if not before:
        return ""
    service_run = before[-1]
    service = out(service_run, "bench_kafka_latency")
    floor = out(floor_run, "bench_kafka_floor")
    lines = []
    for guarantee, limit in RATIO_TARGETS.items():
        for rate in (10_000, 100_000):
            pick = [
                [r for r in runs["rates"]
                 if r["rate"] == rate and r.get("guarantee", "exactly-once") == guarantee
                 and "with_start_up" in r]
                for runs in (service, floor)
            ]  # fmt: skip
            what = f"{guarantee} at {rate:,} ticks/s, p99 at most {limit:g}x the relay's"
            if not all(pick):
                lines.append(f"- {what}: not judged (a run is missing)")
                continue
            if (service.get("broker_warmup_s") or 0) != (floor.get("broker_warmup_s") or 0):
                lines.append(f"- {what}: not judged (the brokers were warmed differently)")
                continue
            mine, relay = (found[0]["with_start_up"] for found in pick)
            if min(mine["bar_closes"], relay["bar_closes"]) < MIN_CLOSES_FOR_P99:
                lines.append(f"- {what}: not judged (fewer than {MIN_CLOSES_FOR_P99:,} closes)")
                continue
            ratio = mine["p99_ms"] / relay["p99_ms"]
            lines.append(
                f"- {what}: {verdict(ratio <= limit)} ({ratio:.2f}x: the service's "
                f"{_ms(mine['p99_ms'])} ms against the relay's {_ms(relay['p99_ms'])} ms)"
            )
    return (
        "\n\nIssue 38's targets, the service's p99 (the Kafka section, measured at "
        f"{service_run['measured_at']}) against this relay's (measured at "
        f"{floor_run['measured_at']}), start-up included:\n\n" + "\n".join(lines)
    )


def render_kafka_floor(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    floor = out(run, "bench_kafka_floor")
    rows = "\n".join(_row(r) for r in floor["rates"])
    seconds = floor["rates"][0]["seconds"] if floor["rates"] else 0
    return f"""## Kafka latency floor (`bench/bench_kafka_latency.py --engine relay`, `bench/kafka_relay.py`)

{measured(run)} Against {floor["broker"]}.

The latency runs of the Kafka section again, with `marketpulse process` replaced
by `bench/kafka_relay.py`: the same clients with the same settings (the
project's Kafka bus: the service's consumer and transactional producer; at
least once its producer with no linger), the same producer of trades
({floor["symbols"]} symbols, every {floor["send_period_ms"]:.0f} ms, linger {floor["linger_ms"]:g} ms), the same
`read_committed` reader, fresh topics, {seconds:.0f} s per run with start-up
included, and no analytics: it decodes each trade's symbol and time and, when a
partition's largest time reaches the end of a second, writes one row per symbol
traded in that second. Exactly once, the rows go with the consumer's offsets in a
transaction as soon as every partition with recent input has closed that
second (at most 20 ms after the first, the service's rule; no state, no commit
interval); at least once they are sent at once. Whatever an engine computes
comes on top of these figures: they are the floor of Kafka on this machine's
two cores, with these clients. {warm_up_sentence(floor)}

| guarantee | trades/s | produced/s | rows (closes) | p50 ms | p99 ms | max ms | until produced p50 / p99 ms | relay CPU (cores) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{rows}

Issue 24's latency targets beside this floor:

{_against(floor)}{_ratios(run)}

What sets it: a row reaches a `read_committed` reader after two trips through
the broker (the trade in, the row out), each a produce request and a fetch;
exactly once, the transaction adds the offsets' round trips to the group
coordinator (`AddOffsetsToTxn`, `TxnOffsetCommit`), `EndTxn`, and the
coordinator's commit markers, which the reader must see before the row is
readable. The Kafka section's breakdown times each of these stages in the
service.
"""
