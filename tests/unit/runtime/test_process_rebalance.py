"""The process service across rebalances, and the records it skips, without a broker."""

from __future__ import annotations

import time

import pytest

from marketpulse.bus.kafka import ProducerFenced, ProducerStuck, TransactionAborted
from marketpulse.runtime.commit_policy import IDLE_POLL
from marketpulse.runtime.process import ProcessService
from marketpulse.stream.output import Output

from .conftest import TOPICS, FakeBus, FakeProcessor, bars, batch, process_options, tp


def owning(make_service, committed, *consumed, **options):
    """A service owning ``committed``'s partitions, with ``consumed`` handled, uncommitted."""
    service = make_service(committed=committed, **options)
    service._assigned(sorted(committed))
    assert service._handle(list(consumed))
    service._consumer.log.clear()  # the log shared by the fakes
    return service


def offsets_of(log):
    return [detail for what, detail in log if what == "commit"]


# -- assigned ------------------------------------------------------------------------


def test_assigned_commits_the_open_transaction_then_restores_the_new_partitions(make_service, log):
    service = owning(make_service, {tp(0): 10}, batch(0, 10, 14))
    service._consumer.group_offsets[tp(1)] = 40

    service._assigned([tp(1)])

    assert log.names() == [
        "offsets", "checkpoint", "send", "commit",  # the open transaction first
        "settle", "committed", "read state", "restore",  # then the state of the new partition
    ]  # fmt: skip
    assert offsets_of(log) == [{tp(0): 15}] and log[-1] == ("restore", 1)
    assert service._owned == {tp(0), tp(1)}
    assert service.policy.next == {tp(0): 15, tp(1): 40}
    assert service.stats.transactions == 1 and service.stats.restored == 2
    assert service._assigned_once


def test_a_partition_without_a_committed_offset_has_no_expected_offset(make_service):
    service = make_service(committed={})
    service._assigned([tp(2)])
    assert service._owned == {tp(2)} and service.policy.next == {}
    # nothing was open: nothing committed
    assert service.stats.transactions == 0 and not service._producer.offsets


def run_service(log, script, committed, processor=None, **options) -> ProcessService:
    """Run a service on a :class:`FakeBus` whose consumer plays ``script``, then stops."""
    bus = FakeBus(log, committed)
    service = ProcessService(
        bus,  # type: ignore[arg-type]
        TOPICS,
        processor or FakeProcessor(log),  # type: ignore[arg-type]
        process_options(instance="one", **options),
    )
    bus.script, bus.stop = script, service.stop
    service.run()
    return service


def assign_and_read(*partitions):
    """A first poll: the group assigns ``partitions``, then their records come."""

    def step(consumer):
        consumer.on_assign([tp(p) for p in partitions])
        return [batch(p, 40, 42) for p in partitions]

    return step


def test_running_state_is_restored_before_the_records_are_read(log, empty_state):
    service = run_service(log, [assign_and_read(1)], {tp(1): 40}, output_grace=5.0)

    names = log.names()
    assert names.index("restore") < names.index("process")
    assert log[names.index("process")] == ("process", (1, 40, 42))
    producer = service.bus.producers[0]
    assert producer.offsets == [{tp(1): 43}]
    assert service.stats.records == 3 and service.stats.transactions == 1
    # the loop polled by the policy: nothing open, then the grace of the outputs
    timeouts = service.bus.consumers[0].timeouts
    assert timeouts[0] == IDLE_POLL and 0.0 < timeouts[1] <= 5.0
    assert service.processor.closing_asked[0][0] == 42  # the end of the bars it holds


def test_running_outputs_no_partition_is_still_closing_are_committed_without_waiting(
    log, empty_state
):
    processor = FakeProcessor(log)
    processor.still_closing = False
    more = [batch(1, 43, 44)]
    service = run_service(log, [assign_and_read(1), more], {tp(1): 40}, processor, output_grace=5.0)

    assert service.bus.consumers[0].timeouts[1] == 0.0
    # committed right after the poll that returned more input
    assert service.bus.producers[0].offsets == [{tp(1): 45}]
    assert service.stats.transactions == 1


