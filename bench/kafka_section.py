"""The Kafka section of docs/benchmarks.md: catch-up, latency and page-touch runs."""

from __future__ import annotations

from typing import Any

from section_text import arg, measured, out, spread, verdict

from marketpulse.runtime.process import ProcessOptions


def _ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.1f}"  # NaN: no sample


#: Fewest bar closes over which a p99 is judged against a target.
MIN_CLOSES_FOR_P99 = 1_000


#: Issue 24's latency targets: p99 ms at most, per (guarantee, ticks/s).
TARGETS = {("exactly-once", 10_000): 15.0, ("exactly-once", 100_000): 30.0,
           ("at-least-once", 10_000): 5.0}  # fmt: skip


def _latency_verdict(latency: dict[str, Any]) -> str:
    """Issue 24's targets, judged on what they name: p99 with start-up, over enough closes."""
    lines = []
    for (guarantee, rate), limit in TARGETS.items():
        found = [r for r in latency["rates"]
                 if r["rate"] == rate and r.get("guarantee", "exactly-once") == guarantee]  # fmt: skip
        what = f"{guarantee}, p99 at most {limit:g} ms at {rate:,} ticks/s"
        if not found or "with_start_up" not in found[0]:
            lines.append(f"- {what}: not run")
            continue
        whole = found[0]["with_start_up"]
        figure = (f"p99 {_ms(whole['p99_ms'])} ms with start-up included, over "
                  f"{whole['bar_closes']:,} bar closes")  # fmt: skip
        if whole["bar_closes"] < MIN_CLOSES_FOR_P99:
            lines.append(f"- {what}: not judged ({figure}; a p99 needs at least "
                         f"{MIN_CLOSES_FOR_P99:,} closes)")  # fmt: skip
        else:
            lines.append(f"- {what}: {verdict(whole['p99_ms'] <= limit)} ({figure})")
    return "\n".join(lines)


def _breakdown(latency: dict[str, Any]) -> str:
    """The stages of a bar close's latency, p50 / p99 per run (the service's trace)."""
    stages = latency.get("stages")
    runs = [r for r in latency["rates"] if r.get("breakdown")]
    if not stages or not runs:
        return "(this run has no breakdown)"
    head = (
        "| stage | "
        + " | ".join(f"{r.get('guarantee', 'exactly-once')} {r['rate']:,.0f}/s" for r in runs)
        + " |"
    )
    rule = "|---|" + "---:|" * len(runs)
    rows = []
    for name, text in stages.items():
        cells = []
        for r in runs:
            stage = r["breakdown"].get(name)
            cells.append(f"{_ms(stage['p50_ms'])} / {_ms(stage['p99_ms'])}" if stage else "-")
        rows.append(f"| `{name}`: {text} | " + " | ".join(cells) + " |")
    closes = ", ".join(f"{r['breakdown'].get('closes', 0):,}" for r in runs)
    return "\n".join([head, rule, *rows]) + f"\n\nCloses followed, per column: {closes}."


