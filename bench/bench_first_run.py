"""First run: from ``git clone`` to the first live row of ``make run``, then a second run.

What a new user does, timed as they wait for it: ``git clone`` of this
repository's committed ``HEAD`` into a temporary folder, then ``make run`` in a
pseudo-terminal (the live view draws as on a user's screen), with package
caches warm (uv's and pip's, as on a machine that installed these pins once)
and numba's kernel cache empty: the clone's own ``__pycache__`` folders, where
kernels go when ``NUMBA_CACHE_DIR`` is not set (it is removed from the
children's environment, with the CI's locator, and so is ``PYTHONDONTWRITEBYTECODE``:
uv installs no bytecode, so the first run compiles the modules it imports, as
a user's does, and later runs load them). The dashboard is served as
``make run`` serves it, on a free port (``--port 0``).

Times are from the start of ``git clone``, read off what the terminal shows:

* ``installed``: make prints the ``marketpulse run`` command (the virtual
  environment and the runtime installed: ``make``'s install stamp);
* ``started``: the command's first line (its imports and settings done);
* ``compiling``: the first ``compiling kernels: n/N`` progress line, and
  ``kernels ready``: the processor's log line saying so (the compile time it
  states is kept too);
* ``first row``: the first row of a symbol in the live table. The CPU time
  (user + system) the command and its children had used by then is kept too:
  on a loaded machine the wall times stretch, the CPU times much less.

Then ``make run`` again in the same clone, ``--second`` times: its kernels now
load from the cache, and only ``first row`` (from ``make run``'s start) counts.
For comparison, ``--pip`` installs the same runtime with pip into a fresh
virtual environment (``python -m venv``, ``pip install -e .``), as the Makefile
did before uv, its cache warm too.

``--smoke`` runs ``marketpulse run`` of this tree's environment twice, for a
second each, without a clone, an install or an empty cache (the kernel cache
in force is kept: the CI's, warm from its tests): it checks that the
script and its section still work, and measures nothing worth keeping.

Prints one JSON object (the last line).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Issue 38's targets: clone to first live row, and a second run's first live row.
FIRST_RUN_TARGET_S = 30.0
SECOND_RUN_TARGET_S = 2.0
_CSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
_ROW = re.compile(r"^[A-Z][A-Z.]{0,5}\s+[\d,]+\.\d\d\s", re.MULTILINE)
_PROGRESS = re.compile(r"compiling kernels: \d+/(\d+)")
_READY = re.compile(r"kernels ready in ([\d.]+) s")
_ZERO_FIGURES = re.compile(r"ticks/s in 0 .*\bticks 0\b")
_SUMMARY = re.compile(r"done: ticks in ([\d,]+).*?([\d,.]+[kM]?) ticks/s over ([\d.]+) (m?s)")


def _env(own_cache: bool = True) -> dict[str, str]:
    """The children's environment: a user's, without MarketPulse's settings.

    With ``own_cache``, without the kernel cache set for this process (the CI's) either.
    """
    # a user's Python writes bytecode: the first run compiles what it imports, the next load it
    drop = ("COLUMNS", "LINES", "NO_COLOR", "PYTHONDONTWRITEBYTECODE")
    if own_cache:
        drop += ("NUMBA_CACHE_DIR", "NUMBA_CACHE_LOCATOR_CLASSES")
    env = {
        k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MARKETPULSE_")
    }
    env["TERM"] = "xterm-256color"
    return env


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its descendants so far, exited ones included."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited meanwhile
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        # utime, stime and the waited-for children's cutime, cstime (fields 14 to 17)
        times[child] = sum(int(v) for v in fields[11:15]) / tick
    tree, todo = set(), [pid]
    while todo:
        node = todo.pop()
        tree.add(node)
        todo.extend(c for c, p in parents.items() if p == node and c not in tree)
    return sum(times.get(node, 0.0) for node in tree)


def _in_terminal(
    command: list[str], cwd: Path, started: float, timeout: float, own_cache: bool = True
) -> dict[str, Any]:
    """Run ``command`` in a 120 x 40 terminal; when each event showed, from ``started``."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = _env(own_cache)
    proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    raw = bytearray()
    seen: dict[str, float] = {}
    marks = {
        "installed": lambda text: "marketpulse run" in text,
        "started": lambda text: re.search(r"INFO|WARNING|compiling|waiting for", text),
        "compiling": lambda text: _PROGRESS.search(text),
        "kernels_ready": lambda text: _READY.search(text),
        "first_row": lambda text: _ROW.search(text),
    }
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.02)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal: it has exited
                    break
                if not data:
                    break
                raw += data
                now = time.monotonic() - started
                text = _CSI.sub(b"", bytes(raw)).decode(errors="replace")
                for name, found in marks.items():
                    if name not in seen and found(text):
                        seen[name] = now
                        if name == "first_row":
                            seen["cpu_to_first_row"] = _tree_cpu(proc.pid)
            elif proc.poll() is not None:
                break
        else:
            raise RuntimeError(f"{' '.join(command)}: still running after {timeout} s")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}: {bytes(raw[-2000:])!r}")
    return _read(_CSI.sub(b"", bytes(raw)).decode(errors="replace"), seen)