def test_running_a_partition_taken_back_before_its_records_are_handled(log, empty_state):
    def revoke(consumer):
        consumer.on_revoke([tp(1)])
        return [batch(1, 43, 44)]  # fetched before the revocation

    service = run_service(log, [assign_and_read(1), revoke], {tp(1): 40})

    assert service.bus.producers[0].offsets == [{tp(1): 43}]  # committed by the revocation
    assert ("drop", 1) in log and service._owned == set()
    assert service.stats.records == 3


# -- revoked -------------------------------------------------------------------------


def test_revoked_commits_then_forgets(make_service, log):
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))

    service._revoked([tp(0)])

    assert log.names() == [
        "offsets", "checkpoint", "send", "checkpoint", "send", "commit", "drop",
    ]  # fmt: skip
    assert offsets_of(log) == [{tp(0): 13, tp(1): 22}] and log[-1] == ("drop", 0)
    assert service._owned == {tp(1)}
    assert service.policy.next == {tp(1): 22} and not service.policy.touched


# -- lost ----------------------------------------------------------------------------


def test_lost_aborts_forgets_and_rewinds_the_rest(make_service, log):
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))
    producer = service._producer

    service._lost([tp(0)])

    assert log.names() == ["abort", "drop", "settle", "committed", "read state", "restore", "seek"]
    assert ("drop", 0) in log and ("restore", 1) in log
    assert service._consumer.seeks == [(tp(1), 20)]  # back to its last commit
    assert not producer.in_transaction and producer.committed == []
    assert service._owned == {tp(1)}
    assert service.policy.next == {tp(1): 20} and not service.policy.touched


def test_lost_rewinds_a_partition_never_committed_to_its_beginning(make_service, log):
    service = owning(make_service, {tp(0): 10, tp(1): -1}, batch(0, 10, 12), batch(1, 0, 3))

    service._lost([tp(0)])

    assert service._consumer.seeks == [(tp(1), -2)]  # OFFSET_BEGINNING
    assert service.policy.next == {}


# -- a commit failing before a rebalance -----------------------------------------------


def test_a_commit_failing_before_a_revocation_forgets_the_leaving_and_rewinds_the_rest(
    make_service, log
):
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))
    service._producer.fail = TransactionAborted("commit failed")

    service._revoked([tp(0)])

    names = log.names()
    assert names[names.index("failed") :] == [
        "failed", "drop", "settle", "committed", "read state", "restore", "seek",
    ]  # fmt: skip
    assert ("drop", 0) in log and ("restore", 1) in log
    assert service._consumer.seeks == [(tp(1), 20)]
    assert service._producer.committed == [] and service.stats.transactions == 0
    assert service._owned == {tp(1)}
    assert service.policy.next == {tp(1): 20} and not service.policy.touched


def test_a_commit_failing_before_an_assignment_rewinds_then_restores_the_new(make_service, log):
    service = owning(make_service, {tp(0): 10}, batch(0, 10, 12))
    service._consumer.group_offsets[tp(2)] = 7
    service._producer.fail = TransactionAborted("commit failed")

    service._assigned([tp(2)])

    names = log.names()
    assert names[names.index("failed") :] == [
        "failed",
        "settle", "committed", "read state", "restore", "seek",  # partition 0 back to its commit
        "settle", "committed", "read state", "restore",  # partition 2 joins
    ]  # fmt: skip
    assert service._consumer.seeks == [(tp(0), 10)]
    assert service._owned == {tp(0), tp(2)}
    assert service.policy.next == {tp(0): 10, tp(2): 7}


def test_a_producer_stuck_before_a_revocation_is_replaced_and_the_rest_rewound(make_service, log):
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))
    stuck = service._producer
    stuck.fail = ProducerStuck("commit stuck")

    service._revoked([tp(0)])

    names = log.names()
    # the stuck producer drops what it has not sent before its successor takes over
    assert names[names.index("failed") :] == [
        "failed", "drop", "abandon", "init", "settle", "committed", "read state", "restore", "seek",
    ]  # fmt: skip
    assert service._producer is service.bus.producers[-1] and service._producer is not stuck
    assert service._abandoned == [stuck] and service.stats.replaced == 1
    assert service._consumer.seeks == [(tp(1), 20)]
    assert service._owned == {tp(1)} and service.policy.next == {tp(1): 20}


