"""`topics describe` right after `topics create`: a leader not known yet is looked up again."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace

import confluent_kafka as ck
import pytest

from marketpulse.bus.base import BusError
from marketpulse.cli.topics_command import _describe


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


def _failed(code: int) -> Future:
    future: Future = Future()
    future.set_exception(ck.KafkaException(ck.KafkaError(code)))
    return future


class Admin:
    """One topic of two partitions; list_offsets fails with ``errors`` first, in turn."""

    def __init__(self, errors: list[int]) -> None:
        self.errors = errors
        self.offset_calls = 0

    def list_topics(self, timeout):
        partition = SimpleNamespace(replicas=[1, 2, 3])
        topic = SimpleNamespace(error=None, partitions={0: partition, 1: partition})
        return SimpleNamespace(topics={"t.ticks": topic})

    def describe_configs(self, resources):
        entry = SimpleNamespace(value="2")
        return {r: _done({"min.insync.replicas": entry}) for r in resources}

    def list_offsets(self, wanted, request_timeout):
        self.offset_calls += 1
        if self.errors:
            code = self.errors.pop(0)
            return {tp: _failed(code) for tp in wanted}
        return {tp: _done(SimpleNamespace(offset=7 + tp.partition)) for tp in wanted}


def bus(admin: Admin, timeout: float = 5.0):
    return SimpleNamespace(
        admin=lambda: admin, connect_timeout=timeout, settings=SimpleNamespace(bootstrap="b:9092")
    )


def test_a_leader_not_known_yet_is_looked_up_again():
    admin = Admin([ck.KafkaError.NOT_LEADER_FOR_PARTITION])
    info = _describe(bus(admin), ["t.ticks"])
    assert admin.offset_calls == 2  # the fault happened, then the look-up again
    assert info["t.ticks"].end_offsets == [7, 8]
    assert info["t.ticks"].replication == 3


def test_an_error_that_lasts_is_one_line_after_the_timeout():
    admin = Admin([ck.KafkaError.NOT_LEADER_FOR_PARTITION] * 100)
    with pytest.raises(BusError, match=r"^cannot describe topics on b:9092: .*leader"):
        _describe(bus(admin, timeout=0.5), ["t.ticks"])
    assert admin.offset_calls > 1


def test_an_error_that_cannot_pass_is_not_retried():
    admin = Admin([ck.KafkaError.TOPIC_AUTHORIZATION_FAILED])
    with pytest.raises(BusError, match="cannot describe topics on b:9092"):
        _describe(bus(admin), ["t.ticks"])
    assert admin.offset_calls == 1
