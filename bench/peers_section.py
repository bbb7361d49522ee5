"""The peers section of docs/benchmarks.md: MarketPulse (process, Spark route), Quix, PySpark."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, spread

__all__ = ["render_peers"]

#: The Spark route's peers (bench/peer_spark.py): their operator and master.
SPARK_ROUTE = {
    "marketpulse-spark-local1": ("transformWithStateInPandas", "local[1]"),
    "marketpulse-spark-local2": ("transformWithStateInPandas", "local[2]"),
    "marketpulse-spark-apply-local1": ("applyInPandasWithState", "local[1]"),
    "marketpulse-spark-apply-local2": ("applyInPandasWithState", "local[2]"),
}
TWS, APPLY = "transformWithStateInPandas", "applyInPandasWithState"

#: What each engine computes, in the table.
WHAT = {
    "raw": "plain `confluent_kafka.Consumer` reading every partition to its end, no decoding "
    "(best of the runs)",
    "marketpulse": "`marketpulse process --lateness 0` as a command: decode, validate, "
    "1s/1m/5m bars, 13 indicators, default alerts, all outputs produced",
    "quix-at-least-once": "Quix Streams: 1-minute tumbling window (`Earliest`/`Max`/`Min`/"
    "`Latest`/`Sum`, `.final()`), EMA 12, MACD 12/26/9 and RSI 14 in a stateful per-key step, "
    "bars produced",
    "quix-exactly-once": "the same",
    "spark": "PySpark Structured Streaming, `local[2]`: `from_json`, 1-minute `window` with a "
    "watermark of 0 s, append mode, `trigger(availableNow=True)`, bars produced",
    **{
        name: f"`marketpulse spark --master {master} --available-now --lateness 0` as a command"
        + (
            ": MarketPulse's processor per bucket in `transformWithStateInPandas` (state in "
            "RocksDB), the outputs of `process` produced"
            if operator == TWS
            else ", its operator in `applyInPandasWithState` (bench-only), the same outputs"
        )
        for name, (operator, master) in SPARK_ROUTE.items()
    },
}
GUARANTEE = {
    "raw": "none (reads only)",
    "marketpulse": "exactly-once",
    "quix-at-least-once": "at-least-once",
    "quix-exactly-once": "exactly-once",
    "spark": "at-least-once (Kafka sink)",
    **{name: "exactly-once (a transaction per micro-batch)" for name in SPARK_ROUTE},
}
NAME = {
    "raw": "raw confluent-kafka",
    "marketpulse": "MarketPulse",
    "quix-at-least-once": "Quix Streams",
    "quix-exactly-once": "Quix Streams",
    "spark": "PySpark",
    **{
        name: f"MarketPulse on Spark, {master}" + (" (apply)" if operator == APPLY else "")
        for name, (operator, master) in SPARK_ROUTE.items()
    },
}


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def _spark_route(result: dict[str, Any]) -> str:
    """The Spark route's subsection: its two operators side by side, at one and two cores."""
    peers = result["peers"]
    ran = {name: peers[name] for name in SPARK_ROUTE if name in peers}
    if not ran:
        return ""
    mp = peers.get("marketpulse")
    rows = []
    for name, p in ran.items():
        operator, master = SPARK_ROUTE[name]
        cores = int(master.removeprefix("local[").removesuffix("]"))
        steps = p.get("steps_seconds")
        logs = steps.get("walCommit", 0) + steps.get("commitOffsets", 0) if steps else None
        of_mp = f"{mp['seconds'] / p['seconds']:.2f}" if mp else "n/a"
        rows.append(
            f"| `{operator}` | {master} | {p['seconds']:.1f} | {p['ticks_per_s']:,.0f} | "
            f"{p['ticks_per_s'] / cores:,.0f} | {of_mp} | {p['start_up_seconds']:.1f} | "
            f"{p['micro_batches']} | {p['cpu_seconds']:.1f} | "
            f"{p['cpu_seconds'] / result['trades'] * 1e6:.1f} | "
            f"{_cell(p.get('state_commit_seconds'), '.2f')} | {_cell(logs, '.2f')} | "
            f"{p['checkpoint_state_bytes'] / 1e6:.2f} | {p['max_rss_mb']:,.0f} | "
            f"{p['load_1min_at_start']:.2f} |"
        )
    ticks = result["ticks_per_partition"]
    busy = sorted((n for n in ticks.values() if n), reverse=True)
    share = busy[0] / sum(busy) if busy else 0.0
    given = result["spark_route_options"]
    options = " ".join(given)
    if "--max-offsets-per-trigger" in given:
        cap = int(given[given.index("--max-offsets-per-trigger") + 1])
        rest = f"`maxOffsetsPerTrigger` {cap:,} as given, the rest default:"
    else:
        cap = result.get("spark_route_max_offsets_default")
        rest = (
            f"the rest the route's defaults: `--max-offsets-per-trigger` {cap:,} (Spark's "
            "`maxOffsetsPerTrigger`),"
            if cap
            else "the rest the route's defaults: its `--max-offsets-per-trigger` (Spark's "
            "`maxOffsetsPerTrigger`: `marketpulse spark --help` gives it; the table counts the "
            "micro-batches),"
        )
    return f"""
### MarketPulse on Spark: `transformWithStateInPandas` and `applyInPandasWithState`

The Spark route (`marketpulse spark`, [guide](guides/spark.md)) on the same topic,
with `--master local[1]` and `local[2]`, each run with its own checkpoint and query
name, writing the same output topics as `marketpulse process` (its `bars` read back
from where they ended before the run, and equal to `process`'s: counts above). Beside
it, a bench-only variant (`bench/peers/marketpulse_spark/`): the same command with the
bucket operator in `applyInPandasWithState`, its state the bucket's processor
checkpoint records, all of them, in one `GroupState` value rewritten after each
micro-batch (the route's `transformWithStateInPandas` keeps one `MapState` entry per
symbol and writes only those a micro-batch changed). Settings: `{options}`, {rest}
Spark's shuffle partitions = the partitions of `ticks` ({result["partitions"]}), the RocksDB state
store, Spark's default driver memory; the Kafka connector resolved by Ivy at each
start from its cache (fetched once before the runs, not timed). Times from Spark's
progress reports: start-up from the launch to the first micro-batch's start, the run
to the end of the last micro-batch (the JVM's stop after it is not counted). "State
commit" is the state store's commit time over the micro-batches (RocksDB, summed over
the buckets' tasks), "offset logs" the checkpoint's offset and commit log writes
(`walCommit` and `commitOffsets`), "checkpoint state" the bytes of the checkpoint's
`state` folder after the run.

| operator | master | seconds | trades/s | trades/s per core | x MarketPulse rate | start-up s | micro-batches | CPU s | CPU s per million trades | state commit s | offset logs s | checkpoint state MB | peak memory MB | load at start |
|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

"x MarketPulse rate" is the rate over `marketpulse process`'s on the same topic; "load at
start" the machine's load average (1 min) as the run started. The topic has {result["symbols"]} symbols in
{len(busy)} of its {result["partitions"]} partitions, {share:.0%} of the trades in one:
a bucket is one partition, run by one Python worker at a time, so a second core can
take only the other busy bucket and the driver's writing. {_scaling(ran)} {_fit(ran)}
"""


