"""When a consuming service has nothing left to do: the ``--exit-when-idle`` rule, caught up."""

from __future__ import annotations

from marketpulse.bus.base import Consumer

__all__ = ["JOIN_GRACE_S", "idle_expired", "read_to_end"]

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
    record keeps a partition from looking read to its end. Safe from another
    thread than the consumer's: a rebalance meanwhile makes it ``False``.
    """
    if consumer is None:
        return False
    try:
        lag = consumer.lag(cached=True)
    except Exception:  # noqa: BLE001 - not known now; asked again
        return False
    return bool(lag) and all(n <= 0 for n in lag.values())
