"""Pieces every benchmark section's text is made of: a saved run's outputs, verdicts, spreads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def out(run: dict[str, Any], key: str) -> Any:
    """The output (JSON object or text) of one script of a saved run."""
    return run["runs"][key]["output"]


def arg(run: dict[str, Any], key: str, name: str, default: str) -> str:
    """The value of option ``name`` in the command a script was run with."""
    command = run["runs"][key]["command"]
    return command[command.index(name) + 1] if name in command else default


def measured(run: dict[str, Any]) -> str:
    load = run["load_average"]
    if load.get("start") is None:
        return f"Measured at {run['measured_at']} (commit `{run['commit']}`). {run.get('note', '')}"
    return (
        f"Measured at {run['measured_at']} (commit `{run['commit']}`), load average (1 min) "
        f"{load['start']} at the start and {load['end']} at the end (above 1: other work "
        "shared the two cores, and the figures are lower bounds for the machine)."
    )


def spread(history: list[dict[str, Any]], label: str, pick: Callable[[dict], float]) -> str:
    """``label`` ranged over the saved runs: '' with fewer than two runs."""
    values = []
    for run in history:
        try:
            values.append((pick(run), run["measured_at"][:10]))
        except (KeyError, TypeError, ValueError):
            continue  # an older run without this figure
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    return (
        f"Over the {len(values)} saved runs of this section, {label} ranged from "
        f"{low[0]:,.0f} ({low[1]}) to {high[0]:,.0f} ({high[1]})."
    )