def _pair(ran: dict[str, Any], operator: str, master: str) -> dict[str, Any] | None:
    for name, (op, m) in SPARK_ROUTE.items():
        if op == operator and m == master and name in ran:
            return ran[name]
    return None


def _scaling(ran: dict[str, Any]) -> str:
    """local[2] over local[1], per operator, from the figures."""
    said = []
    for operator in (TWS, APPLY):
        one, two = _pair(ran, operator, "local[1]"), _pair(ran, operator, "local[2]")
        if one and two:
            said.append(
                f"`{operator}` ran {one['seconds'] / two['seconds']:.2f}x as fast on two "
                f"cores as on one ({one['seconds']:.1f} s, {two['seconds']:.1f} s)"
            )
    return ("Here " + "; ".join(said) + ".") if said else ""


def _fit(ran: dict[str, Any]) -> str:
    """Which operator fits the route better, from the figures and what each one writes."""
    parts, batches = [], set()
    for master in ("local[1]", "local[2]"):
        t, a = _pair(ran, TWS, master), _pair(ran, APPLY, master)
        if t and a:
            batches |= {t["micro_batches"], a["micro_batches"]}
            parts.append(
                f"at {master} `applyInPandasWithState` took {a['seconds']:.1f} s against "
                f"{t['seconds']:.1f} s ({a['seconds'] / t['seconds'] - 1:+.0%}), "
                f"{a['cpu_seconds']:.1f} CPU s against {t['cpu_seconds']:.1f}, and started in "
                f"{a['start_up_seconds']:.1f} s against {t['start_up_seconds']:.1f}"
            )
    if not parts:
        return ""
    once = batches == {1}
    return (
        f"Side by side, {'; '.join(parts)}. "
        + (
            "With one micro-batch per run, each operator writes a bucket's state once, so "
            "these figures compare the two APIs' calls more than their state: "
            if once
            else "Over several micro-batches: "
        )
        + "`applyInPandasWithState` rewrites a bucket's whole state (every symbol's record, "
        "a few kB each) after every micro-batch, a cost that grows with the symbols per "
        "bucket and the micro-batches per second of a live run, where "
        "`transformWithStateInPandas` writes only the symbols that changed, and only the "
        "latter has the processing-time timers that close a quiet bucket's bars by the clock "
        "as `process` does: the route keeps `transformWithStateInPandas`."
    )


