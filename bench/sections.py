"""The sections of docs/benchmarks.md: which scripts each runs, and its text from saved runs.

A section's text is a pure function of its latest saved run (and, for spreads
across runs, of its earlier ones): nothing in it is typed in by hand but the
prose and the targets the figures are judged against.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dashboard_section import render_dashboard
from embedded_section import render_embedded
from first_run_section import render_first_run
from forecast_section import render_forecast
from kafka_consumer_section import render_kafka_consumer
from kafka_floor_section import render_kafka_floor
from kafka_section import render_kafka
from kaggle_section import render_kaggle
from peers_section import render_peers
from scale_section import render_scale
from section_text import arg, measured, out, spread, verdict
from soak_section import render_soak
from startup_section import render_startup
from wire_section import render_wire


@dataclass(frozen=True)
class Script:
    """One benchmark script of a section: its arguments for a real run and for a smoke run."""

    key: str
    args: tuple[str, ...]
    smoke: tuple[str, ...]
    output: str = "json"  # "json": the last line is a JSON object; "text": kept verbatim


@dataclass(frozen=True)
class Section:
    """A section of the document: its scripts and how its text is made from a saved run."""

    name: str
    scripts: tuple[Script, ...]
    render: Callable[[dict[str, Any], list[dict[str, Any]]], str]


def render_replay(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    replay = out(run, "bench_replay")
    days = int(arg(run, "bench_replay", "--days", "5"))
    repeat = replay.get("rounds") or int(arg(run, "bench_replay", "--repeat", "3"))
    p, c, b = replay["pipeline"], replay["cli"], replay["pandas_talib"]
    if "round_ratios" in replay:  # runs since 2026-11-27: interleaved rounds
        ratios = replay["round_ratios"]
        how = (
            f"Best of {repeat} alternating rounds (pipeline, batch route, pipeline, ...) after a\n"
            f"warm-up of each; the command's best of {min(repeat, 3)} runs."
        )
        rounds = (
            f" Round by round, the pipeline took {min(ratios):.2f}x to {max(ratios):.2f}x the batch\n"
            f"route's time (median {statistics.median(ratios):.2f}x)."
        )
    else:
        how = f"Best of\n{repeat} runs after a warm-up run."
        rounds = ""
    history_note = spread(
        history,
        "the in-process pipeline's ticks/s",
        lambda r: out(r, "bench_replay")["pipeline"]["ticks_per_s"],
    )
    return f"""## End-to-end replay (`bench/bench_replay.py`)

{measured(run)}

The Lean trades (`../shared/data/lean-2013-10-07/trades.csv.gz`) written {days} times,
shifted by 0 to {days - 1} days: {replay["trades"]:,} trades, one gzip CSV. {how}

| route | what it does | seconds | ticks/s |
|---|---|---:|---:|
| MarketPulse, whole pipeline run in-process | read, decode, validate, 1s/1m/5m bars, 13 indicators, default alerts, lake writes (trades, bars, indicators, alerts) | {p["seconds"]:.3f} | {p["ticks_per_s"]:,.0f} |
| `marketpulse replay FILE` as a command | the same, plus process start-up (imports, numba cache load) | {c["seconds"]:.3f} | {c["ticks_per_s"]:,.0f} |
| pandas + TA-Lib batch route | `read_csv`, resample each symbol to 1-minute OHLCV, TA-Lib indicators and VWAP; nothing written | {b["seconds"]:.3f} | {b["ticks_per_s"]:,.0f} |

The pipeline produced {p["bars"]:,} bars, {p["indicator_rows"]:,} indicator rows and {p["alerts"]:,} alerts;
the batch route {b["bars_1m"]:,} one-minute bars.

