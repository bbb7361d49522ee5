"""The process service at least once, on the in-memory bus.

Outputs go out at once, outside the transactions; state and offsets still
commit together. Without a crash the output topics hold what the processor
makes of the ticks, once; after a crash, the outputs sent since the last
commit come again, each the same as its first copy, and nothing is missing.
"""

from __future__ import annotations

import pytest

from marketpulse.config import ProcessSettings
from marketpulse.exceptions import ConfigError
from marketpulse.runtime.process import AT_LEAST_ONCE, ProcessOptions

from .test_process_on_memory_bus import (
    COMPARED,
    PARTITIONS,
    TOPICS,
    Crash,
    assert_same,
    committed,
    loaded_bus,
    service,
)
from .test_process_on_memory_bus import expected as expected  # noqa: F401 - the fixture


def test_without_a_crash_every_output_arrives_once(expected):  # noqa: F811
    bus = loaded_bus()
    stats = service(bus, "one", guarantee=AT_LEAST_ONCE).run()
    assert_same(bus, expected)
    assert stats.transactions >= 1
    assert all(bus.read_partition(TOPICS.state, p) for p in range(PARTITIONS))


def test_outputs_are_readable_before_any_commit(expected):  # noqa: F811
    bus = loaded_bus()
    seen: list[int] = []

    def look(out, batch):
        if out.bars.num_rows and not seen:
            seen.append(sum(committed(bus)["bars"].values()))

    one = service(bus, "one", guarantee=AT_LEAST_ONCE, quiet_commit_interval=60.0)
    one.on_output = look
    one.run()
    # the first bars were in the topic while the transaction of state and offsets was open
    assert seen and seen[0] > 0


def test_a_crash_repeats_only_outputs_sent_since_the_last_commit(expected):  # noqa: F811
    bus = loaded_bus()
    sent = 0

    def crash(out, batch):
        nonlocal sent
        sent += 1
        if sent == 40:
            raise Crash("killed with outputs sent since the last commit")

    first = service(bus, "one", guarantee=AT_LEAST_ONCE, max_batch=1000, commit_interval=0.001,
                    quiet_commit_interval=0.0)  # fmt: skip
    first.on_output = crash
    at_commit: list[int] = []
    commit = first._commit

    def counted_commit() -> None:  # the rows in the output topics at each commit
        done = first.stats.transactions
        commit()
        if first.stats.transactions > done:
            at_commit.append(_rows(bus))

    first._commit = counted_commit  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.run()
    assert first.stats.transactions >= 2
    before = committed(bus)
    second = service(bus, "two", guarantee=AT_LEAST_ONCE)
    second.run()
    assert second.stats.restored == PARTITIONS
    held = committed(bus)
    repeated = 0
    for short in COMPARED:
        missing = +(expected[short] - held[short])
        extra = +(held[short] - expected[short])
        assert not missing, short
        # every repeat is a copy of a row sent before the crash
        assert not +(extra - before[short]), short
        repeated += sum(extra.values())
    assert repeated > 0
    # exactly what the crashed instance sent after its last commit
    assert repeated == _rows(before) - at_commit[-1]


def _rows(source) -> int:
    held = committed(source) if not isinstance(source, dict) else source
    return sum(sum(held[short].values()) for short in COMPARED)


def test_an_unknown_guarantee_is_refused():
    with pytest.raises(ConfigError, match="exactly-once, at-least-once"):
        ProcessOptions(settings=ProcessSettings(guarantee="maybe"))
