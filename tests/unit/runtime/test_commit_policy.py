"""The commit policy: each rule of ``ProcessOptions`` as a decision, and the commit steps."""

from __future__ import annotations

import pytest

from marketpulse.bus.kafka import ProducerStuck, TransactionAborted
from marketpulse.models import DeadLetter
from marketpulse.runtime.commit_policy import IDLE_POLL, PARTITIONS_KEY, CommitPolicy, PollWait
from marketpulse.stream.output import Output
from marketpulse.testing import ManualClock

from .conftest import TOPICS, FakeConsumer, FakeProcessor, FakeProducer, bars, tp

COMMIT, QUIET, GRACE, MAX_BATCH = 0.1, 2.5, 0.02, 100


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1000.0)


@pytest.fixture
def processor(log) -> FakeProcessor:
    return FakeProcessor(log)


@pytest.fixture
def producer(log) -> FakeProducer:
    return FakeProducer(log)


@pytest.fixture
def policy(processor, clock) -> CommitPolicy:
    return CommitPolicy(
        processor,  # type: ignore[arg-type]
        TOPICS.state,
        commit_interval=COMMIT,
        quiet_commit_interval=QUIET,
        output_grace=GRACE,
        max_batch=MAX_BATCH,
        step_timeout=7.0,
        clock=clock,
    )


def with_outputs(policy: CommitPolicy, producer: FakeProducer, *ends: int) -> None:
    """Open a transaction holding the bars ending at ``ends`` of partition 0."""
    policy.begin(producer)  # type: ignore[arg-type]
    policy.consumed(tp(0), 10)
    policy.sent(Output(bars=bars(*ends)))


# -- what the transaction holds ----------------------------------------------------


def test_begin_opens_one_transaction_and_starts_it_empty(policy, producer, clock, log):
    with_outputs(policy, producer, 5)
    clock.now += 1.0
    policy.begin(producer)  # already open: nothing changes
    assert log.names() == ["begin"]
    assert policy.began == 1000.0 and policy.outputs and policy.closes_to == 5

    producer.in_transaction = False  # committed
    policy.begin(producer)
    assert log.names() == ["begin", "begin"]
    assert policy.began == 1001.0 and not policy.outputs and policy.closes_to == 0


def test_outputs_are_timed_from_the_first_and_close_to_the_latest_bar_end(policy, producer, clock):
    policy.begin(producer)
    policy.sent(Output())  # nothing: offsets and state only
    assert not policy.outputs
    clock.now += 0.5
    policy.sent(Output(bars=bars(30, 70)))
    clock.now += 0.5
    policy.sent(Output(bars=bars(50)))
    assert policy.outputs and policy.outputs_at == 1000.5 and policy.closes_to == 70


def test_dead_letters_alone_are_outputs(policy, producer):
    policy.begin(producer)
    policy.sent(Output(dead=[DeadLetter(reason="decode", error="bad", value=b"x")]))
    assert policy.outputs and policy.closes_to == 0


def test_resume_forget_and_rewind(policy, producer):
    policy.resume(tp(0), 40)
    policy.resume(tp(1), -1)  # no committed offset: read from the start, none expected
    assert policy.next == {tp(0): 40}
    policy.begin(producer)
    policy.consumed(tp(0), 45)
    policy.consumed(tp(2), 9)
    policy.touch(tp(3))
    policy.rewound([tp(0)])
    assert policy.touched == {tp(2), tp(3)}
    policy.forget(tp(2))
    assert policy.touched == {tp(3)} and policy.next == {tp(0): 45}


# -- when to commit ------------------------------------------------------------------


def test_no_transaction_open_nothing_is_due(policy, clock):
    wait = policy.wait(False, False, clock.now)
    assert wait == PollWait(IDLE_POLL, False)
    assert not policy.due(False, clock.now + 100, 0, wait)
    assert not policy.due(False, clock.now + 100, 5, wait)


@pytest.mark.parametrize("outputs", [True, False])
def test_a_poll_that_finds_no_input_commits_whatever_is_open(policy, producer, clock, outputs):
    policy.begin(producer)
    policy.consumed(tp(0), 10)
    if outputs:
        policy.sent(Output(bars=bars(60)))
    wait = policy.wait(True, False, clock.now)
    assert policy.due(True, clock.now, 0, wait)


