"""Write docs/forecasts.md: `marketpulse forecast evaluate --doc` over three datasets.

- the Lean day (`../shared/data/lean-2013-10-07/trades.csv.gz`), 1-second and
  1-minute bars, as `marketpulse replay` stores them;
- the Kaggle world indices (`../shared/data/kaggle-stock-exchange/indexProcessed.csv`),
  daily bars, replayed in date order (the file is grouped by index);
- a simulated session (10 symbols, seed 0), 1-minute bars.

Each dataset is stored in a lake of a temporary folder by the embedded pipeline,
then evaluated by the command twice, each writing its section of the page: the
prequential models and the baselines over every bar, then the walk-forward models
(gbm, lstm) with the baselines over their test windows' bars. The page's prose
around the sections is kept. Usage: `make forecasts` (about ten minutes).
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
from pathlib import Path

from marketpulse.feeds import FileReplay, Simulator
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.stream import ProcessorSettings

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
LEAN = DATA / "lean-2013-10-07" / "trades.csv.gz"
KAGGLE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
PAGE = ROOT / "docs" / "forecasts.md"
S = 10**9
OPEN = 1_709_649_000 * S  # 2024-03-05 09:30 New York (14:30 UTC), a Tuesday


def store(feed, lake: Path, intervals: tuple[str, ...], dataset: str) -> None:
    """Run a feed through the embedded pipeline into ``lake`` (event time only)."""
    settings = ProcessorSettings(intervals=intervals, idle_timeout=None)
    options = RunnerOptions(lake=str(lake), rules=[], processor=settings, dataset=dataset)
    EmbeddedPipeline(feed, options).run()


def by_date(source: Path, target: Path) -> Path:
    """The Kaggle file in date order (its rows are grouped by index)."""
    with source.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = sorted(reader, key=lambda r: r[1])  # Date, ISO: sorts as text; stable by index
    with target.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([header, *rows])
    return target


def evaluate(lake: Path, dataset: str, page: Path, *args: str) -> None:
    """The command, writing the dataset's section of ``page``."""
    command = [sys.executable, "-m", "marketpulse", "forecast", "evaluate", "--lake", str(lake),
               "--dataset", dataset, "--doc", str(page), "--format", "csv", *args]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


#: The walk-forward evaluation's models: the trained ones, and the baselines on the same bars.
WALK_FORWARD = ("--models", "gbm,lstm,online-linear,persistence,always-up,drift,random")


def main(argv: list[str] | None = None) -> int:
    """Store each dataset, evaluate it into the page; 0 on success."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=PAGE)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seed = ("--seed", str(args.seed))
    with tempfile.TemporaryDirectory(prefix="forecasts-") as tmp:
        work = Path(tmp)
        store(FileReplay(LEAN), work / "lean", ("1s", "1m"), "lean-2013-10-07")
        evaluate(work / "lean", "lean-2013-10-07", args.page, "--horizons", "1,5", *seed)
        evaluate(work / "lean", "lean-2013-10-07", args.page, "--horizons", "1,5", *seed,
                 *WALK_FORWARD)  # fmt: skip
        daily = by_date(KAGGLE, work / "indexProcessed.csv")
        store(FileReplay(daily), work / "kaggle", ("1d",), "kaggle-indices")
        evaluate(work / "kaggle", "kaggle-indices", args.page, "--horizons", "1,5", *seed)
        evaluate(work / "kaggle", "kaggle-indices", args.page, "--horizons", "1,5", *seed,
                 *WALK_FORWARD)  # fmt: skip
        session = 6 * 3_600 + 1_800
        sim = Simulator(symbols=10, rate=20.0, seed=args.seed, start_ts=OPEN, realtime=False,
                        max_events=20 * session)  # fmt: skip
        store(sim, work / "sim", ("1m",), "simulated")
        evaluate(work / "sim", "simulated", args.page, "--horizons", "1,5", *seed)
        evaluate(work / "sim", "simulated", args.page, "--horizons", "1,5", *seed,
                 *WALK_FORWARD)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
