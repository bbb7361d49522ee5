import numpy as np
import pytest

from marketpulse.stream.windows import FUTURE, LATE, WindowState

S = 1_000_000_000


def _add(state, rows):
    sid = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    price = np.array([r[2] for r in rows], np.float64)
    size = np.array([r[3] for r in rows], np.float64)
    return state.add(sid, ts, price, size)


def test_bar_closes_when_watermark_passes_its_end():
    state = WindowState([S], lateness=0)
    late, closed = _add(
        state, [(0, 10 * S + 1, 5.0, 1), (0, 10 * S + 5, 7.0, 2), (0, 10 * S + 9, 4.0, 1)]
    )
    assert not late.any()
    assert len(closed) == 0  # the 10 s window is still open
    _, closed = _add(state, [(0, 11 * S, 6.0, 3)])
    assert len(closed) == 1
    assert closed.start[0] == 10 * S
    assert (closed.open[0], closed.high[0], closed.low[0], closed.close[0]) == (5.0, 7.0, 4.0, 4.0)
    assert closed.volume[0] == 4.0
    assert closed.pv[0] == 5.0 + 14.0 + 4.0
    assert closed.count[0] == 3


def test_quiet_symbol_bar_closes_on_other_symbols_ticks():
    state = WindowState([S], lateness=0)
    _add(state, [(0, 10 * S, 5.0, 1)])
    _, closed = _add(state, [(1, 12 * S, 9.0, 1)])
    assert list(closed.sid) == [0]
    assert closed.start[0] == 10 * S