def test_outputs_wait_what_is_left_of_their_grace_while_bars_are_closing(
    policy, producer, processor, clock
):
    with_outputs(policy, producer, 60)
    clock.now += 0.005
    wait = policy.wait(True, False, clock.now)
    assert wait.grace and wait.seconds == pytest.approx(GRACE - 0.005)
    assert processor.closing_asked == [(60, clock.now)]
    # input arriving within the grace is handled, the outputs wait for more
    clock.now += 0.01
    assert not policy.due(True, clock.now, 5, wait)
    # the grace is over: committed although input keeps coming
    clock.now += 0.005
    assert policy.due(True, clock.now, 5, wait)


def test_outputs_are_committed_at_once_when_every_partition_has_closed_their_bars(
    policy, producer, processor, clock
):
    with_outputs(policy, producer, 60)
    processor.still_closing = False
    wait = policy.wait(True, False, clock.now + 0.001)
    assert wait == PollWait(0.0, True)
    assert policy.due(True, clock.now + 0.002, 5, wait)


def test_a_grace_already_over_asks_nobody(policy, producer, processor, clock):
    with_outputs(policy, producer, 60)
    wait = policy.wait(True, False, clock.now + GRACE)
    assert wait == PollWait(0.0, True) and not processor.closing_asked
    assert policy.due(True, clock.now + GRACE, 5, wait)


def test_during_a_backlog_outputs_have_no_grace_and_commit_every_commit_interval(
    policy, producer, processor, clock
):
    assert policy.backlog(MAX_BATCH) and not policy.backlog(MAX_BATCH - 1)
    with_outputs(policy, producer, 60)
    wait = policy.wait(True, True, clock.now)
    assert wait == PollWait(IDLE_POLL, False) and not processor.closing_asked
    # a full poll: its grace long over, but not the commit interval
    assert not policy.due(True, clock.now + COMMIT / 2, MAX_BATCH, wait)
    assert policy.due(True, clock.now + COMMIT, MAX_BATCH, wait)


def test_after_a_backlog_a_poll_short_of_full_commits_outputs_past_their_grace(
    policy, producer, clock
):
    with_outputs(policy, producer, 60)
    wait = policy.wait(True, True, clock.now)  # the previous poll was full
    # this one was not: no grace was waited, the interval is not up, nothing is due yet
    assert not policy.due(True, clock.now + GRACE, MAX_BATCH - 1, wait)
    # the next poll gets the grace again
    wait = policy.wait(True, False, clock.now + GRACE)
    assert policy.due(True, clock.now + GRACE, MAX_BATCH - 1, wait)


def test_offsets_and_state_alone_wait_for_the_quiet_commit_interval(policy, producer, clock):
    policy.begin(producer)
    policy.consumed(tp(0), 10)
    wait = policy.wait(True, False, clock.now)
    assert wait == PollWait(IDLE_POLL, False)
    assert not policy.due(True, clock.now + QUIET - 0.01, 5, wait)
    assert not policy.due(True, clock.now + QUIET - 0.01, MAX_BATCH, wait)
    assert policy.due(True, clock.now + QUIET, 5, wait)


@pytest.fixture
def at_least_once(processor, clock) -> CommitPolicy:
    return CommitPolicy(
        processor,  # type: ignore[arg-type]
        TOPICS.state,
        commit_interval=COMMIT,
        quiet_commit_interval=QUIET,
        output_grace=GRACE,
        max_batch=MAX_BATCH,
        step_timeout=7.0,
        clock=clock,
        at_least_once=True,
    )


def test_at_least_once_outputs_never_wait_for_a_grace(at_least_once, producer, processor, clock):
    with_outputs(at_least_once, producer, 60)
    wait = at_least_once.wait(True, False, clock.now)
    assert wait == PollWait(IDLE_POLL, False) and not processor.closing_asked
    # outputs went out at once: nothing to commit for them before the interval
    assert not at_least_once.due(True, clock.now + GRACE, 5, wait)
    assert not at_least_once.due(True, clock.now + COMMIT, MAX_BATCH, wait)


