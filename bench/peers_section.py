"""The peers section of docs/benchmarks.md: MarketPulse beside Quix Streams and PySpark."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, spread

__all__ = ["render_peers"]

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
}
GUARANTEE = {
    "raw": "none (reads only)",
    "marketpulse": "exactly-once",
    "quix-at-least-once": "at-least-once",
    "quix-exactly-once": "exactly-once",
    "spark": "at-least-once (Kafka sink)",
}
NAME = {
    "raw": "raw confluent-kafka",
    "marketpulse": "MarketPulse",
    "quix-at-least-once": "Quix Streams",
    "quix-exactly-once": "Quix Streams",
    "spark": "PySpark",
}


def _cell(value: float | None, fmt: str) -> str:
    return "n/a" if value is None else format(value, fmt)


def render_peers(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The section from bench_peers' JSON."""
    result = out(run, "bench_peers")
    peers = result["peers"]
    raw = peers.get("raw")
    mp = peers.get("marketpulse")
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
until its `availableNow` query has finished). "Start-up" is the part until the
engine was built and about to read; CPU and peak memory are its whole process
tree's (Spark's JVM included), sampled every 0.2 s. "x MarketPulse" is the
engine's time over MarketPulse's.

| engine | what it does | guarantee | seconds | trades/s | x raw rate | x MarketPulse time | start-up s | CPU s | peak memory MB |
|---|---|---|---:|---:|---:|---:|---:|---:|---:|
{chr(10).join(rows)}

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
indicators and alerts. {history_note}
"""