def test_late_tick_is_flagged_and_does_not_change_state():
    state = WindowState([S], lateness=S // 2)
    _add(
        state, [(0, 10 * S, 5.0, 1), (0, 11 * S + S // 2, 6.0, 1)]
    )  # watermark 11 s: window 10 closed
    late, closed = _add(state, [(0, 10 * S + 100, 99.0, 1), (0, 11 * S + 1, 7.0, 1)])
    assert list(late) == [True, False]
    assert len(closed) == 0
    closed = state.close_all()
    assert closed.high[0] == 7.0 and closed.low[0] == 6.0


def test_tick_within_lateness_joins_its_window():
    state = WindowState([S], lateness=2 * S)
    _add(state, [(0, 10 * S, 5.0, 1), (0, 11 * S, 6.0, 1)])
    late, _ = _add(state, [(0, 10 * S + 5, 8.0, 1)])  # out of order but within lateness
    assert not late.any()
    closed = state.close_all()
    first = closed.start == 10 * S
    assert closed.high[first][0] == 8.0 and closed.close[first][0] == 8.0


def test_several_intervals_and_jump_in_time_keep_every_window():
    state = WindowState([S, 60 * S], lateness=S // 2)
    rows = [(0, t * S, float(t), 1) for t in (0, 1, 2, 59, 61, 3600)]
    _, closed = _add(state, rows)
    rest = state.close_all()
    starts_1s = sorted(
        list(closed.start[closed.interval == 0]) + list(rest.start[rest.interval == 0])
    )
    starts_1m = sorted(
        list(closed.start[closed.interval == 1]) + list(rest.start[rest.interval == 1])
    )
    assert starts_1s == [0, S, 2 * S, 59 * S, 61 * S, 3600 * S]
    assert starts_1m == [0, 60 * S, 3600 * S]


def test_batching_does_not_change_output():
    rng = np.random.default_rng(1)
    n = 20_000
    ts = np.sort(rng.integers(0, 600 * S, n))
    ts[rng.random(n) < 0.05] -= S  # some out of order, some late
    sid = rng.integers(0, 7, n)
    price = rng.uniform(10, 20, n)
    size = rng.integers(1, 500, n).astype(float)

    def run(chunks):
        state = WindowState([S, 60 * S, 300 * S], lateness=S // 2)
        lates, outs = [], []
        for part in np.array_split(np.arange(n), chunks):
            late, closed = state.add(sid[part], ts[part], price[part], size[part])
            lates.append(late)
            outs.append(closed)
        outs.append(state.close_all())
        cat = {
            name: np.concatenate([getattr(o, name) for o in outs])
            for name in ("sid", "start", "interval", "close", "volume")
        }
        return np.concatenate(lates), cat

    late1, one = run(1)
    late2, many = run(37)
    assert late1.any()
    np.testing.assert_array_equal(late1, late2)
    for name in one:
        np.testing.assert_array_equal(one[name], many[name])


def test_intervals_must_be_multiples():
    with pytest.raises(ValueError):
        WindowState([2 * S, 3 * S], lateness=0)


def test_symbol_ids_beyond_capacity_grow_the_state():
    state = WindowState([S], lateness=0, capacity=2)
    _add(state, [(40, 10 * S, 5.0, 1)])
    assert state.capacity > 40
    closed = state.close_all()
    assert list(closed.sid) == [40]


def test_bars_closing_together_come_out_by_start_then_symbol():
    # real epoch timestamps: the sort key must not overflow
    base = 1_700_000_000 * S
    state = WindowState([S], lateness=3 * S, capacity=100)
    rows = [(sid, base + k * S, 1.0, 1) for k in range(3) for sid in (90, 7, 55)]
    _add(state, rows)
    closed = state.close_all()
    assert [
        (int(s), int(b - base) // S) for s, b in zip(closed.sid, closed.start, strict=True)
    ] == [(7, 0), (55, 0), (90, 0), (7, 1), (55, 1), (90, 1), (7, 2), (55, 2), (90, 2)]


DAY = 86_400 * S


def test_a_tick_far_ahead_is_flagged_future_and_moves_nothing():
    state = WindowState([S], lateness=0, max_jump=DAY)
    _add(state, [(0, 10 * S, 5.0, 1)])
    flags, closed = _add(state, [(0, 10 * S + 3650 * DAY, 9.0, 1), (0, 10 * S + 1, 6.0, 1)])
    assert flags.tolist() == [FUTURE, 0]  # the next tick is not late
    assert state.max_ts == 10 * S + 1 and len(closed) == 0
    bar = state.close_all()
    assert (bar.high[0], bar.close[0], bar.count[0]) == (6.0, 6.0, 2)


def test_a_jump_confirmed_by_the_next_tick_moves_the_watermark():
    """A market closed for longer than max_jump: its first tick waits for the next one."""
    state = WindowState([S], lateness=0, max_jump=DAY)
    _add(state, [(0, 10 * S, 5.0, 1)])
    later = 10 * S + 9 * DAY
    flags, closed = _add(state, [(0, later, 7.0, 1), (1, later + S // 2, 8.0, 1)])
    assert flags.tolist() == [FUTURE, 0]
    assert state.max_ts == later + S // 2
    assert closed.start.tolist() == [10 * S]  # the old bar closed by the confirmed jump
    # an outlier followed by an ordinary tick is forgotten: the next jump starts afresh
    flags, _ = _add(state, [(0, later + 30 * DAY, 1.0, 1), (0, later + S, 8.0, 1),
                            (0, later + 30 * DAY + 1, 1.0, 1)])  # fmt: skip
    assert flags.tolist() == [FUTURE, 0, FUTURE]


def test_future_flags_do_not_depend_on_batch_boundaries():
    jump = 10 * S + 40 * DAY
    rows = [(0, 10 * S, 5.0, 1), (0, jump, 7.0, 1), (0, jump + 1, 8.0, 1), (0, 11 * S, 6.0, 1),
            (0, 10 * S + 90 * DAY, 1.0, 1), (0, jump + 2, 8.0, 1)]  # fmt: skip
    whole = WindowState([S], lateness=0, max_jump=DAY)
    expected, _ = _add(whole, rows)
    assert expected.tolist() == [0, FUTURE, 0, LATE, FUTURE, 0]
    for cut in range(1, len(rows)):
        split = WindowState([S], lateness=0, max_jump=DAY)
        flags = np.concatenate([_add(split, rows[:cut])[0], _add(split, rows[cut:])[0]])
        assert flags.tolist() == expected.tolist(), cut


def test_without_max_jump_any_distance_is_accepted():
    state = WindowState([S], lateness=0)
    _add(state, [(0, 10 * S, 5.0, 1)])
    flags, _ = _add(state, [(0, 10 * S + 3650 * DAY, 9.0, 1), (0, 10 * S + 1, 6.0, 1)])
    assert flags.tolist() == [0, LATE]


def _held_bytes(array):
    """Bytes of the allocation a numpy array keeps alive (its own, or its root base's)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array.nbytes


def test_closed_bars_hold_only_their_rows_not_the_room_for_every_tick():
    # a kernel call over many ticks that closes a single bar: its columns are
    # allocated for one bar per tick; what comes out must not keep that alive
    state = WindowState([S], lateness=0)
    n = 50_000
    ts = np.concatenate([10 * S + np.arange(n - 1, dtype=np.int64), [11 * S]])
    _, closed = state.add(np.zeros(n, np.int64), ts, np.full(n, 5.0), np.ones(n, np.float64))
    assert len(closed) == 1 and closed.count[0] == n - 1
    for name in closed.__slots__:
        column = getattr(closed, name)
        assert _held_bytes(column) <= 2 * column.itemsize, name
