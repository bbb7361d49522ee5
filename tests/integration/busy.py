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


class Throttle:
    """Runs a process a third of the time: ``SIGCONT`` for ``run_s``, ``SIGSTOP`` for twice it.

    A process that shares its core with two others would run so; a stopped one keeps
    its state, its sockets and its wall clock, so its own timers (an idle timeout, a
    session) go on, while its work takes three times as long. Stopped when the process
    ends or :meth:`stop` is called, the process then left running.
    """

    def __init__(self, pid: int, run_s: float = 0.02) -> None:
        import signal
        import threading

        self._pid, self._run_s, self._signal = pid, run_s, signal
        self._done = threading.Event()
        self.stops = 0  # SIGSTOPs sent: the proof it throttled
        self._thread = threading.Thread(target=self._cycle, daemon=True)
        self._thread.start()

    def _cycle(self) -> None:
        try:
            while not self._done.wait(self._run_s):
                os.kill(self._pid, self._signal.SIGSTOP)
                self.stops += 1
                if self._done.wait(2 * self._run_s):
                    break
                os.kill(self._pid, self._signal.SIGCONT)
            os.kill(self._pid, self._signal.SIGCONT)
        except ProcessLookupError:  # it ended: nothing to throttle
            pass

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