def render_kafka(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The Kafka section from the catch-up, latency and page-touch scripts' JSON."""
    catchup = out(run, "bench_kafka_catchup")
    latency = out(run, "bench_kafka_latency")
    touch = out(run, "bench_page_touch")
    copies = int(arg(run, "bench_kafka_catchup", "--copies", "13"))
    load = catchup["preload"]
    used = {p: n for p, n in catchup["partition_records"].items() if n}
    placed = ", ".join(f"{n:,} in partition {p}" for p, n in used.items())
    raw, fast = (
        catchup["raw_consumer"]["service_fetch"],
        catchup["raw_consumer"]["no_fetch_backoff"],
    )
    ceiling = max(raw["ticks_per_s"], fast["ticks_per_s"])
    grace_ms = ProcessOptions().settings.output_grace * 1000  # the service runs with the default
    kcat = catchup.get("kcat")
    routes = {r["route"]: r for r in catchup["process"]}
    what = {
        "in-process": "the process service in a thread of the benchmark (kernels warmed up, "
        "the commands' collector settings): consume, decode, validate, 1s/1m/5m bars, 13 "
        "indicators, default alerts, produce bars/indicators/alerts/state in transactions "
        "with the offsets (commit interval 0.1 s)",
        "command": "`marketpulse process --exit-when-idle 2` as a command: the same, plus "
        "interpreter start-up, imports and numba cache load",
        "command-no-trades": "the command with `MARKETPULSE_PROCESS_STORE_TRADES=false`: "
        "the kept trades not stored (no `trades` records)",
    }
    if "command-no-trades" in routes:  # runs since the kept trades are named by reference
        what["in-process"] = what["in-process"].replace(
            "alerts/state in transactions",
            "alerts/state and a reference to the trades kept "
            "of each batch read (their offsets on `ticks`) in transactions",
        )
    rows = []
    for name, route in routes.items():
        cpu = f"{route['cpu_seconds']:.1f}"
        if "broker_cpu_seconds" in route:
            cpu += f" (+ broker {route['broker_cpu_seconds']:.1f})"
        rows.append(
            f"| process service, {name} | {what[name]} | {route['seconds']:.2f} | "
            f"{route['ticks_per_s']:,.0f} | {cpu} |"
        )
    rows.append(
        f"| raw confluent-kafka consumer | `Consumer.consume(num_messages=10000)` over all "
        f"partitions to EOF, error check only, the service consumer's fetch sizes with "
        f"librdkafka's default `queued.min.messages` (100,000) | "
        f"{raw['seconds']:.2f} | {raw['ticks_per_s']:,.0f} | {raw['cpu_seconds']:.1f} |"
    )
    rows.append(
        f"| raw confluent-kafka consumer, no fetch back-off | the same with "
        f"`queued.min.messages=1000000`: the service consumer's fetch settings | "
        f"{fast['seconds']:.2f} | {fast['ticks_per_s']:,.0f} | {fast['cpu_seconds']:.1f} |"
    )
    if kcat:
        plain, quick = kcat["defaults"], kcat["no_fetch_backoff"]
        rows.append(
            f"| kcat | `kcat -C -b BOOT -t TOPIC -e -o beginning -q > /dev/null` | "
            f"{plain['seconds']:.2f} | {plain['ticks_per_s']:,.0f} | {plain['cpu_seconds']:.1f} |"
        )
        rows.append(
            f"| kcat, no fetch back-off | the same with `-X queued.min.messages=1000000` | "
            f"{quick['seconds']:.2f} | {quick['ticks_per_s']:,.0f} | {quick['cpu_seconds']:.1f} |"
        )
    floors = catchup.get("floors")
    if floors:
        rows += _floor_rows(floors)
    table = "\n".join(rows)
    main_route = routes.get("in-process") or next(iter(routes.values()))
    label = {"in-process": "in-process", "command": "as a command",
             "command-no-trades": "as a command without trades"}  # fmt: skip
    fast_enough = ", ".join(
        f"{verdict(r['ticks_per_s'] >= 300_000)} {label[name]} ({r['ticks_per_s']:,.0f})"
        for name, r in routes.items()
    )
    half = ", ".join(
        f"{verdict(r['ticks_per_s'] >= ceiling / 2)} {label[name]} "
        f"({r['ticks_per_s'] / ceiling:.2f}x)"
        for name, r in routes.items()
    )
    raw_after = ""
    repeat = int(arg(run, "bench_kafka_catchup", "--repeat", "3"))
    if len(raw.get("runs_seconds", ())) > repeat:
        raw_after = (" (the raw consumers': as many before the services and again after "
                     "them, the best of all)")  # fmt: skip
    stored_once = ""
    if "command" in routes and "command-no-trades" in routes:
        with_trades, without = routes["command"], routes["command-no-trades"]
        stored_once = (
            "\n\nAgainst the targets of issue 38, as commands, against the faster raw row: "
            "with the kept trades stored (the default) at least 0.6x: "
            f"{verdict(with_trades['ticks_per_s'] >= 0.6 * ceiling)} "
            f"({with_trades['ticks_per_s'] / ceiling:.2f}x); without at least 0.8x: "
            f"{verdict(without['ticks_per_s'] >= 0.8 * ceiling)} "
            f"({without['ticks_per_s'] / ceiling:.2f}x)."
        )
    dead = main_route.get("dead_reasons") or {}
    dead_text = ", ".join(f"{n:,} {reason}" for reason, n in dead.items()) if dead else "none"

    def catchup_of(r: dict) -> dict:
        return out(r, "bench_kafka_catchup")

    spreads = " ".join(
        s
        for s in (
            spread(
                history,
                "the faster raw consumer's ticks/s",
                lambda r: max(v["ticks_per_s"] for v in catchup_of(r)["raw_consumer"].values()),
            ),
            spread(
                history,
                "the process service in-process",
                lambda r: next(
                    p["ticks_per_s"] for p in catchup_of(r)["process"] if p["route"] == "in-process"
                ),
            ),
        )
        if s
    )
    lat_rows = "\n".join(
        f"| {r.get('guarantee', 'exactly-once')} | {r['rate']:,.0f} | "
        f"{r['produced_per_s']:,.0f} | "
        + (
            f"{r['with_start_up']['samples']:,} ({r['with_start_up']['bar_closes']:,}) | "
            f"{_ms(r['with_start_up']['p50_ms'])} | {_ms(r['with_start_up']['p99_ms'])} | "
            f"{_ms(r['with_start_up']['max_ms'])} |"
            if "with_start_up" in r
            else "n/a | n/a | n/a | n/a |"
        )
        + f" {_ms(r['to_service_produce_p50_ms'])} / {_ms(r['to_service_produce_p99_ms'])} | "
        f"{r['service_cpu_share']:.2f} |"
        for r in latency["rates"]
    )
    measured_s = latency["rates"][0]["seconds"] if latency["rates"] else 0
    return f"""## Kafka (`bench/bench_kafka_catchup.py`, `bench/bench_kafka_latency.py`, `bench/bench_page_touch.py`)

{measured(run)} Against {catchup["broker"]}, on the same two cores as the
service and the clients (the broker's CPU time is shown when the script started
the broker). This section alone: `bench/run_all.py --only kafka`.

### Catch-up

`ticks` ({catchup["partitions"]} partitions) preloaded with the Lean day written {copies}
times, shifted by 0 to {copies - 1} days so event time keeps increasing per symbol:
{load["trades"]:,} trades, JSON keyed by symbol. The day has four symbols, so
only {len(used)} partitions hold data ({placed}).
Preloading with the project's producer (idempotent, `acks=all`, lz4) took
{load["seconds"]:.1f} s: {load["ticks_per_s"]:,.0f} ticks/s ({load["cpu_seconds"]:.1f} s of CPU).

The process service is timed from its start to the moment its group's
committed offsets reach the end of `ticks`, so the idle wait before it exits
is not counted. The ceilings are the best of
{arg(run, "bench_kafka_catchup", "--repeat", "3")} runs{raw_after}.

| route | what it does | seconds | ticks/s | CPU s |
|---|---|---:|---:|---:|
{table}

The in-process run produced {main_route.get("bars", 0):,} bars, {main_route.get("indicator_rows", 0):,} indicator rows
and {main_route.get("alerts", 0):,} alerts in {main_route.get("transactions", 0):,} transactions; dead letters: {dead_text}.

Against the targets of issue 3: at least 300,000 ticks/s: {fast_enough};
at least half the raw confluent-kafka rate (the faster raw row, {ceiling:,.0f} ticks/s):
{half}. {spreads}{stored_once}

{_floor_note(floors, routes, ceiling)}{_kcat_note(kcat, history)}
### Latency

A producer thread sends simulated trades of {latency["symbols"]} symbols at a fixed
rate: every {latency["send_period_ms"]:.0f} ms the trades due so far, all stamped with the wall
clock just before `send_columns` (the project's producer with the linger of `marketpulse
produce`, {latency["linger_ms"]:g} ms). `marketpulse process` runs as a command with
`--lateness {latency["lateness_s"]:g}` and otherwise the defaults a user gets
({_commit_text(latency)}; 1s/1m/5m bars, default alerts, idle timeout 2 s), under each
`--guarantee`. Exactly once, outputs wait at most {grace_ms:g} ms from the first for the
other partitions' closes of the same moment, and are committed as soon as every
partition with recent input has closed the bars they hold; at least once they go out at
once. {_priority(latency)}A `read_committed` consumer {_reader(latency)},
in a process of its own, notes when each indicator row arrives. Each run has fresh
topics and lasts {measured_s:.0f} s from the first row; every row from the first one on
counts (start-up included).

Latency of an indicator row: with lateness 0 a bar `[S, E)` closes when the
largest event time seen on its `ticks` partition reaches `E`, that is when the
first trade of that partition stamped at or after `E` is processed. Trades are
stamped with the clock at which they are produced, so latency = arrival of the
row at the reader - stamp of that closing trade. Every row counts (1s, 1m and 5m
bars); rows of one bar close share most of their path, so the number of closes
is given too. "Until produced" is the part until the service produced the row
(the Kafka record timestamp, millisecond resolution).

| guarantee | trades/s | produced/s | rows (bar closes) | p50 ms | p99 ms | max ms | until produced p50 / p99 ms | service CPU (cores) |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
{lat_rows}

Against the targets of issue 24 (same two cores as the broker, no raised priority):

{_latency_verdict(latency)}

What any engine on these clients and this broker pays before it computes anything is
measured apart, in the next section (the same runs with a relay in place of the service).

Where the time goes: the service writes the wall clock of each stage of the
first row of every bar close (`MARKETPULSE_PROCESS_TRACE`,
`marketpulse.runtime.latency_trace`), the `ticks` topic stamps each record with
the broker's append time, and the script joins them with the produce stamps and
the reader's arrivals. The append time is that of the last record of the
batch the service polled (millisecond resolution), so `to_broker` and
`to_service` share their sum only roughly; p50 and p99 are taken per stage, so
they do not add up to the totals. p50 / p99 ms of each stage:

{_breakdown(latency)}
{_tail_text(latency)}
{_warm_up_text(latency, history)} One other suspected cause, the broker's first
writes into the new partitions' index files (sparse, memory-mapped), is timed
directly by `bench/bench_page_touch.py`: on this machine's disk a first write into
a page of a new sparse mapped file took
{touch["disk"]["median_ms"] * 1000:.1f} us (median; p99 {touch["disk"]["p99_ms"] * 1000:.1f} us,
max {touch["disk"]["max_ms"]:.1f} ms over {touch["disk"]["pages"]:,} pages), against
{touch["tmpfs"]["median_ms"] * 1000:.1f} us on tmpfs (max {touch["tmpfs"]["max_ms"]:.1f} ms):
too little to explain it.
"""


def warm_up_sentence(latency: dict[str, Any]) -> str:
    """What the broker ran before the measured runs (``--broker-warmup``), for both sections."""
    warm = latency.get("broker_warmup_s") or 0
    if not warm:
        return "The broker is new: the first run meets its JVM cold."
    return (
        f"Before the runs the new broker took {warm:g} s of the same load on other topics, "
        "not counted: a new broker's JVM compiles its hot paths under its first load, which "
        "a running cluster's has long done. Each engine under test is started afresh for "
        "each run on fresh topics, and its own start-up counts."
    )


def _warm_up_text(latency: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The broker's warm-up, and this run beside the last one on a cold broker."""
    if not latency.get("broker_warmup_s"):
        return (
            "The first seconds on fresh topics are slower; the broker is new, and its JVM "
            "meets the first run cold (runs since 2026-12-01 warm it first)."
        )
    cold_runs = [
        run
        for run in history
        if not out(run, "bench_kafka_latency").get("broker_warmup_s")
        and all("tail" in r for r in out(run, "bench_kafka_latency")["rates"])
    ]
    if not cold_runs:
        return warm_up_sentence(latency)
    cold_run = cold_runs[-1]
    cold = {
        (r.get("guarantee", "exactly-once"), r["rate"]): r
        for r in out(cold_run, "bench_kafka_latency")["rates"]
    }
    pairs = [
        (r, before)
        for r in latency["rates"]
        if "tail" in r
        and (before := cold.get((r.get("guarantee", "exactly-once"), r["rate"]))) is not None
    ]
    if not pairs:
        return warm_up_sentence(latency)
    lines = [
        f"| {r.get('guarantee', 'exactly-once')} | {r['rate']:,.0f} | "
        f"{_ms(before['with_start_up']['p99_ms'])} | {before['tail']['in_start_up']:.0%} | "
        f"{_ms(r['with_start_up']['p99_ms'])} | {r['tail']['in_start_up']:.0%} |"
        for r, before in pairs
    ]
    lower = [b["with_start_up"]["p99_ms"] / r["with_start_up"]["p99_ms"] for r, b in pairs]
    return f"""{warm_up_sentence(latency)} The last run on a cold broker
({cold_run["measured_at"][:10]}, commit `{cold_run["commit"][:10]}`) had the
first seconds' closes make much of each p99; its figures beside these:

| guarantee | trades/s | cold broker: p99 ms | of its tail in the first 10 s | warmed broker: p99 ms | of its tail in the first 10 s |
|---|---:|---:|---:|---:|---:|
{chr(10).join(lines)}

With the broker warmed each p99 is {min(lower):.1f} to {max(lower):.1f} times lower (the
runs are hours apart, and the machine's other figures moved too, as the spreads of the
catch-up's runs above show)."""


def _tail_text(latency: dict[str, Any]) -> str:
    """Which closes make each run's p99 (``bench_kafka_latency.tail``); '' for older runs."""
    runs = [r for r in latency["rates"] if r.get("tail")]
    if not runs:
        return ""
    lines = [
        f"| {r.get('guarantee', 'exactly-once')} | {r['rate']:,.0f} | {t['rows']:,} | "
        f"{t['at_minute_end']:.0%} | {t['minute_end_rows']:.0%} ({t['minute_end_closes']:,}) | "
        f"{t['in_start_up']:.0%} | {_ms(r['with_start_up']['p99_ms'])} | "
        f"{_ms(t['p99_other_closes_ms'])} |"
        for r in runs
        for t in (r["tail"],)
    ]
    table = "\n".join(lines)
    return f"""
What makes each p99: the rows at or above it (start-up included), by the close
they came from. At a minute's end the 1m bars (every fifth minute the 5m bars too)
close with the 1s bars, so those closes write two or three times the rows of
the others; a relay writes the same rows every second.

| guarantee | trades/s | rows at or above the p99 | of them at a minute's end | all rows at a minute's end (closes) | of them in the first 10 s | p99 ms | p99 of the other closes' rows ms |
|---|---:|---:|---:|---:|---:|---:|---:|
{table}
"""


def _floor_rows(floors: dict[str, Any]) -> list[str]:
    """The output floors' rows of the catch-up table (``bench_kafka_catchup.output_floors``)."""
    sizes = floors["sizes"]
    what = {
        "outputs": "a relay, no processing: reads `ticks` with the service's consumer and "
        f"writes {sizes['per_tick']:.3f} records a tick read (the bars, indicator rows and "
        "alerts the in-process run wrote a tick), real bars and indicator rows of that run "
        f"in turn ({sizes['value_bytes']:.0f} bytes on average), in transactions with the "
        "offsets every 0.1 s",
        "trades": f"the same and a reference to each batch read ({sizes['trades_bytes']:.0f} "
        "bytes), as the service names the trades it keeps",
        "state": "the same and, before each commit, a record for each symbol read since the "
        f"last one ({sizes['state_bytes']:.0f} bytes), as the service writes the state a "
        "transaction changed",
    }
    names = {"outputs": "output floor", "trades": "output floor + trades",
             "state": "output floor + trades + state"}  # fmt: skip
    return [
        f"| {names[name]} | {what[name]} | {floors[name]['seconds']:.2f} | "
        f"{floors[name]['ticks_per_s']:,.0f} | {floors[name].get('cpu_seconds', 0):.1f} |"
        for name in ("outputs", "trades", "state")
        if name in floors
    ]


def _floor_note(floors: dict[str, Any] | None, routes: dict[str, Any], ceiling: float) -> str:
    """What the output floors say of the gap between the service and the raw consumer."""
    if not floors or "state" not in floors:
        return ""
    floor = floors["state"]["ticks_per_s"]
    service = max(r["ticks_per_s"] for r in routes.values())
    verdict_text = (
        "The Kafka traffic of the service's outputs does not hold it back: a relay that writes "
        "the same records, with no decoding, computing or encoding, reads the topic at "
        f"{floor / ceiling:.2f}x the faster raw consumer, the service at "
        f"{service / ceiling:.2f}x at best. The gap is the service's own work a tick "
        "(decoding, bars, indicators, alerts, encoding) in its one thread."
        if floor >= 0.8 * ceiling
        else "The Kafka traffic of the service's outputs alone sets a lower ceiling than "
        f"the raw consumer: the relay writing the same records reads the topic at "
        f"{floor / ceiling:.2f}x the faster raw consumer, the service at "
        f"{service / ceiling:.2f}x at best."
    )
    return f"""The output floors are timed from the relay's first record to its last
commit (a relay has no state to restore). {verdict_text}

"""


def _kcat_note(kcat: dict | None, history: list[dict[str, Any]]) -> str:
    """Why kcat has two rows, with the spread of its runs with the defaults."""
    if not kcat:
        return ""
    runs = kcat["defaults"].get("runs_seconds") or [kcat["defaults"]["seconds"]]
    earlier = spread(
        history,
        "kcat's ticks/s with its defaults",
        lambda r: out(r, "bench_kafka_catchup")["kcat"]["defaults"]["ticks_per_s"],
    )
    return f"""kcat links Debian's librdkafka, which stops fetching a partition for a
fixed second whenever 100,000 of its records wait in the local queue; with its
defaults its time depends on where those pauses fall (this run's {len(runs)} took
{min(runs):.1f} to {max(runs):.1f} s). {earlier} The row with `queued.min.messages=1000000`
is the C client's ceiling; the target compares with the raw confluent-kafka
consumer, the ceiling of a Python consumer.
"""


def _reader(latency: dict[str, Any]) -> str:
    """The reader's fetch settings."""
    wait = latency.get("reader_fetch_wait_ms", 5)  # runs before the field was written: 5 ms
    return "with the client's default settings" if wait is None else f"(`fetch.wait.max.ms={wait}`)"


def _commit_text(latency: dict[str, Any]) -> str:
    """The commit interval the service ran with."""
    given = latency.get("commit_interval_s")
    if given is None:
        default = latency.get("default_commit_interval_s")
        return f"commit interval {default:g} s, the default" if default else "default timings"
    return f"`--commit-interval {given:g}`"


def _priority(latency: dict[str, Any]) -> str:
    """The sentence on the broker's scheduling priority, when the script set one."""
    nice = latency.get("broker_nice", 0)
    if not nice:
        return ""
    return (
        f"The broker the script starts runs at nice {nice}, ahead of the service and the\n"
        "clients on the two shared cores (in production it has machines of its own).\n"
    )
