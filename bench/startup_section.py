"""The text of the start-up section: ``--help``, ``sql`` and a replay's first row, as users run them."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, spread, verdict


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _row(
    label: str,
    wall: dict[str, float],
    cpu: dict[str, float],
    target: float | None,
    judged: str = "",
) -> str:
    judged = judged or ("no target" if target is None else verdict(wall["p50"] <= target))
    return (
        f"| {label} | {_ms(wall['p50'])} | {_ms(wall['p90'])} | {_ms(wall['max'])} | "
        f"{_ms(cpu['p50'])} | {judged} |"
    )


def _floor(s: dict[str, Any], target: float) -> str:
    """What sets the replay's floor, with the floor rows' figures when the run has them."""
    help_, replay = s["help"], s["replay"]
    first = replay["first_row"]["p50"]
    causes = (
        f"the interpreter and typer (all of `--help`: {_ms(help_['wall']['p50'])} ms), "
        "typer's pydantic coercion of the command's options, numpy and pyarrow, numba's "
        "import and its first cache load (numba installs its typing and lowering registries "
        "before it loads any cached kernel), pandas (a dependency: pyarrow imports it on "
        "its first conversion: `Schema.empty_table()`, `pa.array` of a list or of a numpy "
        "array, `Array.to_numpy()`, all of which a replay calls), then the kernels themselves"
    )
    if "imports" not in s or "kernels" not in s:  # a run from before the floor rows
        return f"What sets the replay's floor: {causes}."
    imports, kernels = s["imports"]["wall"]["p50"], s["kernels"]["wall"]["p50"]
    gap = (
        f"{_ms(first - kernels)} ms after the floor (typer and its options, reading the file, "
        "the pipeline's stages, the Parquet file)"
        if first >= kernels
        else "within the spread of the floor's own runs"
    )
    if imports > target:
        judged = (
            f"The libraries' imports alone are above the target of {_ms(target)} ms: on this "
            "machine no replay that imports them in its own process can meet it."
        )
    elif kernels > target:
        judged = (
            f"The floor is above the target of {_ms(target)} ms: on this machine no replay "
            "that imports these libraries and loads its kernels in its own process can meet it."
        )
    else:
        judged = f"The floor is under the target of {_ms(target)} ms."
    return (
        f"What sets the replay's floor: {causes}. The *floor* rows measure it in fresh "
        "interpreters of the same Python, in the same rounds, each exiting at once "
        "(`os._exit`) when done: `import numpy, pyarrow, numba` takes "
        f"{_ms(imports)} ms (CPU {_ms(s['imports']['cpu']['p50'])} ms); those, the "
        "package's processor and its numba kernels loaded from the warm cache by "
        "`Processor.warm_up()` (the call a replay makes before its first batch, with the "
        f"replay's default settings) take {_ms(kernels)} ms (CPU "
        f"{_ms(s['kernels']['cpu']['p50'])} ms), so the package's modules, pandas and the "
        f"kernels add {_ms(kernels - imports)} ms to the libraries. No replay can write its "
        f"first row before that; the replay measured here wrote it at {_ms(first)} ms, "
        f"{gap}. {judged}"
    )


def render_startup(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    s = out(run, "bench_startup")
    target = s["target_s"]
    help_, sql, replay = s["help"], s["sql"], s["replay"]
    floors = [
        _row(label, s[key]["wall"], s[key]["cpu"], None, "floor (no target)")
        for key, label in (
            ("imports", '`python -c "import numpy, pyarrow, numba"`'),
            ("kernels", "those, and the kernels loaded (`Processor.warm_up()`)"),
        )
        if key in s  # runs from before the floor rows lack them
    ]
    history_note = spread(
        history,
        "the replay's median first row in milliseconds",
        lambda r: out(r, "bench_startup")["replay"]["first_row"]["p50"] * 1000,
    )
    rows = "\n".join(
        [
            _row("`marketpulse --help`", help_["wall"], help_["cpu"], target),
            _row('`marketpulse sql "SELECT count(*) FROM bars"`', sql["wall"], sql["cpu"], target),
            _row("`marketpulse replay`: first row", replay["first_row"], replay["cpu"], target),
            _row("`marketpulse replay`: exit", replay["wall"], replay["cpu"], None),
            *floors,
        ]
    )
    return (
        f"""## Start-up (`bench/bench_startup.py`)

{measured(run)}

Each command run {s["runs"]} times, each in a fresh interpreter through `{s["command"]}`,
with warm caches (numba's kernels and the package's bytecode written by a first run of
each), the commands interleaved. Wall time is from spawning the process to its exit; a
replay's *first row* is the first Parquet file of the `indicators` table appearing in
the lake (polled every 2 ms), replaying 2,000 trades of 5 symbols: the first bars
and indicators a user can read. The lake sink writes them when the feed ends, so this
bounds the first indicator row computed from above. CPU is the child's user + system time
(the p50 of the command; for the replay, of the whole command).

| command | p50 ms | p90 ms | max ms | CPU p50 ms | target {_ms(target)} ms (p50) |
|---|---:|---:|---:|---:|---|
{rows}

Against the target of issue 24, each under {_ms(target)} ms: `--help`
{verdict(help_["wall"]["p50"] <= target)}, `sql` {verdict(sql["wall"]["p50"] <= target)},
replay's first row {verdict(replay["first_row"]["p50"] <= target)}. A command imports
only what it runs: `--help` loads none of numpy, pyarrow, numba, pandas or the clients
(`tests/integration/test_cli_startup_imports.py`). {_floor(s, target)} On a loaded
machine the wall times stretch while the CPU times move less: compare the CPU column
across runs. {history_note}
""".rstrip()
        + "\n"
    )
