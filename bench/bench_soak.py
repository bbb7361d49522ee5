"""Memory of long runs, as users run the commands: each one's RSS over time and its growth rate.

Runs each case for ``--minutes`` as subprocesses typed as users type them, the
simulator with its defaults but ``--rate`` (trades per second; ``--symbols``
to change the simulator's default count):

* ``run``: ``marketpulse run --rate R --duration D --no-dashboard`` (the embedded bus);
* ``run-kafka``: the same with ``--kafka BOOTSTRAP --topic-prefix <unique>.``;
* ``services``: ``marketpulse produce --feed simulator`` into Kafka, read by
  ``marketpulse process`` and ``marketpulse sink lake`` (topics made by
  ``marketpulse topics create`` under a unique prefix, deleted afterwards).

Every ``--every`` seconds each process's VmRSS is read from /proc. After a
warm-up, a process's growth rate is the least-squares slope of its samples
taken while the feed ran, in MB per minute; the target is under 1 MB/min for
every process over 30 minutes at 20,000 trades/s. A case's rate is checked
too: ``run``'s trades in, or ``process`` keeping up with ``produce``.

    python bench/bench_soak.py [--minutes 30] [--rate 20000] [--every 5] [--case run ...]
    python bench/bench_soak.py --minutes 0.3 --every 1      # a quick smoke run

Progress goes to standard error; one JSON object is the last line of standard output.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from soak_procs import Watched, start, user_env

#: The growth the target allows after warm-up, in MB per minute.
TARGET_MB_PER_MIN = 1.0
#: Share of the requested rate a run must reach (or of produce's, process) for its figure to count.
RATE_SHARE = 0.9
#: Progress lines of each command: the count they print.
TICKS_IN = r"^ticks ([\d,]+) \("
PRODUCED = r"produced ([\d,]+) ticks"
PROCESSED = r"process: ([\d,]+) records in"
SUNK = r"sink lake: ([\d,]+) records"
CASES = ("run", "run-kafka", "services")
#: Seconds a command may take past its duration to drain and exit.
DRAIN_S = 180.0
#: ``--exit-when-idle`` of process and sink lake (``--idle-exit``): long enough for a loaded
#: machine's start-up.
IDLE_EXIT_S = 30.0


def feed_args(args: argparse.Namespace) -> list[str]:
    symbols = [] if args.symbols is None else ["--symbols", str(args.symbols)]
    return ["--rate", f"{args.rate:g}", *symbols, "--duration", f"{args.minutes * 60:g}"]


def sample_until(watched: list[Watched], start_at: float, seconds: float, every: float) -> None:
    """Sample every process each ``every`` seconds until ``seconds`` have passed or all exited."""
    while (now := time.monotonic() - start_at) < seconds and any(
        w.proc.poll() is None for w in watched
    ):
        for w in watched:
            w.sample()
        figures = " ".join(f"{w.name} {w.rss[-1][1]:.0f} MB" for w in watched if w.rss)
        print(f"  {now:7.1f} s: {figures}", file=sys.stderr, flush=True)
        time.sleep(every - (time.monotonic() - start_at) % every)


def marketpulse(args: list[str], cwd: Path) -> None:
    """Run a one-off command (topics create/delete); fail with its output."""
    result = subprocess.run([sys.executable, "-m", "marketpulse", *args], cwd=cwd,
                            env=user_env(), capture_output=True, text=True)  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"marketpulse {' '.join(args)}: {result.stderr.strip()[-500:]}")


def run_case(case: str, args: argparse.Namespace, work: Path) -> list[Watched]:
    """Run one case; return its commands, sampled and exited."""
    duration = args.minutes * 60
    prefix = f"soak-{case}-{os.getpid()}-{int(time.time())}."
    kafka = ["--bootstrap-servers", args.bootstrap, "--topic-prefix", prefix]
    if case in ("run", "run-kafka"):
        start_at = time.monotonic()
        bus = ["--kafka", args.bootstrap, "--topic-prefix", prefix] if case == "run-kafka" else []
        command = ["run", *feed_args(args), "--no-dashboard", "--lake", str(work / "lake"), *bus]
        watched = [start(case.replace("-", " --"), command, TICKS_IN, work, start_at)]
        sample_until(watched, start_at, duration, args.every)
        watched[0].wait(DRAIN_S)
    else:
        marketpulse(["topics", "create", *kafka], work)
        # the services stop by themselves once the feed has stopped and they have caught up
        idle = ["--exit-when-idle", f"{args.idle_exit:g}"]
        start_at = time.monotonic()
        watched = [
            start("process", ["process", *kafka, "--group", "soak-process", *idle], PROCESSED,
                  work, start_at),
            start("sink lake", ["sink", "lake", *kafka, "--group", "soak-sink", *idle, "--lake",
                                str(work / "lake")], SUNK, work, start_at),
            start("produce", ["produce", "--feed", "simulator", *feed_args(args), *kafka],
                  PRODUCED, work, start_at),
        ]  # fmt: skip
        sample_until(watched, start_at, duration, args.every)
        for w in (watched[2], *watched[:2]):
            w.wait(DRAIN_S)
    if case != "run":
        marketpulse(["topics", "delete", "--yes", *kafka], work)
    return watched


def judge(case: str, figures: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict:
    """Whether each process stayed under the target and the case kept its rate."""
    growth_ok = all(
        f["rss_slope_mb_per_min"] is not None and f["rss_slope_mb_per_min"] < TARGET_MB_PER_MIN
        for f in figures.values()
    )
    exits_ok = all(f["exit"] == 0 for f in figures.values())
    if case == "services":  # quotes are ticks too: process is judged against what produce sent
        wanted, got = figures["produce"]["per_s"], figures["process"]["per_s"]
    else:
        (only,) = figures.values()
        wanted, got = args.rate, only["per_s"]
    rate_ok = bool(wanted and got and got >= RATE_SHARE * wanted)
    return {"growth_ok": growth_ok, "rate_ok": rate_ok, "exits_ok": exits_ok}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="each case's length (30)")
    parser.add_argument("--rate", type=float, default=20000.0, help="trades per second (20000)")
    parser.add_argument("--symbols", type=int, default=None,
                        help="simulated symbols (default: the simulator's)")  # fmt: skip
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples (5)")
    parser.add_argument(
        "--warmup", type=float, default=None,
        help="seconds left out of the slope (default: a third of the run, at most 180)",
    )  # fmt: skip
    parser.add_argument(
        "--idle-exit", type=float, default=IDLE_EXIT_S,
        help=f"the services' --exit-when-idle, seconds ({IDLE_EXIT_S:g}; a smoke run's can be short)",
    )  # fmt: skip
    parser.add_argument("--case", action="append", choices=CASES,
                        help="run only this case (repeatable; default: all)")  # fmt: skip
    parser.add_argument(
        "--bootstrap", default=os.environ.get("MARKETPULSE_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
        help="Kafka of the Kafka cases (default: MARKETPULSE_KAFKA_BOOTSTRAP or 127.0.0.1:9092)",
    )  # fmt: skip
    args = parser.parse_args()
    if not args.minutes > 0 or not args.every > 0 or not args.rate > 0 or not args.idle_exit > 0:
        parser.error("--minutes, --every, --rate and --idle-exit must be positive")
    duration = args.minutes * 60.0
    # warm-up: kernels, allocator arenas, the live view's recent tables (256 of them)
    warmup = min(180.0, duration / 3) if args.warmup is None else args.warmup
    cases: dict[str, Any] = {}
    failed = []
    for case in args.case or CASES:
        print(f"{case}:", file=sys.stderr, flush=True)
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix=f"soak-{case}-") as work:
            watched = run_case(case, args, Path(work))
        figures = {w.name: w.figures(warmup, duration) for w in watched}
        verdicts = judge(case, figures, args)
        cases[case] = {"processes": figures, "load": [round(load, 2),
                                                      round(os.getloadavg()[0], 2)], **verdicts}  # fmt: skip
        for w in watched:
            f = figures[w.name]
            print(f"  {w.name}: RSS {f['rss_start_mb']} -> {f['rss_end_mb']} MB after warm-up, "
                  f"{f['rss_slope_mb_per_min']} MB/min; {f['per_s']}/s; exit {f['exit']}",
                  file=sys.stderr, flush=True)  # fmt: skip
            if f["exit"] != 0:
                failed.append(f"{case}: {w.name} exited {f['exit']}: " + "\n".join(w.tail))
    result = {
        "rate": args.rate,
        "symbols": args.symbols,
        "minutes": args.minutes,
        "warmup_s": warmup,
        "every_s": args.every,
        "target_mb_per_min": TARGET_MB_PER_MIN,
        "rate_share": RATE_SHARE,
        "cpus": os.cpu_count(),
        "cases": cases,
        "target_met": all(c["growth_ok"] and c["rate_ok"] for c in cases.values()),
    }
    print(json.dumps(result), flush=True)
    if failed:
        print("bench_soak: " + "\n".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
