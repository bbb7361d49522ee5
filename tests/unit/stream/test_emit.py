"""The emitter: remembered sessions equal computed ones; a joint close equals closes apart."""

import numpy as np

from marketpulse.stream import ProcessorSettings
from marketpulse.stream.emit import Emitter
from marketpulse.stream.sessions import session_ids

S = 1_000_000_000


def test_remembered_sessions_are_the_computed_ones_across_a_dst_change_and_midnight():
    settings = ProcessorSettings(session_tz="America/New_York")
    emitter = Emitter(settings)
    rng = np.random.default_rng(5)
    # 2026-03-08 07:00 UTC is 03:00 EDT, just after the change; the day spans local midnight
    around = 1_772_953_200 * S
    for _ in range(20):
        start = around + rng.integers(-30 * 3600, 30 * 3600, 40) * S
        start = np.concatenate([start, start[:10]])  # repeated starts within one call
        expected = session_ids(start, "America/New_York")
        assert np.array_equal(emitter.sessions(start), expected)
    # a start seen before answers from memory, and the answer is still the computed one
    again = np.array([around - 4 * 3600 * S, around + 20 * 3600 * S], np.int64)
    assert np.array_equal(emitter.sessions(again), session_ids(again, "America/New_York"))
    assert len(set(session_ids(again, "America/New_York").tolist())) == 2


def test_sessions_stay_right_when_the_memory_starts_afresh(monkeypatch):
    import marketpulse.stream.emit as emit

    monkeypatch.setattr(emit, "_SESSION_MEMORY", 8)
    emitter = Emitter(ProcessorSettings())
    start = (1_772_953_200 + np.arange(0, 12 * 3600, 3600)) * S
    for lo in range(0, 12, 3):  # overlapping calls: some starts known, some new
        part = start[lo : lo + 5]
        assert np.array_equal(emitter.sessions(part), session_ids(part, "America/New_York"))
    assert len(emitter._sessions) <= 8


def test_a_call_over_many_starts_gives_the_computed_sessions():
    emitter = Emitter(ProcessorSettings())
    start = (1_772_953_200 + np.arange(-20_000, 20_000, 37)) * S  # over a day, DST change
    assert len(start) > 256
    assert np.array_equal(emitter.sessions(start), session_ids(start, "America/New_York"))