def _rows(peers: dict[str, Any]) -> list[str]:
    """The table's rows; the ratios against the run's own raw and MarketPulse figures."""
    raw, mp = peers.get("raw"), peers.get("marketpulse")
    rows = []
    for name, p in peers.items():
        of_raw = f"{p['ticks_per_s'] / raw['ticks_per_s']:.2f}" if raw else "n/a"
        of_mp = f"{p['seconds'] / mp['seconds']:.1f}" if mp else "n/a"
        rows.append(
            f"| {NAME.get(name, name)} | {WHAT.get(name, '')} | {GUARANTEE.get(name, '')} | "
            f"{p['seconds']:.1f} | {p['ticks_per_s']:,.0f} | {of_raw} | {of_mp} | "
            f"{_cell(p.get('start_up_seconds'), '.1f')} | {_cell(p.get('cpu_seconds'), '.1f')} | "
            f"{_cell(p.get('max_rss_mb'), ',.0f')} |"
        )
    return rows


def _earlier(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The peers this run left out (``--peers``), from the latest earlier run that has them."""
    result = out(run, "bench_peers")
    missing = [name for name in NAME if name not in result["peers"]]
    for earlier in reversed(history):
        if earlier is run or earlier.get("measured_at") == run.get("measured_at"):
            continue
        try:
            before = out(earlier, "bench_peers")
        except KeyError:
            continue
        found = [name for name in missing if name in before["peers"]]
        if not found:
            continue
        keep = {
            n: before["peers"][n] for n in ("raw", "marketpulse", *found) if n in before["peers"]
        }
        return f"""
This run took only the peers above (`--peers`), on {result["trades"]:,} trades. The
others, from their latest run ({earlier["measured_at"]}, commit `{earlier["commit"]}`,
{before["trades"]:,} trades, load average {earlier["load_average"].get("start")} at its
start), with that run's raw and MarketPulse rows for their ratios:

| engine | what it does | guarantee | seconds | trades/s | x raw rate | x MarketPulse time | start-up s | CPU s | peak memory MB |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(_rows(keep))}
"""
    return ""


def render_peers(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The section from bench_peers' JSON."""
    result = out(run, "bench_peers")
    peers = result["peers"]
    rows = _rows(peers)
    versions = result["versions"]
    quix, spark = versions.get("quix", {}), versions.get("spark", {})
    parts = [f"confluent-kafka {versions['confluent-kafka']} (librdkafka {versions['librdkafka']})"]
    if quix:
        parts.append(
            f"Quix Streams {quix['quixstreams']} (confluent-kafka {quix['confluent-kafka']}, "
            f"librdkafka {quix['librdkafka']})"
        )
    if spark:
        parts.append(
            f"PySpark {spark['pyspark']} with spark-sql-kafka-0-10_2.13 {spark['spark-sql-kafka']} "
            f"on {spark['java']}"
        )
    route = versions.get("marketpulse-spark", {})
    if route:
        parts.append(
            f"MarketPulse's Spark route on pyspark {route['pyspark']} (MarketPulse's environment, "
            f"the `spark` extra) with `{route['connector']}` on {route['java']}"
        )
    checked = result["bars_compared"]
    agreed = ", ".join(f"{peer} {n:,}" for peer, n in checked.items()) or "none"
    history_note = spread(
        history,
        "MarketPulse's trades/s",
        lambda r: out(r, "bench_peers")["peers"]["marketpulse"]["ticks_per_s"],
    )
    return f"""## Peers (`bench/bench_peers.py`)

{measured(run)} On {result["cores"]} cores and {result["memory_gib"]:g} GiB of memory, shared with
{result["broker"]}: {"; ".join(parts)}.
`make bench-peers` makes each peer's virtual environment (`bench/peers/.venvs/`, from
the pinned `bench/peers/*/requirements.txt`; the Spark Kafka connector's jars from
Maven Central by `bench/peers/spark/pom.xml`) and runs this section alone.

One `ticks` topic (6 partitions) preloaded as in the Kafka section: {result["trades"]:,}
real trades (the Lean day written {result["copies"]} times, shifted by whole days), JSON
keyed by symbol. Each engine then reads it from the beginning, one after the
other. Times run from the launch of the engine's process (interpreter or JVM
start-up included) until its consumer group's committed offsets reach the end
of `ticks`, polled every 50 ms (Spark keeps its offsets in its checkpoint:
until its `availableNow` query has finished; for MarketPulse on Spark, until the
end of its last micro-batch by Spark's progress reports). "Start-up" is the part
until the engine was built and about to read (for MarketPulse on Spark, until its
first micro-batch started); CPU and peak memory are its whole process tree's
(Spark's JVM and Python workers included), sampled every 0.2 s. "x MarketPulse"
is the engine's time over MarketPulse's.

| engine | what it does | guarantee | seconds | trades/s | x raw rate | x MarketPulse time | start-up s | CPU s | peak memory MB |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}
{_earlier(run, history)}
Every peer's 1-minute bars (open, high, low, close, volume per symbol per
minute) read back from its output topic equal MarketPulse's, exactly: {agreed}
bars compared. Lateness is the same for all: none past a window's end (Quix
`grace_ms=0`, Spark's watermark 0 s, MarketPulse `--lateness 0`), and each
symbol's trades arrive in time order, so no engine drops a trade as late.
Each symbol's last window is left out of the comparison: no later trade closes
it, and the engines differ in what they do with such a window (MarketPulse
closes it when its partition has been idle for 2 s, Spark when another
symbol's trades move its global watermark past it, Quix never). A peer that
fails or whose bars differ fails the run, naming the first differing bar.
Quix stamps each bar's record with its window's time (here in 2013), so the
script creates the peers' output topics with `retention.ms=-1`: under the
broker's default retention of 7 days, those bars were deleted within minutes,
before they could be read.
The engines do not do the same work: Quix computes 1-minute bars and three
indicators, Spark 1-minute bars alone, MarketPulse three intervals, 13
indicators and alerts (on Spark too: the same processor, the same records). {history_note}
{_spark_route(result)}"""
