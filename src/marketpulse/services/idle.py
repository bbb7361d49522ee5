"""The ``--exit-when-idle`` rule the consuming services share."""

from __future__ import annotations

__all__ = ["JOIN_GRACE_S", "idle_expired"]

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