def _read(text: str, seen: dict[str, float]) -> dict[str, Any]:
    """The events' times, the progress and figures lines shown before the first row."""
    if "first_row" not in seen:
        raise RuntimeError(f"no live row was drawn: {text[-2000:]}")
    before = text[: _ROW.search(text).start()]  # type: ignore[union-attr]
    ready = _READY.search(text)
    progress = _PROGRESS.findall(text)
    summary = _SUMMARY.search(text)
    return {
        **{f"{name}_s": round(at, 3) for name, at in seen.items()},  # cpu_to_first_row_s too
        "kernels_compiled": int(progress[-1]) if progress else 0,
        "compile_stated_s": float(ready[1]) if ready else None,
        "zero_tick_lines_before_first_row": len(_ZERO_FIGURES.findall(before)),
        "summary": summary[0] if summary else None,
    }


def _pip_install(folder: Path) -> float:
    """Seconds to install the clone's runtime with pip into a fresh virtual environment."""
    venv = folder / ".venv-pip"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=folder, env=_env())
    subprocess.run([*pip, "-e", "."], check=True, cwd=folder, env=_env())
    return round(time.monotonic() - started, 3)


def _run_args(duration: float, lake: Path) -> str:
    return f"--duration {duration:g} --port 0 --lake {lake}"


def measure(duration: float, second: int, pip: bool, timeout: float) -> dict[str, Any]:
    """Clone, ``make run`` cold, then ``make run`` ``second`` times warm."""
    folder = Path(tempfile.mkdtemp(prefix="marketpulse-first-run-"))
    try:
        clone = folder / "clone"
        started = time.monotonic()
        subprocess.run(["git", "clone", "-q", ROOT, clone], check=True)
        clone_s = time.monotonic() - started
        make = ["make", "run", f"ARGS={_run_args(duration, folder / 'lake')}"]
        cold = _in_terminal(make, clone, started, timeout)
        kernels = len(list(clone.glob("src/marketpulse/**/__pycache__/*.nbi")))
        seconds = []
        for _ in range(second):
            again = time.monotonic()
            seconds.append(_in_terminal(make, clone, again, timeout))
        return {
            "clone_s": round(clone_s, 3),
            "cold": cold,
            "kernels_saved": kernels,
            "second": seconds,
            "pip_install_s": _pip_install(clone) if pip else None,
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def smoke(timeout: float) -> dict[str, Any]:
    """Two short runs of this tree's environment: the script's plumbing, nothing worth keeping."""
    folder = Path(tempfile.mkdtemp(prefix="marketpulse-first-run-smoke-"))
    try:
        command = [sys.executable, "-m", "marketpulse", "run", "--symbols", "3", "--no-dashboard"]
        command += ["--duration", "1", "--lake", str(folder / "lake")]
        runs = []
        for _ in range(2):
            started = time.monotonic()
            runs.append(_in_terminal(command, folder, started, timeout, own_cache=False))
        return {"clone_s": 0.0, "cold": runs[0], "kernels_saved": 0, "second": runs[1:],
                "pip_install_s": None}  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each run")
    parser.add_argument("--second", type=int, default=3, help="warm runs after the first")
    parser.add_argument("--no-pip", action="store_true", help="skip the pip comparison")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per command")
    parser.add_argument("--smoke", action="store_true", help="two short runs, no clone")
    args = parser.parse_args()
    result = (
        smoke(args.timeout)
        if args.smoke
        else measure(args.duration, args.second, not args.no_pip, args.timeout)
    )
    result.update(
        duration_s=args.duration,
        smoke=args.smoke,
        targets={"first_run_s": FIRST_RUN_TARGET_S, "second_run_s": SECOND_RUN_TARGET_S},
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
