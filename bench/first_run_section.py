"""The text of the first-run section: ``git clone`` to the first live row of ``make run``, cold and warm."""

from __future__ import annotations

import statistics
from typing import Any

from section_text import measured, out, spread, verdict


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _step(cold: dict[str, Any], start: str, end: str) -> float | None:
    if end not in cold:
        return None
    return cold[end] - (cold.get(start, 0.0) if start else 0.0)


def render_first_run(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    s = out(run, "bench_first_run")
    cold, targets = s["cold"], s["targets"]
    first, second_target = cold["first_row_s"], targets["second_run_s"]
    warm = [r["first_row_s"] for r in s["second"]]
    warm_p50 = statistics.median(warm) if warm else None
    warm_cpu = [r["cpu_to_first_row_s"] for r in s["second"] if "cpu_to_first_row_s" in r]
    cpu_p50 = statistics.median(warm_cpu) if warm_cpu else None
    installed = cold.get("installed_s")
    steps = [
        ("`git clone`", s["clone_s"]),
        ("virtual environment and runtime installed (uv; `make`'s install stamp)",
         None if installed is None else installed - s["clone_s"]),
        ("`marketpulse run`: imports, settings, pipeline built, to its first line",
         _step(cold, "installed_s", "started_s")),
        ("kernels compiled (to the processor's `kernels ready`)",
         _step(cold, "started_s", "kernels_ready_s")),
        ("kernels ready to the first row of the live table",
         _step(cold, "kernels_ready_s", "first_row_s")),
    ]  # fmt: skip
    rows = "\n".join(f"| {label} | {_s(value)} |" for label, value in steps)
    pip = s.get("pip_install_s")
    pip_note = (
        f" With pip instead (`python -m venv`, then `pip install --upgrade pip` and `pip "
        f"install -e .`, as the Makefile did before uv, pip's cache warm), the install alone "
        f"took {_s(pip)} s in the same run. pip also compiles the bytecode of every file it "
        "installs; uv leaves that to the first import, so the first run's imports include "
        "compiling what it imports (a second run loads it)."
        if pip
        else ""
    )
    history_note = spread(
        history,
        "the clone-to-first-row seconds",
        lambda r: out(r, "bench_first_run")["cold"]["first_row_s"],
    )
    return (
        f"""## First run (`bench/bench_first_run.py`)

{measured(run)}

What a new user waits for: `git clone` of the repository's committed `HEAD`, then `make
run ARGS="--duration {s["duration_s"]:g} --port 0"` in a pseudo-terminal of 120 x 40,
uv's and pip's caches warm and numba's kernel cache empty (the clone's own `__pycache__`,
where kernels go without `NUMBA_CACHE_DIR`). Each time is read off the terminal as it
draws, from the start of `git clone`; the *first row* is the first symbol row of the live
table. Then `make run` again in the same clone, {len(warm)} times, its kernels loaded from
the cache.

| step of the first run | seconds |
|---|---:|
{rows}
| **clone to first live row** | **{_s(first)}** |

| figure | measured | CPU s by then | target (issue 38) | |
|---|---:|---:|---:|---|
| clone to the first live row, first run | {_s(first)} s | {_s(cold.get("cpu_to_first_row_s"))} \
| {targets["first_run_s"]:g} s | {verdict(first <= targets["first_run_s"])} |
| `make run` to the first live row, second run (median of {len(warm)}) | {_s(warm_p50)} s | \
{_s(cpu_p50)} | {second_target:g} s | \
{verdict(warm_p50 is not None and warm_p50 <= second_target)} |

The CPU column is the user and system time of `make run` and everything it started
(uv, the command's threads), `git clone` left out, at the moment the first row showed:
what the steps cost, whatever else shared the cores. These steps run mostly on one core
(the compiles on two), so on an idle machine their wall time is near it or below; it is
not a measurement of that.

The first run compiled {cold["kernels_compiled"]} kernels (the processor said
{_s(cold["compile_stated_s"])} s; {s["kernels_saved"]} saved in the clone's cache): the
declared indicators' kinds and the pipeline's, each once, none of the other kinds.
Meanwhile the terminal showed `compiling kernels: n/N (first run only; later runs load
them)` and {cold["zero_tick_lines_before_first_row"]} figures lines of zero ticks. The
second runs' first rows: {", ".join(_s(w) for w in warm)} s.{pip_note} Compiling is
CPU-bound: numba compiles one kernel at a time in a process (under one lock), so on a
first run a second process compiles the declared indicators' kernels into the cache
(`marketpulse.indicators.compile_aside`) while the warm-up compiles the others; a loaded
machine stretches both: see the load average above. {history_note}
""".rstrip()
        + "\n"
    )
