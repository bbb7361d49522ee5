"""The scale-in-symbols section of docs/benchmarks.md, and its plot (docs/scale.svg).

The plot is a small hand-written SVG (no plotting library): catch-up rate and
peak memory of ``marketpulse process`` against the number of symbols, on a
logarithmic axis, with the targets of issue 24 drawn as dashed lines.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from section_text import arg, measured, out, verdict

__all__ = ["TARGET_MB", "TARGET_RATE", "render_scale", "svg", "write_svg"]

#: Issue 24: at 100,000 symbols at least 300,000 ticks/s within 4 GB.
TARGET_RATE = 300_000
TARGET_MB = 4096
#: The relays of ``bench/scale_floor.py`` a run holds, in the table's order.
FLOORS = ("floor", "floor_trades", "floor_state")
_W, _H, _PAD = 300, 220, 52


def _panel(x0: int, title: str, points: list[tuple[int, float]], target: float, unit: str) -> str:
    """One chart: ``points`` (symbols, value) on a log x axis, ``target`` dashed."""
    xs = [math.log10(s) for s, _ in points]
    lo, hi = min(xs + [1.0]), max(xs + [5.0])
    top = max([v for _, v in points] + [target]) * 1.15
    left, right, up, down = x0 + _PAD, x0 + _W - 26, 30, _H - 34

    def px(x: float) -> float:
        return left + (x - lo) / ((hi - lo) or 1) * (right - left)

    def py(v: float) -> float:
        return down - v / top * (down - up)

    parts = [
        f'<text x="{x0 + _W / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>',
        f'<line x1="{left}" y1="{down}" x2="{right}" y2="{down}" stroke="black"/>',
        f'<line x1="{left}" y1="{up}" x2="{left}" y2="{down}" stroke="black"/>',
    ]
    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        x = px(decade)
        parts.append(
            f'<text x="{x:.1f}" y="{down + 14}" text-anchor="middle">{10**decade:,}</text>'
        )
    parts.append(f'<text x="{(left + right) / 2}" y="{_H - 4}" text-anchor="middle">symbols</text>')
    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<text x="{left - 4}" y="{py(v) + 4:.1f}" text-anchor="end">{v / 1:,.0f}</text>'
        )
    parts.append(f'<text x="{x0 + 4}" y="{up - 8}">{unit}</text>')
    parts.append(
        f'<line x1="{left}" y1="{py(target):.1f}" x2="{right}" y2="{py(target):.1f}" '
        'stroke="#c33" stroke-dasharray="5,4"/>'
        f'<text x="{right}" y="{py(target) - 4:.1f}" text-anchor="end" fill="#c33">target</text>'
    )
    path = " ".join(f"{px(math.log10(s)):.1f},{py(v):.1f}" for s, v in points)
    parts.append(f'<polyline points="{path}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    for s, v in points:
        parts.append(
            f'<circle cx="{px(math.log10(s)):.1f}" cy="{py(v):.1f}" r="3.5" fill="#1f5fa8"/>'
        )
    return "\n".join(parts)


def svg(result: dict[str, Any]) -> str:
    """The plot of a bench_scale result: rate (left) and peak RSS (right) by symbols."""
    runs = result["runs"]
    rate = [(r["symbols"], r["ticks_per_s"] / 1000) for r in runs]
    memory = [(r["symbols"], r["peak_rss_mb"]) for r in runs]
    body = "\n".join(
        (
            _panel(0, "catch-up rate through Kafka", rate, TARGET_RATE / 1000, "k ticks/s"),
            _panel(_W, "peak RSS of marketpulse process", memory, TARGET_MB, "MB"),
        )
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H}" '
        f'viewBox="0 0 {2 * _W} {_H}" font-family="sans-serif" font-size="10">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n{body}\n</svg>\n'
    )


def write_svg(result: dict[str, Any], path: Path) -> None:
    """Write :func:`svg` of ``result`` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(result))