def test_at_least_once_commits_after_the_interval_once_the_closes_are_out(
    at_least_once, producer, clock
):
    at_least_once.begin(producer)
    at_least_once.consumed(tp(0), 10)
    start = clock.now
    wait = at_least_once.wait(True, False, clock.now)
    # the interval is up, but no outputs yet: the next ones (bars closing) may be near
    assert not at_least_once.due(True, start + QUIET, 5, wait)
    clock.now = start + QUIET
    at_least_once.sent(Output(bars=bars(60)))
    # other partitions' closes of the same moment may still come: not yet
    assert not at_least_once.due(True, start + QUIET + GRACE / 2, 5, wait)
    # the grace after the last output is over: commit, the next closes furthest away
    assert at_least_once.due(True, start + QUIET + GRACE + 1e-6, 5, wait)
    # whatever the polls made, twice the interval commits; so does a poll finding nothing
    clock.now = start + 2 * QUIET - 0.001
    at_least_once.sent(Output(bars=bars(61)))
    assert at_least_once.due(True, start + 2 * QUIET, 5, wait)
    assert at_least_once.due(True, start + 0.001, 0, wait)


def test_the_quiet_interval_is_never_shorter_than_the_commit_interval(processor, producer, clock):
    policy = CommitPolicy(
        processor,  # type: ignore[arg-type]
        TOPICS.state,
        commit_interval=1.0,
        quiet_commit_interval=0.2,
        output_grace=GRACE,
        max_batch=MAX_BATCH,
        step_timeout=1.0,
        clock=clock,
    )
    policy.begin(producer)
    wait = policy.wait(True, False, clock.now)
    assert not policy.due(True, clock.now + 0.5, 5, wait)
    assert policy.due(True, clock.now + 1.0, 5, wait)


# -- committing ----------------------------------------------------------------------


def test_nothing_open_nothing_committed(policy, producer, log):
    assert not policy.commit(producer, FakeConsumer(log))
    assert log == []


def test_commit_steps(policy, producer, log):
    consumer = FakeConsumer(log)
    policy.resume(tp(3), 70)  # owned, untouched: not committed again
    policy.begin(producer)
    policy.consumed(tp(0), 11)
    policy.consumed(tp(1), 21)
    policy.touch(tp(2))  # bars closed by the clock, restored without a committed offset
    assert policy.commit(producer, consumer)

    offsets = {tp(0): 11, tp(1): 21}
    assert log == [
        ("begin", None),
        # the offsets go first; the state of each touched partition is made and
        # sent while they travel, before the commit
        ("offsets", offsets),
        ("checkpoint", 0),
        ("send", (TOPICS.state, 0)),
        ("checkpoint", 1),
        ("send", (TOPICS.state, 1)),
        ("checkpoint", 2),
        ("send", (TOPICS.state, 2)),
        ("commit", offsets),
    ]
    assert producer.committed == [
        (TOPICS.state, p, (b"state-key", b"state-%d" % p)) for p in (0, 1, 2)
    ]
    assert producer.timeouts == [7.0]
    # the next transaction starts with nothing touched; where to read next stays
    assert policy.touched == set()
    assert policy.next == {tp(3): 70, tp(0): 11, tp(1): 21}


@pytest.mark.parametrize("failure", [TransactionAborted("aborted"), ProducerStuck("stuck")])
def test_a_failed_commit_leaves_what_the_transaction_held(policy, producer, log, failure):
    policy.begin(producer)
    policy.consumed(tp(0), 11)
    producer.fail = failure
    with pytest.raises(type(failure)):
        policy.commit(producer, FakeConsumer(log))
    assert policy.touched == {tp(0)} and policy.next == {tp(0): 11}
    assert "commit" not in log.names()


def test_the_partition_count_is_written_once_an_assignment(policy, producer, log):
    policy.partitions = 6
    consumer = FakeConsumer(log)

    def counts() -> list[int]:
        """The partitions of the count records committed since the last call."""
        found = [p for _, p, record in producer.committed if record[0] == PARTITIONS_KEY]
        producer.committed.clear()
        return found

    def commit(*partitions: int, failure: Exception | None = None) -> None:
        policy.begin(producer)
        for p in partitions:
            policy.consumed(tp(p), 10)
        producer.fail = failure
        if failure is None:
            assert policy.commit(producer, consumer)
        else:
            with pytest.raises(type(failure)):
                policy.commit(producer, consumer)
            producer.abort()

    commit(0, 1)
    assert counts() == [0, 1]
    commit(0, 1)
    assert counts() == []  # the compacted topic keeps the first
    commit(2, failure=TransactionAborted("aborted"))
    commit(1, 2)
    assert counts() == [2]  # the aborted transaction's count is written again
    policy.forget(tp(0))  # revoked, then assigned again: written again
    commit(0)
    assert counts() == [0]
