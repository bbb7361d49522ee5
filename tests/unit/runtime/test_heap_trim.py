"""Heap trimming gives freed memory back to the system (glibc), and runs once per process."""

import subprocess
import sys
import textwrap
import threading
import time

from marketpulse.runtime import heap_trim

_SCRIPT = textwrap.dedent(
    """
    from marketpulse.runtime.heap_trim import trim

    def rss_mb():
        with open("/proc/self/status") as status:
            line = next(line for line in status if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    # a backlog's buffers: many small blocks from malloc, then freed but for a few that
    # pin the heap, as records still in use do (glibc then keeps the freed pages)
    blocks = [bytes(2000) + bytes([i % 256]) for i in range(100_000)]
    pinned = blocks[::200]
    del blocks
    before = rss_mb()
    assert trim()
    print(before, rss_mb())
    """
)


def test_a_trim_returns_the_freed_pages_of_the_heap():
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before - after > 100, (before, after)  # about 200 MB were freed


def test_trimming_starts_one_thread_per_process(monkeypatch):
    monkeypatch.setattr(heap_trim, "_thread", None)
    monkeypatch.setattr(heap_trim, "_stopping", stopping := threading.Event())
    calls = []
    monkeypatch.setattr(heap_trim, "_TRIM", lambda pad: calls.append(pad) or 1)
    assert heap_trim.start_trimming(interval=0.01)
    first = heap_trim._thread
    assert heap_trim.start_trimming(interval=0.01)
    assert heap_trim._thread is first and first.daemon
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:
        time.sleep(0.01)
    stopping.set()
    first.join(5)
    assert not first.is_alive()
    assert calls and set(calls) == {0}
