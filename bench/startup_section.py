"""The text of the start-up section: ``--help``, ``sql`` and a replay's first row, as users run them."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, spread, verdict


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f}"


def _row(label: str, wall: dict[str, float], cpu: dict[str, float], target: float | None) -> str:
    judged = "no target" if target is None else verdict(wall["p50"] <= target)
    return (
        f"| {label} | {_ms(wall['p50'])} | {_ms(wall['p90'])} | {_ms(wall['max'])} | "
        f"{_ms(cpu['p50'])} | {judged} |"
    )


def render_startup(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    s = out(run, "bench_startup")
    target = s["target_s"]
    help_, sql, replay = s["help"], s["sql"], s["replay"]
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
(`tests/integration/test_cli_startup_imports.py`). What sets the replay's floor: the
interpreter and typer (about 0.1 s), typer's pydantic coercion of the command's options,
numpy and pyarrow, numba's import and its first cache load (numba installs its typing
and lowering registries before it loads any cached kernel), then the kernels themselves;
where pandas is installed (not in the image), pyarrow imports it on the first array it
builds. On a loaded machine the wall times stretch while the CPU times move less: compare
the CPU column across runs. {history_note}
""".rstrip()
        + "\n"
    )