Against the targets of issue 2: at least 1,000,000 ticks/s:
{verdict(p["ticks_per_s"] >= 1e6)} in-process, {verdict(c["ticks_per_s"] >= 1e6)} as a command;
no slower than the batch route: {verdict(p["seconds"] <= b["seconds"])} in-process
({p["seconds"] / b["seconds"]:.2f}x its time, best against best).{rounds} The batch route does less work
(one interval, no alerts, nothing stored). The pipeline's feed, processor and
lake writer run on their own threads: {p["cpu_seconds"]:.2f} s of CPU time in
{p["seconds"]:.2f} s of wall time. The command adds {c["seconds"] - p["seconds"]:.2f} s
that do not grow with the input: interpreter start-up, imports, numba's cache
loads and interpreter exit. {history_note}
"""


def _kernel_rates(text: str) -> dict[str, float]:
    """``{"40 columns, one call": 12.3, ...}``: M rows/s of each set line of bench_kernels."""
    rates = {}
    for line in text.splitlines():
        match = re.match(r"bench_kernels: (.+?): .* = ([0-9.]+) M rows/s$", line)
        if match:
            rates[match[1]] = float(match[2])
    return rates


def render_kernels(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    windows = "\n".join(out(run, key) for key in ("bench_windows_1h", "bench_windows_10h"))
    text = out(run, "bench_kernels")
    rates = _kernel_rates(text)
    forty = {how: rate for how, rate in rates.items() if how.startswith("40 columns")}
    best = max(forty.values(), default=0.0)
    judged = ", ".join(f"{rate:.1f} M rows/s ({how[len('40 columns, '):]})"
                       for how, rate in forty.items())  # fmt: skip
    return f"""## Kernels (`bench/bench_kernels.py`, `bench/bench_windows.py`)

{measured(run)}

Indicator kernels (`update_indicators`), bar rows/s: the default declared set
(13 columns), a set of 40 declared columns (`FORTY` in the script: the default
kinds, EMA 50/200 and 21 more kinds, windowed ones included), then each kind
alone with its default parameters. The kernels of one update run in a thread per
core when it is large (rows times declarations at least 200,000).

```text
{text}
```

Against the target of issue 22, with 40 declared columns at least 10 M bar rows/s:
{verdict(best >= 10.0)} ({judged}). A set costs about the sum of its kinds' times
(the per-kind rates above); the kinds that look back over a window (Stochastic,
Williams %R, Aroon, standard deviation, linear regression) repeat TA-Lib's
window scans and rebuilds to give its bits, and cost the most.

Event-time bar windows (1s, 1m, 5m at once), ticks/s:

```text
{windows}
```

Output records (`bench/bench_json_rows.py`): what `process` does with each output
batch before producing it, the JSON record of every row, on bars of the Kaggle index
file, their default indicators and the trades at their closes. A struct a row
(msgspec) against one numba pass over the batch's columns
(`marketpulse.bus.json_rows`, issue 38: "outputs encoded column by column"), time per
row, keys included:

```text
{out(run, "bench_json_rows")}
```
"""


def render_lake(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    return f"""## Lake writes (`bench/bench_lake.py`)

{measured(run)}

```text
{out(run, "bench_lake")}
```
"""


def render_storage(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    result = out(run, "bench_storage")
    pg, lake, lean = result["postgres"], result["s3_lake"], result["sql"]
    batch = int(arg(run, "bench_storage", "--batch", "20000"))
    rows = "\n".join(
        f"| {label} | {r['rows']:,} | {r['seconds']:.2f} | {r['rows_per_s']:,.0f} |"
        for label, r in pg.items()
    )
    judged = ", ".join(
        f"{label} {verdict(r['rows_per_s'] >= 200_000)} ({r['rows_per_s']:,.0f})"
        for label, r in pg.items()
    )
    return f"""## Storage (`bench/bench_storage.py`)

{measured(run)}

PostgreSQL sink (`PostgresSink`: new keys by binary COPY straight into the
table; when keys are already stored, COPY into a staging table, then `INSERT
... ON CONFLICT DO UPDATE ... WHERE` the row differs, so rows written again as
they are get no new row version; keys (symbol, timeframe, bar_start, dataset);
bars and indicators flushed on two connections at once) into
Debian's PostgreSQL started by the script with its default settings (fsync and
synchronous commit on), on the same cores. Rows are 1-minute bars plus one
indicator row per bar, written in batches of {batch:,}. `insert` writes new
keys, `upsert` the same keys again (a replay). Target 200,000 rows/s, on each
path: {judged}.

