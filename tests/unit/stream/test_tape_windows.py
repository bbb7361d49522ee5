"""The windows kernel with tape rules (``hold``): volume-only trades, held bars, roles."""

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.stream.tape import LEFT_OUT, OPENING, PRICED, VOLUME_ONLY, lean_roles
from marketpulse.stream.windows import WindowState

S = 1_000_000_000
M = 60 * S
FIELDS = ("sid", "interval", "start", "end", "open", "high", "low", "close", "volume", "pv",
          "count")  # fmt: skip


def _add(state, rows):
    """Add (sid, ts, price, size, role) rows; return the bars closed, as tuples."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * 5
    sid, ts, price, size, roles = (
        np.array(c, t) for c, t in zip(columns, (np.int64, np.int64, float, float, np.int8),
                                       strict=True)
    )  # fmt: skip
    flags, closed = state.add(sid, ts, price, size, roles)
    assert not flags.any()
    return _rows(closed)


def _rows(closed):
    return [tuple(getattr(closed, f)[i].item() for f in FIELDS) for i in range(len(closed))]


def test_volume_only_trades_add_volume_never_a_price():
    state = WindowState([M], lateness=0, hold=True)
    _add(state, [
        (0, 10 * M + 1, 50.0, 7, VOLUME_ONLY),  # opens the window, sets no price
        (0, 10 * M + 2, 10.0, 1, PRICED),
        (0, 10 * M + 3, 99.0, 5, VOLUME_ONLY),  # above the high: no effect on it
        (0, 10 * M + 4, 12.0, 2, PRICED),
        (0, 10 * M + 5, 1.0, 3, VOLUME_ONLY),  # the last trade: not the close
    ])  # fmt: skip
    assert _add(state, [(0, 11 * M, 11.0, 1, PRICED)]) == []  # the 10 min bar is held
    (bar,) = _add(state, [(0, 12 * M, 11.0, 1, PRICED)])  # 11 min closed priced: released
    assert bar == (0, 0, 10 * M, 11 * M, 10.0, 12.0, 10.0, 12.0, 18.0,
                   350 + 10 + 495 + 24 + 3, 5)  # fmt: skip


def test_a_minute_of_volume_only_trades_adds_to_the_previous_bar():
    state = WindowState([M], lateness=0, hold=True)
    _add(state, [(0, 10 * M, 10.0, 1, PRICED), (0, 11 * M + 5, 20.0, 4, VOLUME_ONLY)])
    # 11 min (volume only) closes: no bar, its volume joins the held 10 min bar
    assert _add(state, [(0, 12 * M, 30.0, 2, PRICED)]) == []
    (bar,) = _add(state, [(0, 13 * M, 31.0, 1, PRICED)])
    assert bar == (0, 0, 10 * M, 11 * M, 10.0, 10.0, 10.0, 10.0, 5.0, 90.0, 2)
    # 13 min closes priced: 12 min is released; 14 min closes empty: 13 min is released
    bars = _add(state, [(0, 15 * M, 32.0, 1, PRICED)])
    assert [(r[2], r[8]) for r in bars] == [(12 * M, 2.0), (13 * M, 1.0)]
    assert [r[2] for r in _rows(state.close_all())] == [15 * M]


def test_volume_with_no_bar_before_it_goes_to_the_next_bar():
    state = WindowState([M], lateness=0, hold=True)
    _add(state, [(0, 10 * M, 20.0, 4, VOLUME_ONLY), (0, 12 * M, 10.0, 1, PRICED)])
    (bar,) = _rows(state.close_all())
    assert bar[2:] == (12 * M, 13 * M, 10.0, 10.0, 10.0, 10.0, 5.0, 90.0, 2)


def test_opening_print_sets_the_open_and_left_out_trades_only_move_the_clock():
    state = WindowState([M], lateness=0, hold=True)
    rows = [
        (0, 10 * M + 1, 10.0, 1, PRICED),
        (0, 10 * M + 2, 11.0, 1, OPENING),  # the bar's first trade, though printed later
        (0, 10 * M + 3, 12.0, 1, PRICED),
        (1, 10 * M + 4, 99.0, 1, LEFT_OUT),  # no window, no volume: symbol 1 gets no bar
        (1, 11 * M, 99.0, 1, LEFT_OUT),  # ... but its time closes the 10 min windows
    ]
    assert _add(state, rows) == []  # symbol 0's bar is held
    (bar,) = _rows(state.close_all())
    assert bar[:2] == (0, 0) and bar[4:9] == (11.0, 12.0, 10.0, 12.0, 3.0)


def test_hold_and_fill_do_not_go_together():
    with pytest.raises(ValueError, match="do not go together"):
        WindowState([M], lateness=0, fill=True, hold=True)


def _random_ticks(seed, n=3000):
    rng = np.random.default_rng(seed)
    sid = rng.integers(0, 4, n)
    # bursts and gaps: some minutes of a symbol empty, some of volume-only trades alone
    ts = np.sort(rng.integers(0, 90 * M, n)) + 10**7 * M
    ts = ts + rng.integers(-20 * S, 1, n) * (rng.random(n) < 0.1)  # out of order, within lateness
    price = np.round(100 + rng.normal(0, 1, n).cumsum(), 2)
    size = rng.integers(1, 500, n).astype(float)
    roles = rng.choice([PRICED, VOLUME_ONLY, LEFT_OUT, OPENING], n, p=[0.45, 0.45, 0.05, 0.05])
    quiet = (ts // M) % 7 == 3  # in these minutes only volume-only trades
    roles = np.where(quiet & (roles != LEFT_OUT), VOLUME_ONLY, roles).astype(np.int8)
    keep = ~((sid >= 2) & ((ts // M) % 11 < 3))  # and minutes without trades
    return tuple(c[keep] for c in (sid.astype(np.int64), ts.astype(np.int64), price, size, roles))


def _new(lengths):
    return WindowState(lengths, lateness=30 * S, hold=True)


def _run(state, ticks, cuts):
    out = []
    for lo, hi in zip([0, *cuts], [*cuts, len(ticks[0])], strict=True):
        flags, closed = state.add(*(column[lo:hi] for column in ticks))
        assert not flags.any()
        out += _rows(closed)
    return out


@pytest.mark.parametrize("lengths", [[M], [M, 5 * M, 60 * M]])
def test_streaming_equals_batch_across_cuts_and_a_restore(lengths):
    ticks = _random_ticks(7)
    whole = _new(lengths)
    batch = _run(whole, ticks, []) + _rows(whole.close_all())
    assert len(batch) > 100
    # volume is kept: every accepted trade but the left-out ones is in some bar
    counted = [r for r in batch if r[1] == 0]
    assert sum(r[8] for r in counted) == pytest.approx(ticks[3][ticks[4] != LEFT_OUT].sum())
    assert not any(np.isnan(r[4]) for r in batch)  # no bar without a price
    for seed in range(3):
        rng = np.random.default_rng(seed)
        cuts = sorted(rng.choice(np.arange(1, len(ticks[0])), 25, replace=False).tolist())
        cut = _new(lengths)
        assert _run(cut, ticks, cuts) + _rows(cut.close_all()) == batch
        # snapshot and restore mid-way, into a fresh state, then go on
        middle = cuts[12]
        first = _new(lengths)
        before = _run(first, tuple(c[:middle] for c in ticks), cuts[:12])
        restored = _new(lengths)
        sids = np.arange(first.used)
        for sid, data in zip(sids.tolist(), first.snapshot_symbols(sids), strict=True):
            restored.restore_symbol(sid, data)
        restored.clock[:] = first.clock
        restored.closed[:] = first.closed
        after = _run(restored, tuple(c[middle:] for c in ticks), [c - middle for c in cuts[13:]])
        assert before + after + _rows(restored.close_all()) == batch


def test_state_without_hold_keeps_its_size():
    # state written before tape rules (no hold) restores as it did: the held block is not in it
    plain, held = WindowState([M], lateness=0), WindowState([M], lateness=0, hold=True)
    plain.add(*(np.array(v, t) for v, t in (([0], np.int64), ([M], np.int64), ([1.0], float),
                                            ([1.0], float))))  # fmt: skip
    (data,) = plain.snapshot_symbols(np.array([0]))
    WindowState([M], lateness=0).restore_symbol(0, data)
    assert len(data) == 8 * (1 * 2 * (1 + 4 + 2 + 1) + 2)
    with pytest.raises(ValueError, match="sale-condition rules"):
        held.restore_symbol(0, data)


def test_lean_roles_from_conditions():
    opens = np.array([1000 * M, 2000 * M])
    closes = opens + 390 * M
    o = int(opens[0])
    c = int(closes[0])
    rows = [
        (0, o - M, "00000001"),  # Regular: priced
        (0, o + 2 * S, "20000020"),  # IntermarketSweep | TradeThroughExempt: volume only
        (0, o + 3 * S, "20200040"),  # a cross's opening print (another market): left out
        (0, o + 4 * S, "20000040"),  # the opening print: the bar's first trade
        (0, o + 5 * S, "20000040"),  # the next opening prints: left out
        (1, o + 70 * S, "40"),  # symbol 1's opening print, after its first minute: left out
        (0, o + 6 * S, "4000000"),  # an official open report: left out
        (0, c + 4 * S, "80"),  # the closing print: moved to the session's last instant
        (0, c + 5 * S, "1000000"),  # an official close report: left out
        (0, c + 6 * S, None),  # no condition: priced
        (0, c + 7 * S, "garbage"),  # not a mask: priced
    ]
    sid = np.array([r[0] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], np.int64)
    taken = np.full((2, 2), -(2**62), np.int64)
    roles, moved = lean_roles(pa.array([r[2] for r in rows]), sid, ts, taken, opens, closes, M)
    assert roles.tolist() == [PRICED, VOLUME_ONLY, LEFT_OUT, OPENING, LEFT_OUT, LEFT_OUT,
                              LEFT_OUT, PRICED, LEFT_OUT, PRICED, PRICED]  # fmt: skip
    assert moved[7] == c - 1 and (np.delete(moved, 7) == np.delete(ts, 7)).all()
    assert taken.tolist() == [[o, c], [o, -(2**62)]]
    # the state carries across batches: a later opening print of the same session is left out
    again, _ = lean_roles(pa.array(["40"]), sid[:1], ts[3:4], taken, opens, closes, M)
    assert again.tolist() == [LEFT_OUT]


def test_lean_state_restores_and_a_change_of_conditions_is_refused():
    import msgspec

    from marketpulse.bus import Batch
    from marketpulse.feeds import Simulator
    from marketpulse.stream import Processor, ProcessorSettings
    from marketpulse.stream.checkpoint import META_KEY, CheckpointError

    feed = Simulator(symbols=5, rate=40, seed=3, realtime=False, max_events=500)
    data = next(iter(feed.batches())).data
    batch = Batch("ticks", 0, 0, data.num_rows - 1, "trade", data)
    lean = ProcessorSettings(intervals=("1m",), lateness=0, conditions="lean")
    proc = Processor(lean)
    proc.process(batch)
    records = dict(proc.checkpoint("ticks", 0))
    assert msgspec.msgpack.decode(records[META_KEY])["conditions"] == "lean"
    assert Processor(lean).restore("ticks", 0, records) == 5
    with pytest.raises(CheckpointError, match="written with --conditions lean"):
        Processor(ProcessorSettings(intervals=("1m",), lateness=0)).restore("ticks", 0, records)
    # state written before conditions (no such key): none, as it was
    plain = Processor(ProcessorSettings(intervals=("1m",), lateness=0))
    plain.process(batch)
    records = dict(plain.checkpoint("ticks", 0))
    meta = msgspec.msgpack.decode(records[META_KEY])
    del meta["conditions"]
    records[META_KEY] = msgspec.msgpack.encode(meta)
    assert (
        Processor(ProcessorSettings(intervals=("1m",), lateness=0)).restore("ticks", 0, records)
        == 5
    )
    with pytest.raises(CheckpointError, match="written with --conditions none"):
        Processor(lean).restore("ticks", 0, records)


def test_conditions_stay_out_of_the_origin_of_lakes_written_before():
    from marketpulse.runtime.segments import input_origin
    from marketpulse.stream import ProcessorSettings

    class Feed:
        def identity(self):
            return "a file"

    assert "conditions" not in repr(ProcessorSettings())
    none = input_origin(Feed(), ProcessorSettings(), [])
    assert input_origin(Feed(), ProcessorSettings(conditions="none"), []) == none
    assert input_origin(Feed(), ProcessorSettings(conditions="lean"), []) != none
    with pytest.raises(ValueError, match="choose one of none, lean"):
        ProcessorSettings(conditions="nope")
