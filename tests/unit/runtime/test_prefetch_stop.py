"""The wait for a feed's next item ends when the stop event is set, even if none ever comes."""

import threading

from marketpulse.runtime.prefetch import Prefetch


class Silent:
    """A live source that cannot connect: yields nothing until closed."""

    def __init__(self):
        self.closed = threading.Event()
        self.waiting = threading.Event()

    def items(self):
        self.waiting.set()
        self.closed.wait()  # a feed blocked in connect attempts and backoff sleeps
        return
        yield


def _consume(prefetch, got):
    for item in prefetch:
        got.append(item)


def test_stop_ends_the_iteration_and_interrupts_a_source_that_yields_nothing():
    source, stop = Silent(), threading.Event()
    prefetch = Prefetch(source.items(), stop=stop, interrupt=source.closed.set)
    got = []
    consumer = threading.Thread(target=_consume, args=(prefetch, got), daemon=True)
    consumer.start()
    assert source.waiting.wait(30)  # the fault: the source is blocked and yields nothing
    assert consumer.is_alive()
    stop.set()
    consumer.join(30)
    assert not consumer.is_alive()  # the iteration ended without an item
    assert got == []
    assert source.closed.is_set()  # and the source was told to stop waiting
    assert not prefetch._thread.is_alive()


def test_a_source_that_ends_is_not_interrupted():
    calls = []
    prefetch = Prefetch(iter([1, 2, 3]), stop=threading.Event(), interrupt=lambda: calls.append(1))
    assert list(prefetch) == [1, 2, 3]
    assert calls == []


def test_a_consumer_that_stops_early_does_not_leave_the_producer_blocked():
    stop = threading.Event()
    prefetch = Prefetch(iter(range(100)), depth=2, stop=stop)
    for item in prefetch:
        if item == 1:
            stop.set()  # the slots are full and the producer waits to put more
    prefetch._thread.join(30)
    assert not prefetch._thread.is_alive()
