"""What a consumer of ``indicators`` sees: ``bench_kafka_latency.py --feed command``, bar end -> row."""

from __future__ import annotations

from typing import Any

from kafka_section import MIN_CLOSES_FOR_P99, _breakdown, _ms
from section_text import measured, out, verdict

#: Issue 38's targets for what a consumer sees, bar end -> row at a read_committed
#: consumer: p99 ms at most, per guarantee, at 10,000 ticks/s.
TARGETS = {"at-least-once": 40.0, "exactly-once": 100.0}
RATE = 10_000

#: The stage before the service's: a bar's end -> the trade that closes it.
FIRST_TICK = (
    "first_tick",
    "bar end -> the stamp of the trade that closes it (the lateness, then the first trade "
    "of the partition past it)",
)
#: The feed's stage, named for this run: the simulator delivers on its grid.
DELIVERY = (
    "trade's stamp -> broker append (the simulator's delivery grid, `produce`'s linger, request)"
)


def _with_first_tick(latency: dict[str, Any]) -> dict[str, Any]:
    """The run's stages with the first tick's wait in front, as :func:`_breakdown` reads them."""
    stages = {FIRST_TICK[0]: FIRST_TICK[1], **latency["stages"], "to_broker": DELIVERY}
    runs = []
    for r in latency["rates"]:
        first = r["from_bar_end"]["first_tick"]
        breakdown = {FIRST_TICK[0]: first, **r.get("breakdown", {})}
        runs.append({**r, "breakdown": breakdown})
    return {**latency, "stages": stages, "rates": runs}


def _row(r: dict[str, Any], lateness: str) -> str:
    end = r["from_bar_end"]
    first = end["first_tick"]
    return (
        f"| {r['guarantee']} | {lateness} | {r['produced_per_s']:,.0f} | "
        f"{end['samples']:,} ({end['bar_closes']:,}) | {_ms(end['p50_ms'])} | "
        f"{_ms(end['p99_ms'])} | {_ms(end['max_ms'])} | {_ms(first['p50_ms'])} / "
        f"{_ms(first['p99_ms'])} | {r['service_cpu_share']:.2f} |"
    )


def _verdicts(runs: list[tuple[dict[str, Any], str]], floor: dict[str, Any]) -> str:
    lines = []
    for guarantee, limit in TARGETS.items():
        relay = [r for r in floor["rates"] if r["guarantee"] == guarantee and r["rate"] == RATE]
        if not relay:
            beside = "; the relay was not run"
        else:
            floor_p99 = relay[0]["from_bar_end"]["p99_ms"]
            beside = f"; the relay's p99 with the same feed and reader: {_ms(floor_p99)} ms"
            if floor_p99 > limit:
                beside += ": the target is below this floor, which has no analytics at all"
        for r, lateness in runs:
            if r["guarantee"] != guarantee or r["rate"] != RATE:
                continue
            end = r["from_bar_end"]
            what = f"{guarantee}, lateness {lateness}: p99 at most {limit:g} ms at {RATE:,} ticks/s"
            figure = f"p99 {_ms(end['p99_ms'])} ms over {end['bar_closes']:,} bar closes{beside}"
            if end["bar_closes"] < MIN_CLOSES_FOR_P99:
                lines.append(f"- {what}: not judged ({figure}; fewer than {MIN_CLOSES_FOR_P99:,})")
            else:
                lines.append(f"- {what}: {verdict(end['p99_ms'] <= limit)} ({figure})")
    return "\n".join(lines) or "- not run"


def render_kafka_consumer(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    zero = out(run, "bench_kafka_consumer")
    default = out(run, "bench_kafka_consumer_defaults")
    floor = out(run, "bench_kafka_consumer_floor")
    late = f"{default['lateness_s']:g} s (the default)"
    runs = [(r, "0") for r in zero["rates"]] + [(r, late) for r in default["rates"]]
    rows = "\n".join(_row(r, lateness) for r, lateness in runs)
    floor_rows = "\n".join(_row(r, "0") for r in floor["rates"])
    seconds = zero["rates"][0]["seconds"] if zero["rates"] else 0
    return f"""## What a consumer sees on Kafka (`bench/bench_kafka_latency.py --feed command`)

{measured(run)} Against {zero["broker"]}.

What a user who subscribes to `indicators` waits for: from a bar's end to its
indicator row at their `read_committed` consumer (the client's defaults, a
process of its own). The commands run as a user types them, with their
defaults: `marketpulse produce --feed simulator --rate 10000` (50 symbols,
quotes too, each trade stamped with its arrival time on the wall clock and
delivered on the simulator's 25 ms grid, through the command's producer) and
`marketpulse process` (1s/1m/5m bars, 13 indicators, default alerts, commit
interval 0.1 s), under each `--guarantee`; the first rows with `--lateness 0`,
as the issue measured it, the others with the default lateness. Fresh topics,
{seconds:.0f} s per run from the first row, every row counted (start-up
included).

A bar `[S, E)` of a partition closes when the partition's largest trade stamp
reaches `E` + lateness: the first trade past it (read back from `ticks` after the
run; quotes move no bar). *First tick* is that wait, `E` to the closing trade's
stamp; the rest is the closing trade's path, as in the Kafka section.

| guarantee | lateness | trades/s | rows (bar closes) | bar end -> row p50 ms | p99 ms | max ms | first tick p50 / p99 ms | service CPU (cores) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{rows}

The floor, measured after them: the same commands feeding `ticks` and the same
reader, with `marketpulse process` replaced by `bench/kafka_relay.py` (the Kafka
latency floor section's relay: the service's clients and settings, no analytics;
it writes one row per symbol traded in a second when a trade of the partition
passes the second's end, so its rows close as the service's 1-second bars do
with lateness 0):

| engine: relay, guarantee | lateness | trades/s | rows (seconds closed) | bar end -> row p50 ms | p99 ms | max ms | first tick p50 / p99 ms | relay CPU (cores) |
|---|---|---:|---:|---:|---:|---:|---:|---:|
{floor_rows}

Against the targets of issue 38, bar end to the row at the consumer:

{_verdicts(runs, floor)}

Where the time goes, with lateness 0 (p50 / p99 ms of each stage, from the
service's trace as in the Kafka section; `to_broker` here starts at the
trade's stamp, so it holds the simulator's wait for its next delivery):

{_breakdown(_with_first_tick(zero))}

What sets the floor: the closing trade waits for the simulator's next delivery
(up to its 25 ms grid, in `to_broker`), then makes the two trips through the
broker every engine pays (the trade in, the row out: the Kafka latency floor
section); exactly once, the transaction's round trips to the coordinator and its
markers come on top. What the service adds to the relay is its work on the
closing poll (`process`: decoding the trades and quotes, closing the bars,
indicators and alert rules, encoding) and, exactly once, the state it writes
into each transaction (`offsets`).

With the default lateness, no row can come before {default["lateness_s"]:g} s after its bar's end:
the lateness is the time the service waits for trades that arrive out of order,
and a user who wants rows sooner sets `--lateness 0` (late trades then go to
`dlq`).
"""
