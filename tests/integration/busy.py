"""A busy CPU for the fault tests: the machine's cores kept busy while a test runs.

A spinner process takes a core whenever the machine has fewer runnable tasks than
cores (``/proc/loadavg``'s running count, sampled every few milliseconds), and sleeps
while others keep every core busy: on a quiet machine it is one busy core beside the
pipeline under test; on a CI machine whose test workers already saturate both cores
the CPU is just as busy, and the spinner does not take turns away from the other
tests. (A spinner that always spun cost CI about 130 CPU-s of its runs, on a machine
where CPU is what the suite waits for.)
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: How long the spinner spins, or sleeps, between two looks at the run queue.
_SLICE_S = 0.005


def running_tasks() -> int:
    """The machine's runnable tasks now, this process included (``/proc/loadavg``)."""
    with open("/proc/loadavg") as loadavg:
        return int(loadavg.read().split()[3].split("/")[0])


def _spin_while_idle(seconds: float) -> None:
    cores = os.cpu_count() or 1
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        if running_tasks() <= cores:  # a core would be idle without this spinner
            stop = now + _SLICE_S
            while time.monotonic() < stop:
                pass
        else:
            time.sleep(_SLICE_S)


@contextmanager
def busy_cpu(seconds: float = 600.0) -> Iterator[None]:
    """Keep the machine's cores busy for the block (at most ``seconds``)."""
    spinner = multiprocessing.get_context("spawn").Process(
        target=_spin_while_idle, args=(seconds,), daemon=True
    )
    spinner.start()
    try:
        yield
    finally:
        spinner.kill()
        spinner.join()