def test_a_replacements_registration_asked_to_resume_is_resumed_on_the_same_producer(
    make_service, log, monkeypatch
):
    """Seen in CI: the broker away for 40 s, the replacement's ``init`` not done in 30 s
    ("retry call to resume"); a second replacement was made, the first one's registration
    finished later and fenced it, and the run failed. The same producer now calls again."""
    service = owning(make_service, {tp(0): 10}, batch(0, 10, 12))
    stuck = service._producer
    stuck.fail = ProducerStuck("commit stuck")
    made = service.bus.transactional_producer

    def slow_registration(transactional_id, **kwargs):
        producer = made(transactional_id, **kwargs)
        resume = ProducerStuck("init transactions: not done within 30 s", resumable=True)
        producer.init_fails = [resume, resume]
        return producer

    monkeypatch.setattr(service.bus, "transactional_producer", slow_registration)

    service._revoked([tp(0)])

    assert len(service.bus.producers) == 2  # the stuck one, and one replacement
    replacement = service.bus.producers[-1]
    assert service._producer is replacement and service._abandoned == [stuck]
    names = log.names()
    assert names[names.index("abandon") :].count("init") == 3  # asked to resume twice
    assert names.count("abandon") == 1


def test_a_replacement_whose_registration_hangs_is_left_for_a_new_one(
    make_service, log, monkeypatch
):
    service = owning(make_service, {tp(0): 10}, batch(0, 10, 12))
    stuck = service._producer
    stuck.fail = ProducerStuck("commit stuck")
    made = service.bus.transactional_producer
    first = []

    def hanging_once(transactional_id, **kwargs):
        producer = made(transactional_id, **kwargs)
        if not first:
            first.append(producer)
            producer.init_fails = [ProducerStuck("init transactions: not done within 30 s")]
        return producer

    monkeypatch.setattr(service.bus, "transactional_producer", hanging_once)

    service._revoked([tp(0)])

    assert len(service.bus.producers) == 3  # the stuck one, a hung one, the one that took over
    assert service._abandoned == [stuck, first[0]]
    assert service._producer is service.bus.producers[-1]


def test_a_producer_stuck_settling_before_a_rewind_is_replaced_before_the_offsets_are_read(
    make_service, log
):
    """A settling step not done in time leaves the client in that call, refusing the next.

    Seen under load after a broker restart: the stuck producer was kept, and its next
    transaction failed ("Conflicting send_offsets_to_transaction API call is already in
    progress"), ending the service with exit 2. A new producer takes over instead.
    """
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))
    stuck = service._producer
    stuck.settle_fail = ProducerStuck("add the group's offsets: not done within 40 s")

    service._lost([tp(0)])

    names = log.names()
    assert names[names.index("settle") :] == [
        "settle", "failed", "abandon", "init", "committed", "read state", "restore", "seek",
    ]  # fmt: skip
    assert service._producer is service.bus.producers[-1] and service._producer is not stuck
    assert service._abandoned == [stuck] and service.stats.replaced == 1
    assert service._consumer.seeks == [(tp(1), 20)] and service._owned == {tp(1)}


def test_a_producer_fenced_settling_past_the_transaction_timeout_is_replaced(make_service, log):
    """The broker fences a producer whose settling transaction outlived the transaction timeout.

    Settling flushes its records, and a fatal error there reached the process as a
    SystemError (confluent-kafka 2.16, see the Kafka producer's flush); now as
    ProducerFenced, and a new producer takes over, as in the loop.
    """
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21),
                     transaction_timeout=0.05)  # fmt: skip
    fenced = service._producer
    fenced.settle_fail = ProducerFenced("cannot flush (fake): fenced by newer producer instance")
    fenced.settle = _slow(fenced.settle, 0.1)

    service._lost([tp(0)])

    names = log.names()
    assert names[names.index("settle") :] == [
        "settle", "failed", "abandon", "init", "committed", "read state", "restore", "seek",
    ]  # fmt: skip
    assert service._producer is not fenced and service._abandoned == [fenced]
    assert service._consumer.seeks == [(tp(1), 20)] and service._owned == {tp(1)}


def test_a_producer_fenced_at_once_while_settling_gives_way(make_service, log):
    service = owning(make_service, {tp(0): 10, tp(1): 20}, batch(0, 10, 12), batch(1, 20, 21))
    service._producer.settle_fail = ProducerFenced("fenced: another instance took over")
    with pytest.raises(ProducerFenced):
        service._lost([tp(0)])


