"""End-to-end replay throughput: five days of Lean trades through the embedded pipeline.

The Lean day (388,417 trades) is written five times, shifted by 0..4 days, into
one gzip CSV (1.94 million trades). Then, side by side on the same file:

* MarketPulse: ``EmbeddedPipeline`` over ``FileReplay``: read, decode,
  validate, 1s/1m/5m bars, indicators, default alerts, Parquet lake writes;
  timed as a whole run in-process, and as a whole ``marketpulse replay``
  command (process start-up included).
* The batch route a user would otherwise take: pandas reads the CSV,
  resamples each symbol to 1-minute OHLCV bars and TA-Lib computes the same
  indicators on them.

The two in-process routes run in alternating rounds (pipeline, batch route,
pipeline, ...), so that a slow spell of a shared machine weighs on both; the
best of each is reported, with the ratio of their times in every round.

Prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import talib

from marketpulse.alerts import default_rules
from marketpulse.feeds import FileReplay
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LEAN = DATA / "lean-2013-10-07" / "trades.csv.gz"


def make_five_days(target: Path, days: int = 5) -> int:
    """Write the Lean day shifted by 0..days-1 days; return the number of trades."""
    frame = pd.read_csv(LEAN, dtype={"condition": str})
    stamps = pd.to_datetime(frame["timestamp"])
    parts = []
    for shift in range(days):
        part = frame.copy()
        part["timestamp"] = (stamps + pd.Timedelta(days=shift)).dt.strftime(
            "%Y-%m-%dT%H:%M:%S.%f"
        ).str[:-3] + "Z"
        parts.append(part)
    whole = pd.concat(parts, ignore_index=True)
    with gzip.open(target, "wt", compresslevel=6) as out:
        whole.to_csv(out, index=False)
    return len(whole)


def run_pipeline(path: Path, lake: Path) -> dict:
    feed = FileReplay(path)
    options = RunnerOptions(
        lake=str(lake), rules=default_rules(), alerts_file=str(lake / "alerts.jsonl")
    )
    start, cpu = time.perf_counter(), time.process_time()
    snap = EmbeddedPipeline(feed, options).run()
    seconds = time.perf_counter() - start
    return {
        "cpu_seconds": time.process_time() - cpu,
        "seconds": seconds,
        "ticks": snap.ticks_in,
        "bars": snap.bars,
        "indicator_rows": snap.indicator_rows,
        "alerts": snap.alerts,
        "ticks_per_s": snap.ticks_in / seconds,
    }


def run_cli(path: Path, lake: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "marketpulse",
        "replay",
        str(path),
        "--lake",
        str(lake),
        "--alerts-file",
        str(lake / "alerts.jsonl"),
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return {"seconds": time.perf_counter() - start}


def run_pandas_talib(path: Path) -> dict:
    start = time.perf_counter()
    frame = pd.read_csv(path, usecols=["timestamp", "symbol", "price", "size"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    rows = 0
    for _, trades in frame.groupby("symbol", sort=False):
        series = trades.set_index("timestamp")
        bars = series["price"].resample("1min").ohlc()
        bars["volume"] = series["size"].resample("1min").sum()
        bars["pv"] = (series["price"] * series["size"]).resample("1min").sum()
        bars = bars.dropna(subset=["open"])
        close, high, low, volume = (
            bars[c].to_numpy(float) for c in ("close", "high", "low", "volume")
        )
        out = {
            "sma_20": talib.SMA(close, 20),
            "ema_12": talib.EMA(close, 12),
            "ema_26": talib.EMA(close, 26),
            "rsi_14": talib.RSI(close, 14),
            "atr_14": talib.ATR(high, low, close, 14),
            "volume_sma_20": talib.SMA(volume, 20),
        }
        out["macd"], out["macd_signal"], out["macd_hist"] = talib.MACD(close, 12, 26, 9)
        out["bb_upper"], out["bb_middle"], out["bb_lower"] = talib.BBANDS(close, 20, 2, 2, 0)
        session = bars.index.tz_convert("America/New_York").date
        cum = bars.groupby(session)[["pv", "volume"]].cumsum()
        out["vwap"] = (cum["pv"] / cum["volume"].replace(0, np.nan)).to_numpy()
        rows += len(pd.DataFrame(out, index=bars.index))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bars_1m": rows, "ticks_per_s": len(frame) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument(
        "--repeat", type=int, default=5,
        help="rounds; each runs the pipeline, then the batch route (the best of each is reported)",
    )  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mp-bench-"))
    try:
        path = work / "lean-5days.csv.gz"
        trades = make_five_days(path, args.days)
        run_pipeline(path, work / "warm")  # numba's cache and the OS file cache
        run_pandas_talib(path)
        pipelines, batches = [], []
        for i in range(args.repeat):  # interleaved: a slow spell of the machine hits both routes
            pipelines.append(run_pipeline(path, work / f"lake{i}"))
            batches.append(run_pandas_talib(path))
        cli = min(
            (run_cli(path, work / f"cli{i}") for i in range(min(args.repeat, 3))),
            key=lambda r: r["seconds"],
        )
        cli["ticks_per_s"] = trades / cli["seconds"]
        ratios = sorted(
            p["seconds"] / b["seconds"] for p, b in zip(pipelines, batches, strict=True)
        )
        print(
            json.dumps({
                "trades": trades,
                "pipeline": min(pipelines, key=lambda r: r["seconds"]),
                "cli": cli,
                "pandas_talib": min(batches, key=lambda r: r["seconds"]),
                "rounds": args.repeat,
                "round_ratios": ratios,
            })
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
