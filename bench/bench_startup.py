"""Start-up: how long a user waits for ``marketpulse --help``, ``sql`` and a replay's first row.

Each command runs many times, each time in a fresh interpreter through the
``marketpulse`` console script (``python -m marketpulse`` where there is none),
as a user runs it, with warm caches: one run of each first fills numba's cache
and writes the bytecode (``.pyc``) of this tree, as an installed package has it
(``PYTHONDONTWRITEBYTECODE`` is removed from the children's environment). The
rounds interleave the commands, so a change in the machine's load weighs on
all of them alike.

* ``help``: ``marketpulse --help``, from spawning the process to its exit.
* ``sql``: ``marketpulse sql "SELECT count(*) FROM bars" --lake LAKE`` over the
  lake the warm-up replay wrote, spawn to exit.
* ``replay``: ``marketpulse replay trades.csv --lake LAKE`` of a small file
  (2,000 synthetic trades of 5 symbols over 10 minutes). Its *first row* is
  the first Parquet file of the ``indicators`` table appearing in the lake
  (files appear whole, by rename), seen by polling every 2 ms: the
  first bars and indicators a user can read. The sink writes this file's rows
  together when the feed ends, so it is an upper bound on the first indicator
  row computed. ``exit`` is the whole command.

Two more rows, in the same rounds, are the replay's *floor*: what a first row
cannot be printed before, each in a fresh interpreter of this Python.

* ``imports``: ``python -c "import numpy, pyarrow, numba"``, the libraries a
  replay's first row cannot do without.
* ``kernels``: those, then the package's processor with its default settings
  (those of the replay measured here: no config file, no option that changes
  the bars or indicators) loading its numba kernels from the warm cache through
  ``Processor.warm_up()``, as a replay does before its first batch.

Both end with ``os._exit(0)``: spawn to exit is then spawn to loaded, without
the interpreter's teardown (tenths of a second once numba's kernels are loaded:
the final collection of their objects), which a replay's first row does not
wait for either.

Prints one JSON object: per command, wall and CPU seconds (user + system of
the child) as p50, p90 and max over the runs, and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import ROOT, machine  # noqa: E402

#: What the issue asks of each figure (seconds).
TARGET_S = 0.5
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE")
#: The floor's children (``python -c``): the libraries, then those and the kernels.
IMPORTS = "import numpy, pyarrow, numba"
KERNELS = f"""{IMPORTS}
from marketpulse.alerts import default_rules
from marketpulse.stream import Processor, ProcessorSettings
Processor(ProcessorSettings(), default_rules()).warm_up()"""


def write_trades(path: Path, trades: int = 2000, minutes: int = 10) -> None:
    """A small trades CSV: ``trades`` trades of 5 symbols spread over ``minutes`` minutes."""
    rng = random.Random(7)
    start = 1_700_000_000_000  # ms, a weekday's UTC afternoon
    step = minutes * 60_000 // trades
    prices = dict.fromkeys(SYMBOLS, 100.0)
    lines = ["timestamp,symbol,price,size"]
    for i in range(trades):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        prices[symbol] = round(prices[symbol] * (1 + rng.gauss(0, 0.0005)), 4)
        ms = start + i * step
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
        lines.append(
            f"{stamp}.{ms % 1000:03d}Z,{symbol},{prices[symbol]},{rng.randint(1, 9) * 100}"
        )
    path.write_text("\n".join(lines) + "\n")


def command() -> tuple[list[str], str]:
    """How a user starts MarketPulse here: the console script beside this Python, else ``-m``."""
    script = Path(sys.executable).with_name("marketpulse")
    if script.exists():
        return [str(script)], str(script)
    return [sys.executable, "-m", "marketpulse"], f"{sys.executable} -m marketpulse"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
    )  # this tree's source, whichever tree the console script was installed from
    return env


def timed(argv: list[str], env: dict[str, str], first: Path | None = None) -> dict[str, float]:
    """Run one command; wall and CPU seconds, and when ``first``'s first file appeared."""
    seen = None
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if first is not None:
        while seen is None and proc.poll() is None:
            if first.is_dir() and any(p.suffix == ".parquet" for p in first.rglob("*")):
                seen = time.perf_counter() - start
            else:
                time.sleep(0.002)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}:\n{stderr[-3000:]}")
    figures = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime}
    if first is not None:
        if seen is None and first.is_dir() and any(first.rglob("*.parquet")):
            seen = wall  # written in the poll's last interval
        if seen is None:
            raise SystemExit(f"{' '.join(argv)} wrote no file under {first}")
        figures["first_row"] = seen
    return figures


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    return {"p50": at(0.5), "p90": at(0.9), "max": ordered[-1], "min": ordered[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs of each command")
    args = parser.parse_args()
    base, shown = command()
    env = child_env()
    work = Path(tempfile.mkdtemp(prefix="mp-bench-startup-"))
    try:
        trades = work / "trades.csv"
        write_trades(trades)
        lake = work / "lake"

        def replay(target: Path) -> list[str]:
            return [*base, "replay", str(trades), "--lake", str(target),
                    "--alerts-file", str(target / "alerts.jsonl")]  # fmt: skip

        sql = [*base, "sql", "SELECT count(*) FROM bars", "--lake", str(lake)]
        imports, kernels = (
            [sys.executable, "-c", f"{code}\nimport os\nos._exit(0)"] for code in (IMPORTS, KERNELS)
        )
        commands = {  # run i: the command, and the folder whose first file is its first row
            "help": lambda i: ([*base, "--help"], None),
            "sql": lambda i: (sql, None),
            "replay": lambda i: (replay(work / f"lake{i}"), work / f"lake{i}" / "indicators"),
            "imports": lambda i: (imports, None),
            "kernels": lambda i: (kernels, None),
        }
        timed(replay(lake), env)  # warm-up: numba's cache, bytecode, the lake sql reads
        timed([*base, "--help"], env)
        timed([*base, "sql", "SELECT 1", "--lake", str(lake)], env)
        timed(imports, env)
        timed(kernels, env)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in commands}
        for i in range(args.runs):
            for name, make in commands.items():
                argv, first = make(i)
                runs[name].append(timed(argv, env, first))
                if first is not None:
                    shutil.rmtree(first.parent, ignore_errors=True)
        result = {
            name: {figure: summary([r[figure] for r in measured]) for figure in measured[0]}
            for name, measured in runs.items()
        }
        print(json.dumps({
            "runs": args.runs, "command": shown, "machine": machine(), "target_s": TARGET_S,
            "load_end": os.getloadavg()[0], **result,
        }))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