def _slow(call, seconds):
    def slow(*args, **kwargs):
        time.sleep(seconds)
        return call(*args, **kwargs)

    return slow


# -- records skipped ---------------------------------------------------------------------


def test_unseen_drops_records_before_the_expected_offset(make_service):
    service = make_service(committed={tp(0): 10})
    service._assigned([tp(0)])

    assert service._unseen(batch(0, 5, 9)) is None
    kept = service._unseen(batch(0, 8, 12))
    assert kept is not None
    assert (kept.first_offset, kept.last_offset) == (10, 12)
    assert [m.offset for m in kept.messages] == [10, 11, 12]
    whole = batch(0, 10, 12)
    assert service._unseen(whole) is whole


def test_unseen_drops_records_of_partitions_not_owned(make_service):
    service = make_service(committed={tp(0): 10})
    service._assigned([tp(0)])
    assert service._unseen(batch(1, 0, 3)) is None


def test_unseen_keeps_everything_of_a_partition_never_committed(make_service):
    service = make_service(committed={})
    service._assigned([tp(0)])
    whole = batch(0, 0, 3)
    assert service._unseen(whole) is whole


def test_records_handled_once_when_fetched_again(make_service, log):
    service = make_service(committed={tp(0): 10})
    service._assigned([tp(0)])

    assert service._handle([batch(0, 8, 12)])
    assert service._handle([batch(0, 10, 13)])  # fetched again after a seek: 13 is new
    assert not service._handle([batch(0, 11, 13), batch(1, 0, 5)])

    assert [d for what, d in log if what == "process"] == [(0, 10, 12), (0, 13, 13)]
    assert service.policy.next == {tp(0): 14}
    assert service.stats.records == 4


# -- bars closed by the clock ----------------------------------------------------------------


def test_idle_outputs_of_owned_partitions_are_sent_and_their_state_committed(make_service, log):
    service = make_service(committed={tp(0): 10})
    service._assigned([tp(0)])
    service.processor.idle_outputs = {
        (TOPICS.ticks, 0): Output(bars=bars(100)),
        (TOPICS.ticks, 1): Output(bars=bars(200)),  # no longer ours
    }

    service._idle(0.0)
    service._commit()

    producer = service._producer
    assert producer.topics("committed") == [TOPICS.name("bars"), TOPICS.state]
    assert producer.offsets == [{tp(0): 10}]  # resumed there: no input redone
    assert service.policy.closes_to == 100 and service.stats.bars == 1


def test_a_commit_failing_in_the_loop_redoes_the_work_since_the_last_commit(log, empty_state):
    bus = FakeBus(log, {tp(1): 40})

    def fail_next_commit(consumer):
        bus.producers[0].fail = TransactionAborted("commit failed")
        return []  # no input: the commit is due

    bus.script = [assign_and_read(1), fail_next_commit, [batch(1, 40, 41)]]
    service = ProcessService(
        bus,  # type: ignore[arg-type]
        TOPICS,
        FakeProcessor(log),  # type: ignore[arg-type]
        process_options(instance="one", output_grace=5.0),
    )
    bus.stop = service.stop
    service.run()

    # the aborted transaction's input is read again from its last commit (40)
    assert bus.consumers[0].seeks == [(tp(1), 40)]
    processed = [d for what, d in log if what == "process"]
    assert processed == [(1, 40, 42), (1, 40, 41)]
    assert bus.producers[0].offsets == [{tp(1): 42}]
    assert service.stats.aborted == 1 and service.stats.transactions == 1


def test_a_slow_restore_is_not_idleness(make_service, monkeypatch):
    """Idle time counts from the end of the restores, for the service and each partition.

    Counted from the assignment, a restore longer than the idle timeout would
    close the restored windows by the clock before the first record is read.
    """
    service = make_service(committed={tp(0): 10, tp(1): 20})
    now = [100.0]
    monkeypatch.setattr("marketpulse.runtime.process.time.monotonic", lambda: now[0])
    restore = service._restore

    def slow_restore(*args, **kwargs):
        now[0] += 1.5  # each partition's restore takes 1.5 s
        return restore(*args, **kwargs)

    monkeypatch.setattr(service, "_restore", slow_restore)

    service._assigned([tp(0), tp(1)])

    assert service.last_input == 103.0
    assert service.processor.quiet == {0: 103.0, 1: 103.0}
