"""What the stream's forecasting stage costs: the Lean day replayed with and without models.

``marketpulse replay`` of the Lean trades into a fresh lake, as a command, with
each model of the catalogue alone (``--forecast MODEL --forecast-horizons 1,5``)
and with none; best of ``--repeat`` runs of each after a warm-up run. What a
model adds is its best run's time less the best run without models, per
prediction it stored (a bar, at each horizon). The runs alternate (none,
model, none, model, ...) so that a machine getting busier mid-run loads both
alike.

    python bench/bench_forecast.py [--repeat 3] [--intervals 1s,1m] [--models a,b]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAN = ROOT.parent / "shared" / "data" / "lean-2013-10-07" / "trades.csv.gz"
HORIZONS = "1,5"
#: The models the stream runs (the online learners and the baselines).
MODELS = "online-linear,online-tree,persistence,always-up,drift,random"


def replay(lake: Path, intervals: str, model: str | None) -> tuple[float, dict[str, int]]:
    """One replay as a command; its wall time and the counts its summary line gives."""
    forecast = ["--forecast", model, "--forecast-horizons", HORIZONS] if model else []
    command = [sys.executable, "-m", "marketpulse", "replay", str(LEAN), "--lake", str(lake),
               "--intervals", intervals, *forecast]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=lake.parent)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench_forecast: {' '.join(command)}: {proc.stderr.strip()[-400:]}")
    return seconds, _counts(proc.stdout + proc.stderr)


def _counts(text: str) -> dict[str, int]:
    line = next((x for x in text.splitlines() if x.startswith("done: ")), "")
    found = dict(re.findall(r"(ticks in|bars|predictions) ([\d,]+)", line))
    return {k.split()[0]: int(v.replace(",", "")) for k, v in found.items()}


def predictions(lake: Path) -> int:
    """The predictions a replay stored."""
    proc = subprocess.run(
        [sys.executable, "-m", "marketpulse", "sql", "SELECT count(*) AS n FROM predictions",
         "--lake", str(lake), "--format", "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(json.loads(proc.stdout)[0]["n"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--intervals", default="1s,1m")
    parser.add_argument("--models", default=MODELS)
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)

        def one(model: str | None, n: int) -> tuple[float, dict[str, int], Path]:
            lake = where / f"lake-{model or 'none'}-{n}"
            seconds, counts = replay(lake, args.intervals, model)
            return seconds, counts, lake

        one(None, -1)  # warm-up: kernels loaded, files cached
        best: dict[str, float] = {}
        stored: dict[str, int] = {}
        counts: dict[str, int] = {}
        for model in models:
            for n in range(args.repeat):
                seconds, counts, _ = one(None, n)
                best["none"] = min(best.get("none", float("inf")), seconds)
                seconds, _, lake = one(model, n)
                best[model] = min(best.get(model, float("inf")), seconds)
                stored[model] = predictions(lake)
                print(f"bench_forecast: {model} run {n + 1}: {seconds:.2f} s", file=sys.stderr)
    rows = []
    for model in models:
        added = best[model] - best["none"]
        rows.append({
            "model": model, "seconds": round(best[model], 3), "added_seconds": round(added, 3),
            "predictions": stored[model],
            "us_per_prediction": round(added / stored[model] * 1e6, 2) if stored[model] else None,
        })  # fmt: skip
    print(json.dumps({
        "trades": counts.get("ticks", 0), "bars": counts.get("bars", 0),
        "intervals": args.intervals, "horizons": HORIZONS, "repeat": args.repeat,
        "none_seconds": round(best["none"], 3), "models": rows,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
