"""When a consuming service has nothing left to do: the ``--exit-when-idle`` rule, caught up."""

from __future__ import annotations

from marketpulse.bus.base import Consumer

__all__ = ["JOIN_GRACE_S", "idle_expired", "read_to_end", "records_left"]

#: Seconds a member waits at least for its first partitions: joining a group on a
#: busy or freshly started cluster can outlast a short idle limit.
JOIN_GRACE_S = 30.0


def idle_expired(limit: float | None, quiet: float, assigned: bool) -> bool:
    """Whether a service quiet for ``quiet`` seconds should exit under ``limit``.

    Before its first assignment a member waits at least :data:`JOIN_GRACE_S`;
    once assigned, the quiet time counts from the assignment or the last input.
    """
    if limit is None:
        return False
    return quiet >= (limit if assigned else max(limit, JOIN_GRACE_S))


def read_to_end(consumer: Consumer | None) -> bool:
    """Whether every partition assigned to ``consumer`` was read to its end (end offsets at hand).

    Exact on the in-memory bus. On Kafka a transaction marker after the last
    record keeps a partition from looking read to its end. The in-memory bus's
    consumer may be asked from another thread than its own (a rebalance
    meanwhile makes it ``False``); a Kafka client serves one thread at a time,
    so another thread would wait for the owner's poll.
    """
    left = records_left(consumer)
    return left is not None and left <= 0


def records_left(consumer: Consumer | None) -> int | None:
    """Records left to read over the partitions assigned to ``consumer`` (end offsets at hand).

    ``None`` when not known: no consumer, no assignment yet, or the end
    offsets could not be read. Same caveats as :func:`read_to_end`.
    """
    if consumer is None:
        return None
    try:
        lag = consumer.lag(cached=True)
        assigned = consumer.assignment()
    except Exception:  # noqa: BLE001 - not known now; asked again
        return None
    if not lag or any(tp not in lag for tp in assigned):
        return None  # a partition's end is not known yet
    return sum(max(n, 0) for n in lag.values())
