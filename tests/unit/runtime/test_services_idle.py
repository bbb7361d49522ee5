"""The --exit-when-idle rule: a member gets time to join its group before idle time counts."""

from marketpulse.runtime.idle import JOIN_GRACE_S, idle_expired


def test_no_limit_never_expires():
    assert not idle_expired(None, 1e9, assigned=True)


def test_assigned_member_exits_after_the_limit():
    assert not idle_expired(3.0, 2.9, assigned=True)
    assert idle_expired(3.0, 3.0, assigned=True)


def test_member_not_yet_assigned_waits_for_the_join_grace():
    assert not idle_expired(3.0, JOIN_GRACE_S - 0.1, assigned=False)
    assert idle_expired(3.0, JOIN_GRACE_S, assigned=False)
    # a limit longer than the grace is kept as it is
    assert not idle_expired(2 * JOIN_GRACE_S, JOIN_GRACE_S, assigned=False)
