"""A dataset's lock: commands that replace rows take turns, commands that add share it."""

from __future__ import annotations

import threading

from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_lock import DatasetLock


def _lock(tmp_path, exclusive: bool, dataset: str = "lean") -> DatasetLock:
    return DatasetLock(LakeLocation.of(tmp_path / "lake"), dataset, exclusive=exclusive,
                       holder="test")  # fmt: skip


def test_a_replacing_command_waits_for_the_other_and_can_stop_waiting(tmp_path):
    with _lock(tmp_path, exclusive=True):
        polls = []
        assert not _lock(tmp_path, exclusive=True).acquire(lambda: polls.append(1) or True)
        assert not _lock(tmp_path, exclusive=False).acquire(lambda: True)
        assert polls
    second = _lock(tmp_path, exclusive=True)
    assert second.acquire(lambda: True) and not second.waited  # free once released
    second.release()


def test_adding_commands_share_the_lock_and_a_replacing_one_waits_for_them(tmp_path):
    adding = [_lock(tmp_path, exclusive=False) for _ in range(2)]
    assert all(lock.acquire(lambda: True) for lock in adding)
    replacing = _lock(tmp_path, exclusive=True)
    assert not replacing.acquire(lambda: True)
    assert _lock(tmp_path, exclusive=True, dataset="other").acquire(lambda: True)

    taken = threading.Event()
    waiter = threading.Thread(target=lambda: replacing.acquire() and taken.set())
    waiter.start()
    for lock in adding:
        assert not taken.wait(0.3)  # still held by an adding command
        lock.release()
    waiter.join(10)
    assert taken.is_set() and replacing.waited
    replacing.release()
