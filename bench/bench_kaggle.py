"""The Kaggle daily index file replayed into a fresh lake, then ``report movers`` over it.

Both as the commands a user types, in a fresh working directory each run:

    marketpulse replay ../shared/data/kaggle-stock-exchange/indexProcessed.csv --lake lake
    marketpulse report movers --start 1965-01-01 --end 2021-12-31 --lake lake

Measured: the replay's wall time and the files it writes (every file under
the working directory: the lake's Parquet files and anything else), and the
report's wall time as a command and, in-process, the query alone (the command
adds interpreter start-up and imports). Each is the best of ``--repeat`` runs
after a warm-up run (numba's cache, the OS file cache). ``--rows-per-symbol``
keeps the first rows of each index (for a quick smoke run). Prints one JSON
object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

from marketpulse.analytics import Lake
from marketpulse.analytics.reports import ReportRange, report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
KAGGLE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
START, END = "1965-01-01", "2021-12-31"
TARGETS = {"replay_seconds": 5.0, "files": 100, "report_seconds": 1.0}


def _command(*args: str, cwd: Path) -> float:
    """Run ``marketpulse ARGS`` in ``cwd``; its wall time in seconds."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", *args],
        cwd=cwd, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"marketpulse {' '.join(args)} exited {result.returncode}:\n"
                         f"{result.stderr[-3000:]}")  # fmt: skip
    return seconds


def replay(path: Path, work: Path) -> dict:
    """Replay ``path`` into ``work/lake`` (a fresh directory); time it and count its files."""
    work.mkdir()
    seconds = _command("replay", str(path), "--lake", "lake", cwd=work)
    files = [f for f in work.rglob("*") if f.is_file()]
    parquet = [f for f in files if f.suffix == ".parquet"]
    return {
        "seconds": seconds,
        "files": len(files),
        "parquet_files": len(parquet),
        "bytes": sum(f.stat().st_size for f in files),
        "folders": len({f.parent for f in parquet}),
    }


def report_command(work: Path) -> float:
    return _command("report", "movers", "--start", START, "--end", END, "--lake", "lake",
                    "--format", "json", cwd=work)  # fmt: skip


def report_in_process(lake: Path) -> tuple[float, int]:
    """The movers query alone, on a new connection (as a command makes one)."""
    started = time.perf_counter()
    with Lake(lake) as opened:
        rows = report(opened, "movers", ReportRange(date.fromisoformat(START),
                                                    date.fromisoformat(END)))  # fmt: skip
    return time.perf_counter() - started, rows.num_rows


def startup() -> float:
    """Wall time of ``marketpulse --help``: interpreter start-up and the CLI's imports."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "marketpulse", "--help"], capture_output=True,
                   check=True)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", type=Path, default=KAGGLE)
    parser.add_argument("--rows-per-symbol", type=int, default=0,
                        help="keep this many rows of each index (0: all)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is reported")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-bench-kaggle-"))
    try:
        path = args.file
        frame = pd.read_csv(path)
        if args.rows_per_symbol:
            frame = frame.groupby("Index", sort=False).head(args.rows_per_symbol)
            path = work / "indexProcessed.csv"
            frame.to_csv(path, index=False)
        replay(path, work / "warm")
        runs = [replay(path, work / f"run{i}") for i in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        lake = work / "run0" / "lake"
        report_command(work / "run0")  # warm-up
        command = min(report_command(work / "run0") for _ in range(args.repeat))
        in_process = min(report_in_process(lake) for _ in range(args.repeat))
        print(json.dumps({
            "file": path.name,
            "rows": len(frame),
            "symbols": int(frame["Index"].nunique()),
            "first_date": str(frame["Date"].min()),
            "last_date": str(frame["Date"].max()),
            "input_bytes": path.stat().st_size,
            "replay": best,
            "replay_seconds_all": [r["seconds"] for r in runs],
            "report_seconds": command,
            "report_query_seconds": in_process[0],
            "report_rows": in_process[1],
            "startup_seconds": min(startup() for _ in range(args.repeat)),
            "repeat": args.repeat,
            "targets": TARGETS,
        }))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
