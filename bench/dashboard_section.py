"""The dashboard section of docs/benchmarks.md: tick-to-screen latency, its parts, server CPU."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, verdict


def render_dashboard(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    result = out(run, "bench_dashboard")
    rows = "\n".join(
        f"| {r['symbols']:,} | {r['ticks_per_s']:,.0f} | {r['updates_per_s']:g} | "
        f"{r['samples']:,} | {r.get('p50_ms', 0):.1f} / {r.get('p90_ms', 0):.1f} / "
        f"{r['p99_ms']:.1f} / {r.get('max_ms', 0):.1f} | "
        + " / ".join(f"{v:.3f}" for _, v in sorted(r.get("cpu_per_s", {}).items(),
                                                  key=lambda kv: int(kv[0])))
        + f" | {r.get('cpu_per_browser', float('nan')):.3f} |"
        for r in result["dashboard"]
    )  # fmt: skip
    judged = [r for r in result["dashboard"]
              if r["symbols"] == 500 and r["updates_per_s"] == 20 and r["ticks_per_s"] >= 9_500]  # fmt: skip
    if judged:
        r = judged[0]
        target = (
            f"p99 at most 100 ms: {verdict(r['p99_ms'] <= 100)} (p99 {r['p99_ms']:.1f} ms over "
            f"{r['samples']:,} rows); at most 5 % of a core per browser: "
            f"{verdict(r.get('cpu_per_browser', 1.0) <= 0.05)} "
            f"({100 * r.get('cpu_per_browser', float('nan')):.1f} %)"
        )
    else:
        target = "not judged (no run of 500 symbols at 10,000 ticks/s and 20 updates/s)"
    # where the time goes: the parts the page measured for each row (runs before they were
    # measured have none, and their section goes without)
    covers = {
        "pipeline": "trade stamp → the live view has it: the simulator's delivery grid "
        "(a trade waits up to 25 ms for its delivery) and the pipeline",
        "wait": "→ the server reads the view for an update: its update period (a trade "
        "that comes just after an update waits up to a period for the next)",
        "send": "→ the page takes the message: composing, serialising, sending, the socket, "
        "the page's queue of tasks",
        "draw": "→ the page's drawing script has run: parsing, the wait for the next frame "
        "(up to 16.7 ms at 60 frames/s), the script",
        "render": "→ the frame is done: style, layout and paint (software)",
    }

    def waits_p99(bounds: list[float], step: float = 0.1) -> float:
        """The p99 of a sum of independent waits, each uniform on [0, bound] ms."""
        dist = [1.0]
        for bound in bounds:
            n = max(1, round(bound / step))
            prefix = [0.0]
            for p in dist + [0.0] * (n - 1):
                prefix.append(prefix[-1] + p)
            dist = [
                (prefix[i + 1] - prefix[max(0, i + 1 - n)]) / n for i in range(len(dist) + n - 1)
            ]
        total = 0.0
        for i, p in enumerate(dist):
            total += p
            if total >= 0.99:
                return i * step
        return len(dist) * step

    parted = [r for r in result["dashboard"] if r.get("parts")]
    parts = ""
    for r in parted:
        table = "\n".join(
            f"| {name} | {covers.get(name, '')} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} |"
            for name, p in r["parts"].items()
        )
        top = max(r["parts"], key=lambda name: r["parts"][name]["p99_ms"])
        period = 1000 / r["updates_per_s"]
        floor = waits_p99([25.0, period, 1000 / 60])
        parts += f"""
Where the time goes, {r["symbols"]:,} symbols at {r["updates_per_s"]:g} updates/s per client
(each row's times, consecutive: the parts add up to its latency; percentiles of each part
taken apart, so the p99s do not add up to the p99):

| part | from the previous mark (the trade's stamp for the first) | p50 ms | p99 ms |
|---|---|---:|---:|
{table}

The largest part at p99 is {top} ({r["parts"][top]["p99_ms"]:.1f} ms). Three waits are
set by the settings, not by code: the delivery grid (up to 25 ms, in pipeline), the update
period (up to {period:.0f} ms at {r["updates_per_s"]:g} updates/s: wait) and the next frame
(up to 16.7 ms, in draw). As independent uniform waits their sum alone has a p99 of
{floor:.0f} ms: the floor of the tick-to-screen p99 here, which leaves
{100 - floor:.0f} ms of the 100 ms target to the work of the pipeline, the server, the
socket and the page.
"""
    return f"""## Dashboard (`bench/bench_dashboard.py`)

{measured(run)}

Tick-to-screen latency: the simulator (each trade stamped with its scheduled
wall-clock time, delivered every 25 ms) feeds the embedded pipeline, whose
dashboard headless Chromium (Debian's, software rendering) shows. For each
watchlist row of each WebSocket update whose trade is new, the page notes
when the frame that draws it is done (a `requestAnimationFrame` queued after
the page's own, then a message that runs after that frame's rendering): the
latency is that moment minus the trade's stamp. Only rows in the viewport
count (the page draws rows out of view at most once a second). It includes
the simulator's delivery grid, the pipeline, the server's update period (an
update waits up to one period), the socket, the page's parsing, drawing,
style, layout and paint. Server CPU: CPU seconds per second of the process
that runs the pipeline and the server (not the browsers), with 0, 1, ... pages
connected; per browser: the slope from 1 page on (the first page also starts
the updates, read and serialised once for every page). Pipeline, server and
browsers share the two cores.

| symbols | ticks/s | updates/s per client | rows in view | p50 / p90 / p99 / max ms | server CPU s/s by pages | per browser |
|---:|---:|---:|---:|---|---|---:|
{rows}
{parts}
Against the targets of issue 24 (500 symbols, 10,000 ticks/s, 20 updates/s): {target}.
"""
