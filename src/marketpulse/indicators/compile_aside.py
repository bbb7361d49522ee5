"""Compiling the declared indicators' kernels in a second process, beside a warm-up.

numba compiles one kernel at a time in a process (under one lock), so a first
run's warm-up, tens of seconds on an empty cache, keeps one core busy. While
the processor's warm-up compiles the kernels of its windows and quotes, a
second process compiles the declared indicators' kernels into numba's cache,
with the argument types the processor passes (:func:`warm_up`); when the
warm-up reaches them, it loads them from there. A second process that fails
or is late costs nothing but its core: the warm-up then compiles them itself.

Run as ``python -m marketpulse.indicators.compile_aside DECLARATIONS``.
"""

from __future__ import annotations

import logging
import subprocess
import sys

from marketpulse.indicators.declare import DeclaredSet

__all__ = ["finish", "start"]

logger = logging.getLogger(__name__)


def start(declared: DeclaredSet) -> subprocess.Popen[bytes] | None:
    """Start compiling the kernels of ``declared`` in a second process (``None``: not started).

    It inherits the environment, and with it numba's cache location; it prints nothing.
    """
    try:
        return subprocess.Popen(
            [sys.executable, "-m", __name__, declared.text],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:  # the warm-up compiles them itself
        logger.debug("indicator kernels not compiled aside: %s", exc)
        return None


def finish(process: subprocess.Popen[bytes]) -> None:
    """End the second process: its kernels are in the cache by now, or no longer needed."""
    if process.poll() is None:
        process.kill()
    process.wait()


def _main(text: str) -> None:
    from marketpulse.indicators.declare import parse_set
    from marketpulse.indicators.state import warm_up

    warm_up(parse_set(text))


if __name__ == "__main__":
    _main(sys.argv[1])
