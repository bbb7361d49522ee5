"""A restore that cannot read ``state`` (its broker away): a stop leaves, a timeout rejoins.

Without a broker the read of a partition's state waits; a Ctrl-C meanwhile
must end the service cleanly (exit 130, not an error after the wait), and a
wait that runs out must not end the service: a new member takes the
partitions again once they can be read.
"""

from __future__ import annotations

from marketpulse.exceptions import BusError
from marketpulse.runtime.process import ProcessService

from .conftest import TOPICS, FakeBus, FakeProcessor, batch, process_options, tp


class AwayBus(FakeBus):
    """A bus whose first ``failures`` reads of ``state`` fail; each consumer plays a script."""

    def __init__(self, log, committed, scripts, failures=1, stop_on_read=False):
        super().__init__(log, committed)
        self.scripts = list(scripts)
        self.failures = failures
        self.stop_on_read = stop_on_read
        self.read_stops: list[object] = []

    def read_partition(self, topic, partition, timeout=60.0, stop=None):
        self.read_stops.append(stop)
        if self.failures:
            self.failures -= 1
            if self.stop_on_read:
                stop.set()  # Ctrl-C while the read waits for the broker
                raise BusError(f"read {topic}[{partition}]: stopped before its end")
            raise BusError(f"read {topic}[{partition}]: end not reached within 70 s")
        return super().read_partition(topic, partition, timeout, stop)

    def consumer(self, group, topics, on_assign, on_revoke, on_lost, **extra):
        self.script = self.scripts.pop(0) if self.scripts else []
        return super().consumer(group, topics, on_assign, on_revoke, on_lost, **extra)


def assign_and_read(*partitions):
    def step(consumer):
        consumer.on_assign([tp(p) for p in partitions])
        return [batch(p, 40, 42) for p in partitions]

    return step


def run(log, bus):
    service = ProcessService(
        bus,  # type: ignore[arg-type]
        TOPICS,
        FakeProcessor(log),  # type: ignore[arg-type]
        process_options(instance="one", output_grace=5.0),
    )
    bus.stop = service.stop
    stats = service.run()
    return service, stats


def test_a_stop_while_the_state_is_read_ends_the_service_without_an_error(log):
    bus = AwayBus(log, {tp(1): 40}, [[assign_and_read(1)]], stop_on_read=True)
    service, stats = run(log, bus)
    assert bus.read_stops == [service.stop]  # the read was given the stop, and was stopped
    assert "read state" not in log.names() and "restore" not in log.names()
    assert "process" not in log.names()  # nothing of the partition was processed
    assert not service._producer.offsets  # nor committed
    assert bus.consumers[0].closed and stats.replaced == 0


def test_a_read_that_runs_out_of_time_rejoins_and_the_next_member_restores(log):
    scripts = [[assign_and_read(1)], [assign_and_read(1)]]
    service, stats = run(log, AwayBus(log, {tp(1): 40}, scripts))
    assert stats.replaced == 1  # the fault: the first restore failed, a new member was made
    assert len(service.bus.consumers) == 2 and service.bus.consumers[0].closed
    assert ("restore", 1) in log and ("process", (1, 40, 42)) in log
    assert service._producer.offsets[-1] == {tp(1): 43}  # read once restored, and committed
