"""The text of the soak section: each command's memory over a long run, as users run it."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, verdict


def _mb(value: float | None, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def _commands(soak: dict[str, Any]) -> list[str]:
    """Each case's commands as they were run (temporary paths and topic prefixes included)."""
    return [
        f"- {case}: `marketpulse {' '.join(f['args'])}`"
        for case, figures in soak["cases"].items()
        for f in figures["processes"].values()
    ]


def _rows(soak: dict[str, Any]) -> list[str]:
    rows = []
    for case, figures in soak["cases"].items():
        for name, f in figures["processes"].items():
            rate = "—" if f["per_s"] is None else f"{f['per_s']:,.0f}"
            rows.append(
                f"| {case} | `{name}` | {len(f['samples']):,} | {_mb(f['rss_first_mb'])} / "
                f"{_mb(f['rss_start_mb'])} / {_mb(f['rss_end_mb'])} / {_mb(f['rss_max_mb'])} | "
                f"{_mb(f['rss_slope_mb_per_min'], '+.2f')} | {rate} | "
                f"{figures['load'][0]:.1f} / {figures['load'][1]:.1f} |"
            )
    return rows


def render_soak(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    soak = out(run, "bench_soak")
    title = "## Memory over a long run (`bench/bench_soak.py`)"
    if "cases" not in soak:  # the bench before it ran the commands (an in-process copy)
        return f"""{title}

{measured(run)}

The latest saved run measured an in-process copy of the pipeline, not the commands
users run: its figures are not shown. `python bench/run_all.py --only soak` runs them.
"""
    judged = soak["minutes"] >= 30 and soak["rate"] >= 20_000
    cases = soak["cases"]
    if judged:
        result = ", ".join(
            f"{case}: {verdict(c['growth_ok'] and c['rate_ok'])}" for case, c in cases.items()
        )
    else:
        result = (
            f"not judged (each command ran {soak['minutes']:g} minutes at "
            f"{soak['rate']:,.0f} trades/s; the target names 30 minutes at 20,000)"
        )
    short = "" if judged else f" The figures below are from runs of {soak['minutes']:g} minutes."
    symbols = (
        "the simulator's default symbols"
        if soak["symbols"] is None
        else f"`--symbols {soak['symbols']}`"
    )
    under = ", ".join(
        f"{case}: {verdict(c['growth_ok'])}" + ("" if c["rate_ok"] else " (rate **not kept**)")
        for case, c in cases.items()
    )
    note = f" {run['note']}" if run.get("note") and run["load_average"].get("start") else ""
    return f"""{title}

{measured(run)}{note}

Each command runs as a subprocess, as users type it, for {soak["minutes"]:g} minutes
(`--duration`), the simulator at `--rate {soak["rate"]:.0f}` trades/s with {symbols}:

{chr(10).join(_commands(soak))}

Every process's resident memory (VmRSS) is sampled every {soak["every_s"]:g} s while the
feed runs; its growth rate is the least-squares slope of the samples after a warm-up
of {soak["warmup_s"]:g} s. The rate column is what the process read or sent per second
after the warm-up (`run`: trades in; `produce`: ticks, quotes included; `process`
and `sink lake`: records in). The commands share {soak["cpus"]} cores with whatever
else the machine ran (the load averages: at the case's start / end).{short}

| case | process | samples | RSS first / after warm-up / end / max MB | growth MB/min | per s | load |
|---|---|---:|---:|---:|---:|---:|
{chr(10).join(_rows(soak))}

Under {soak["target_mb_per_min"]:g} MB/min after warm-up in this run: {under}.
Against the target of issue 34, flat under {soak["target_mb_per_min"]:g} MB/min after warm-up
over 30 minutes at 20,000 trades/s: {result}.
"""
