"""The text of the Kaggle section: a daily file replayed into the lake, and a report over it."""

from __future__ import annotations

from typing import Any

from section_text import measured, out, spread, verdict


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.0f} kB"


def render_kaggle(run: dict[str, Any], history: list[dict[str, Any]]) -> str:
    k = out(run, "bench_kaggle")
    replay, targets = k["replay"], k["targets"]
    history_note = spread(
        history,
        "the replay's wall time in milliseconds",
        lambda r: out(r, "bench_kaggle")["replay"]["seconds"] * 1000,
    )
    return f"""## Daily bars: the Kaggle index file (`bench/bench_kaggle.py`)

{measured(run)}

`{k["file"]}`: {k["rows"]:,} daily bars of {k["symbols"]} indices, {k["first_date"]} to
{k["last_date"]} ({_size(k["input_bytes"])}), replayed into a fresh lake with
`marketpulse replay FILE --lake lake`, then `marketpulse report movers --start 1965-01-01
--end 2021-12-31 --lake lake`, both as commands. Best of {k["repeat"]} runs after a
warm-up run.

| | measured | target (issue 19) | |
|---|---:|---:|---|
| replay, wall time | {replay["seconds"]:.2f} s | at most {targets["replay_seconds"]:g} s | {verdict(replay["seconds"] <= targets["replay_seconds"])} |
| files written | {replay["files"]:,} ({replay["parquet_files"]:,} Parquet in {replay["folders"]:,} folders, {_size(replay["bytes"])}) | at most {targets["files"]} | {verdict(replay["files"] <= targets["files"])} |
| `report movers`, wall time | {k["report_seconds"]:.2f} s | at most {targets["report_seconds"]:g} s | {verdict(k["report_seconds"] <= targets["report_seconds"])} |

Of the report's {k["report_seconds"]:.2f} s, about {k["startup_seconds"]:.2f} s is the
command starting (interpreter, imports: `marketpulse --help` alone takes that long; the
CLI imports pandas, numba and the stream processor only in the commands that use them).
The query itself, on a new connection in-process, takes {k["report_query_seconds"]:.3f} s
for its {k["report_rows"]} rows. Issue 19 reported that the same replay wrote 29,314 files
(269 MB) in 69 s before, and that each later report took 10 to 36 s, when the lake
had one folder per table and trading day; daily and longer timeframes are
now partitioned by decade (see the layout in the README). {history_note}
"""