| PostgreSQL | rows (bars + indicators) | seconds | rows/s |
|---|---:|---:|---:|
{rows}

Lake on S3 (moto's S3 server on loopback): {lake["rows"]:,} bars in
{lake["seconds"]:.2f} s = {lake["rows_per_s"]:,.0f} rows/s, {lake["files"]} objects,
{lake["bytes"] / 1e6:.1f} MB (local-disk lake writes: "Lake writes" above).

`marketpulse sql` over a day of the Lean trades ({lean["trades"]:,} trades replayed
into a local lake; per-symbol count, VWAP, min and max with `WHERE period =
'2013-10-07'`): {lean["cli_s"]:.2f} s for the whole command (process start,
imports, views, query, output; best of 3), {lean["query_s"] * 1000:.0f} ms for the
query in-process (best of 5).
"""


SECTIONS: dict[str, Section] = {
    section.name: section
    for section in (
        Section(
            "replay",
            (Script("bench_replay", ("bench/bench_replay.py",), ("--days", "1", "--repeat", "1")),),
            render_replay,
        ),
        Section(
            "kernels",
            (
                Script(
                    "bench_kernels",
                    ("bench/bench_kernels.py",),
                    ("--rows", "100000", "--keys", "100", "--repeats", "1", "--kind-rows", "2000"),
                    "text",
                ),
                Script(
                    "bench_windows_1h",
                    ("bench/bench_windows.py", "--hours", "1"),
                    ("--ticks", "200000", "--symbols", "50"),
                    "text",
                ),
                Script(
                    "bench_windows_10h",
                    ("bench/bench_windows.py", "--hours", "10"),
                    ("--ticks", "200000", "--symbols", "50"),
                    "text",
                ),
                Script(
                    "bench_json_rows",
                    ("bench/bench_json_rows.py",),
                    ("--rows", "4000", "--keys", "50", "--repeats", "1"),
                    "text",
                ),
            ),  # fmt: skip
            render_kernels,
        ),
        Section(
            "lake",
            (
                Script(
                    "bench_lake",
                    ("bench/bench_lake.py",),
                    ("--trades", "50000", "--bars", "20000"),
                    "text",
                ),
            ),  # fmt: skip
            render_lake,
        ),
        Section(
            "storage",
            (
                Script(
                    "bench_storage",
                    ("bench/bench_storage.py",),
                    ("--rows", "20000", "--batch", "5000"),
                ),
            ),  # fmt: skip
            render_storage,
        ),
        Section(
            "kafka",
            (
                Script(
                    "bench_kafka_catchup",
                    ("bench/bench_kafka_catchup.py",),
                    ("--copies", "1", "--repeat", "1", "--no-kcat", "--routes", "in-process"),
                ),
                Script(
                    "bench_kafka_latency",
                    # >= 1,000 closes at 6/s per (guarantee, rate): 4 runs of 170 s, after a
                    # minute of load on the new broker (its JIT), as the relay's are
                    ("bench/bench_kafka_latency.py", "--broker-warmup", "60"),
                    ("--rates", "10000", "--duration", "1.5", "--broker-warmup", "0"),
                ),
                Script(
                    "bench_page_touch",
                    ("bench/bench_page_touch.py",),
                    ("--mib", "1", "--files", "1"),
                ),
            ),  # fmt: skip
            render_kafka,
        ),
        Section(
            "kafka-floor",
            (
                Script(
                    "bench_kafka_floor",
                    # the latency runs of the kafka section, the service replaced by a relay
                    ("bench/bench_kafka_latency.py", "--engine", "relay", "--broker-warmup", "60"),
                    ("--rates", "10000", "--duration", "1.5", "--broker-warmup", "0"),
                ),
            ),  # fmt: skip
            render_kafka_floor,
        ),
        Section(
            "kafka-consumer",
            (
                Script(
                    "bench_kafka_consumer",
                    # bar end -> row at a consumer, the commands as users run them
                    ("bench/bench_kafka_latency.py", "--feed", "command", "--rates", "10000"),
                    ("--duration", "1.5", "--guarantees", "at-least-once"),
                ),
                Script(
                    "bench_kafka_consumer_defaults",
                    (
                        "bench/bench_kafka_latency.py",
                        "--feed",
                        "command",
                        "--rates",
                        "10000",
                        "--lateness",
                        "default",
                    ),
                    ("--duration", "1.5", "--guarantees", "exactly-once"),
                ),
                Script(
                    "bench_kafka_consumer_floor",
                    # the same feed and reader, the service replaced by the relay (the floor)
                    (
                        "bench/bench_kafka_latency.py",
                        "--feed",
                        "command",
                        "--rates",
                        "10000",
                        "--engine",
                        "relay",
                    ),
                    ("--duration", "1.5", "--guarantees", "exactly-once"),
                ),
            ),  # fmt: skip
            render_kafka_consumer,
        ),
        Section(
            "dashboard",
            (
                Script(
                    "bench_dashboard",
                    ("bench/bench_dashboard.py",),
                    (
                        "--symbols",
                        "20",
                        "--rate",
                        "1000",
                        "--seconds",
                        "1",
                        "--updates-per-s",
                        "4",
                        "--browsers",
                        "0",
                        "1",
                        "--cpu-seconds",
                        "0.3",
                        "--settle",
                        "0.3",
                    ),  # fmt: skip
                ),
            ),  # fmt: skip
            render_dashboard,
        ),
        Section(
            "embedded",
            (
                Script(
                    "bench_embedded_latency",
                    ("bench/bench_embedded_latency.py",),
                    ("--seconds", "2", "--delivery-ms", "25"),
                ),
            ),  # fmt: skip
            render_embedded,
        ),
        Section(
            "soak",
            (
                Script(
                    "bench_soak",
                    ("bench/bench_soak.py",),
                    # a tenth of the default rate: the smoke checks the script, not the rate
                    ("--minutes", "0.15", "--every", "1", "--idle-exit", "12", "--rate", "2000"),
                ),
            ),
            render_soak,
        ),
        Section(
            "wire",
            (
                Script(
                    "bench_wire_times",
                    ("bench/bench_wire_times.py",),
                    ("--trades", "20000", "--repeat", "1"),
                ),
            ),  # fmt: skip
            render_wire,
        ),
        Section(
            "startup",
            (Script("bench_startup", ("bench/bench_startup.py",), ("--runs", "1")),),
            render_startup,
        ),
        Section(
            "first-run",
            (
                Script(
                    "bench_first_run",
                    ("bench/bench_first_run.py",),
                    ("--smoke",),
                ),
            ),  # fmt: skip
            render_first_run,
        ),
        Section(
            "forecast",
            (
                Script(
                    "bench_forecast",
                    ("bench/bench_forecast.py",),
                    ("--repeat", "1", "--intervals", "1m", "--models", "drift"),
                ),
            ),  # fmt: skip
            render_forecast,
        ),
        Section(
            "kaggle",
            (
                Script(
                    "bench_kaggle",
                    ("bench/bench_kaggle.py",),
                    ("--rows-per-symbol", "300", "--repeat", "1"),
                ),
            ),  # fmt: skip
            render_kaggle,
        ),
        Section(
            "scale",
            (
                Script(
                    "bench_scale",
                    ("bench/bench_scale.py",),
                    ("--symbols", "100", "--ticks", "50000", "--svg", ""),
                ),
            ),  # fmt: skip
            render_scale,
        ),
        Section(
            "peers",
            (Script("bench_peers", ("bench/bench_peers.py",), ("--smoke",)),),
            render_peers,
        ),
    )
}
