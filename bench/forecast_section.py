"""The text of the forecast section: what the stream's forecasting stage costs per prediction."""

from __future__ import annotations

from typing import Any

from section_text import measured, out


def render_forecast(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    f = out(run, "bench_forecast")
    rows = "\n".join(
        f"| `{m['model']}` | {m['seconds']:.2f} | {m['added_seconds']:+.2f} | "
        f"{m['predictions']:,} | "
        + ("-" if m["us_per_prediction"] is None else f"{m['us_per_prediction']:.1f}")
        + " |"
        for m in f["models"]
    )
    return f"""## Forecasting in the stream (`bench/bench_forecast.py`)

{measured(run)}

What the forecasting stage (`--forecast`, [the forecasts guide](guides/forecasts.md))
adds to a replay: `marketpulse replay` of the Lean trades ({f["trades"]:,} trades,
{f["bars"]:,} bars of {f["intervals"]}) into a fresh lake, as a command, with each model
alone at horizons {f["horizons"]} and with none. Best of {f["repeat"]} runs of each,
alternating with runs without models, after a warm-up run; the replay without models took
{f["none_seconds"]:.2f} s. A prediction is one bar at one horizon; the time a model adds
is spread over the predictions it stored (a learned model predicts, then learns, at
every bar).

| model | seconds | added | predictions | µs per prediction |
|---|---:|---:|---:|---:|
{rows}
"""