def render_scale(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    """The section's text from a saved bench_scale run."""
    result = out(run, "bench_scale")
    ticks = int(arg(run, "bench_scale", "--ticks", "5000000"))
    rows = []
    for r in result["runs"]:
        bars = sum(r["bars"]["by_interval"].values())
        first, second = r["first"], r["second"]
        rows.append(
            f"| {r['symbols']:,} | {r['ticks']:,} | {r['ticks_per_s']:,.0f} | "
            f"{first['peak_rss_mb']:,.0f} / {second['peak_rss_mb']:,.0f} | "
            f"{r['restore_seconds']:.2f} | {first['share_at_kill']:.0%} | {bars:,} | "
            f"{bars / r['ticks']:.3g} | "
            f"{'yes' if r['bars_complete'] else '**no**'} | {r['preload']['ticks_per_s']:,.0f} | "
            + " | ".join(_rate(r, key) for key in FLOORS)
            + " |"
        )
    largest = max(result["runs"], key=lambda r: r["symbols"])
    judged = (
        f"at {largest['symbols']:,} symbols {largest['ticks_per_s']:,.0f} ticks/s "
        f"({verdict(largest['ticks_per_s'] >= TARGET_RATE)}) and a peak of "
        f"{largest['peak_rss_mb']:,.0f} MB ({verdict(largest['peak_rss_mb'] <= TARGET_MB)})"
    )
    if largest["symbols"] < 100_000 or largest["ticks"] < 1_000_000:
        judged = f"not judged (this run's largest size: {largest['symbols']:,} symbols)"
    elif ticks != 5_000_000:
        judged += f" over {ticks:,} ticks (the script's default run has 5,000,000)"
    return f"""## Scale in symbols (`bench/bench_scale.py`)

{measured(run)}

![catch-up rate and peak memory against symbols](scale.svg)

At each size a fresh `ticks` topic ({result["partitions"]} partitions, {result["broker"]})
gets {ticks:,} simulated trades (the same count at every size; the simulator's
virtual clock at {result["event_rate"]:,.0f} trades/s, so every size spans the same
market time and more symbols mean more bars per tick). `marketpulse process`
runs as deployed (its own interpreter, default settings: 1s/1m/5m bars, 13
indicators, default alerts, exactly-once transactions carrying the changed
symbols' state). The first service is killed (SIGKILL) once half of `ticks` is
committed; a second one with the same instance id restores every symbol's
state from the `state` topic and finishes. Rate: the topic's trades over both
services' wall time (start-ups, restore and redone work included). Memory: the
peak resident set of each service. Restore: the second service's own time to
read `state` and restore its partitions. Bars complete: the committed `bars`
topic holds exactly one bar for every (symbol, interval, window) with a trade.

| symbols | ticks | ticks/s | peak RSS MB (first / second) | restore s | committed at kill | bars | bars per tick | bars complete | preload ticks/s | floor: outputs | floor: + trades | floor: + state |
|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|
{chr(10).join(rows)}

Each bar also makes an indicator row, and each transaction writes the state
of every symbol it changed (its open windows, the indicator state of each of
its intervals and its alert state{_state_size(largest)}): with more symbols, a tick
closes more bars and changes a symbol no other tick of its transaction
changed, so the work per tick grows with the symbols even at the same tick
count.

{_memory_per_symbol(result["runs"])}Against the target of issue 24, at 100,000 symbols at least {TARGET_RATE:,} ticks/s
within {TARGET_MB / 1024:g} GB: {judged}.{_floor_text(largest)}
"""


def _memory_per_symbol(runs: list[dict[str, Any]]) -> str:
    """What a symbol adds to a service's peak memory: the slope between the two largest sizes.

    The second service's peak is taken (it restores every symbol's state, then
    carries on); a run with one size says nothing.
    """
    sizes = sorted(runs, key=lambda r: r["symbols"])
    if len(sizes) < 2:
        return ""
    low, high, smallest = sizes[-2], sizes[-1], sizes[0]
    peak = {r["symbols"]: r["second"]["peak_rss_mb"] * 1024 for r in sizes}  # KB
    grown = (peak[high["symbols"]] - peak[low["symbols"]]) / 1024  # MB
    per = (peak[high["symbols"]] - peak[low["symbols"]]) / (high["symbols"] - low["symbols"])
    overall = (peak[high["symbols"]] - peak[smallest["symbols"]]) / (
        high["symbols"] - smallest["symbols"]
    )
    return f"""Memory per symbol: from {low["symbols"]:,} to {high["symbols"]:,} symbols the
restored service's peak resident set grows by {grown:,.0f} MB, {per:.1f} KB a symbol
({overall:.1f} KB a symbol from {smallest["symbols"]:,} symbols): its
open windows, the indicator state of each of its intervals, its alert slots, its
name, and the batch arrays and client queues that grow with the bars a poll closes.

"""


def _state_size(largest: dict[str, Any]) -> str:
    """The mean size of a symbol's state record at the largest size (runs that have it)."""
    size = largest.get("state_bytes")
    if size is None:
        return ""
    return f"; at {largest['symbols']:,} symbols {size / 1024:.1f} KB on average, the last ones written"


def _rate(run: dict[str, Any], key: str) -> str:
    return f"{run[key]['ticks_per_s']:,.0f}" if key in run else "n/a"


def _floor_text(largest: dict[str, Any]) -> str:
    """What the relays with no processing reached at the largest size (runs that have them)."""
    floor = largest.get("floor")
    if floor is None:
        return ""
    per_tick = floor["written"] / floor["ticks"]
    text = f"""

Floors (`bench/scale_floor.py`): after the services, a relay reads the same
`ticks` with the service's consumer and writes, per tick, as many records as the
service wrote bars and indicator rows (here {per_tick:.2f}, of {floor["value_bytes"]:,} bytes, the
mean size of theirs) in transactions with the offsets, committed after each poll
once 0.1 s has passed since the last, through the service's producer, decoding and
computing nothing (*outputs*). At
{largest["symbols"]:,} symbols it moved {floor["ticks_per_s"]:,.0f} ticks/s ({floor["written"]:,} records
out in {floor["transactions"]:,} transactions)."""
    ceiling = floor
    with_trades, with_state = largest.get("floor_trades"), largest.get("floor_state")
    if with_trades is not None and with_state is not None:
        ceiling = with_state
        if with_trades["copied"] >= with_trades["ticks"]:  # runs from before the references
            trades_text = f"""copies
each trade it keeps to `trades` and writes the state of every symbol a
transaction changed to `state`. With a copy of each tick as well (of
{with_trades["trades_bytes"]:,} bytes, the mean of the service's; *+ trades*)"""
        else:
            trades_text = f"""names
the trades it kept of each batch it read on `ticks` in a reference to `trades` and
writes the state of every symbol a transaction changed to `state`. With one record
for every batch it read as well (of {with_trades["trades_bytes"]:,} bytes, the mean of the
service's references; *+ trades*)"""
        text += f""" The service, with its default settings, also {trades_text} the relay moved
{with_trades["ticks_per_s"]:,.0f} ticks/s; with, besides, one record of {with_state["state_bytes"]:,} bytes
(the mean of the service's state records) for every symbol read since the last
commit, before each commit (*+ state*: {with_state["state_records"]:,} records in
{with_state["transactions"]:,} transactions), {with_state["ticks_per_s"]:,.0f} ticks/s. Its
transactions hold more ticks than the service's (which commits every 0.1 s under a
backlog), so it writes fewer state records per tick than the service does."""
    if ceiling["ticks_per_s"] < TARGET_RATE:
        verdict_text = (
            "below the target: the Kafka traffic the service makes with its default settings, "
            "on these clients and these two cores, sets that ceiling before any decoding, "
            "computing or encoding"
        )
        if with_trades is not None and with_trades["ticks_per_s"] < TARGET_RATE:
            verdict_text += (
                "; even without any state (*+ trades*), the outputs alone keep any engine that "
                "writes them below the target here"
            )
    else:
        verdict_text = (
            "above the target: the traffic alone allows it, and the difference to the "
            "service's rate is its own work (decoding, bars, indicators, alerts, encoding "
            "the outputs and the state)"
        )
    return f"{text} The last floor is {verdict_text}."
