"""Event-time bar windows: the numba kernel and its per-partition state.

Windows are aligned to the epoch, except session-aligned ones (daily and
weekly bars, :class:`~marketpulse.stream.sessions.SessionWindows`: a length of
0 in ``lengths``), which span sessions and close when the watermark passes
the session's close; a trade outside every session is in no such window, and
one whose session window has closed already (a smallest interval that does
not divide the close) does not open it again. For every symbol and interval a small ring
of ``slots`` open windows is kept, enough for the allowed lateness. The
partition's watermark is ``max(max event time - lateness, floor)``, where
``floor`` is raised by processing time when the partition is idle. A window
closes when the watermark reaches its end, whichever symbol's tick moved it,
so a quiet symbol's bar still closes. A tick whose smallest-interval window
has closed is late: the kernel flags it and leaves the state untouched.

A tick more than ``max_jump`` ahead of the partition's max event time is
flagged ``future`` and moves nothing, so one bad time cannot push the
watermark years ahead and turn the rest of the stream late. The partition's
next tick confirms a real jump (the market was closed, the file has a gap):
when it too is that far ahead, within ``max_jump`` of the flagged one, it is
accepted and the watermark moves. The first tick of a partition has no
reference and is never ``future``.

With ``fill`` set, an interval in which a symbol had no trade, between its
first bar and the newest trade of the partition, closes as a bar of its own:
the previous close as open, high, low and close, no volume, no trades (the
last of those bars come out when the watermark passes them, as any bar).

With ``hold`` set (sale-condition rules, :mod:`marketpulse.stream.tape`), each
tick has a role: priced, volume-only (adds volume, vwap and trade count, never
a price), left out (moves the clock only) or opening print (the first trade of
its bar: it sets the open). A window without a priced trade gets no bar: its
volume goes to the symbol's previous bar. So that the previous bar can still
take it, a closed bar is held (its own block of state) until the symbol's next
window closes: a priced one releases it and is held in turn, a volume-only one
adds to it, and none (the next window closes empty) releases it. Volume-only
windows with no bar before them (the symbol's first, or after an empty window)
carry their volume to the symbol's next bar.

Closed bars come out in a deterministic order that depends only on the
sequence of ticks (interval, then end, then symbol), never on how the ticks
were split into batches: streaming equals batch.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numba as nb
import numpy as np

from marketpulse.numba_blas import defer_blas_check

defer_blas_check()

if TYPE_CHECKING:
    from marketpulse.stream.sessions import SessionWindows

__all__ = ["FUTURE", "KERNELS", "LATE", "ClosedBars", "WindowState"]

# numba increfs and decrefs every array argument at each call of a jitted function that
# is not inlined: the tick loop's call of _close_due, once per second of a replay, made
# every tick 48 ns instead of 32. The kernels allocate nothing, so they are compiled
# without numba's runtime (``_nrt``), as the JSON parser is (:mod:`.json_scan`).
_kernel = nb.njit(cache=True, nogil=True, _nrt=False)

#: Flags of :meth:`WindowState.add`, per tick (0: accepted).
LATE, FUTURE = 1, 2

_EMPTY = np.int64(-1)
_NEVER = np.int64(-(2**62))
# max event time, watermark floor, next boundary of the smallest interval,
# and the time of a tick just flagged future (a jump waiting for confirmation)
_CLOCK_MAX_TS, _CLOCK_FLOOR, _CLOCK_NEXT, _CLOCK_JUMP = 0, 1, 2, 3


class ClosedBars:
    """Columns of the bars closed by one kernel call."""

    __slots__ = (
        "sid",
        "interval",
        "start",
        "end",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "pv",
        "count",
    )

    def __init__(self, n: int) -> None:
        self.sid = np.empty(n, np.int64)
        self.interval = np.empty(n, np.int64)
        self.start = np.empty(n, np.int64)
        self.end = np.empty(n, np.int64)
        self.open = np.empty(n, np.float64)
        self.high = np.empty(n, np.float64)
        self.low = np.empty(n, np.float64)
        self.close = np.empty(n, np.float64)
        self.volume = np.empty(n, np.float64)
        self.pv = np.empty(n, np.float64)
        self.count = np.empty(n, np.int64)

    def truncate(self, n: int) -> ClosedBars:
        """Keep the first ``n`` rows.

        The columns are allocated for the most bars a kernel call can close
        (every open window, plus one per tick), and few are: when most of that
        room went unused the rows are copied out, so that the output tables
        made from them (Arrow wraps these arrays without copying) do not keep
        the whole allocation alive for as long as they are held downstream
        (sink buffers, the live view's recent tables).
        """
        if n == 0 and len(self.sid):  # most calls close nothing: no copies of nothing
            for name in self.__slots__:
                setattr(self, name, _NO_ROWS[getattr(self, name).dtype.char])
            return self
        compact = n < len(self.sid) // 2
        for name in self.__slots__:
            column = getattr(self, name)[:n]
            setattr(self, name, column.copy() if compact else column)
        return self

    def __len__(self) -> int:
        return len(self.sid)


class WindowState:
    """Open windows of one partition, for every symbol and interval.

    Args:
        lengths: the intervals' lengths in nanoseconds, ascending; 0 for a
            session-aligned interval, after the fixed ones.
        lateness: allowed lateness in nanoseconds.
        capacity: initial number of symbols; grows as needed.
        max_jump: how far (ns) a tick may be ahead of the max event time
            before it needs confirmation (0: any distance).
        sessions: the windows of each session-aligned interval, in order (all
            of one calendar: the same sessions).
        fill: close the intervals in which a symbol had no trade as bars of
            the previous close, no volume, no trades.
        hold: ticks have roles (volume-only, left out, opening print) and
            closed bars are held for the volume-only windows after them (see
            above); not with ``fill``.
    """

    def __init__(
        self,
        lengths: list[int],
        lateness: int,
        capacity: int = 64,
        max_jump: int = 0,
        sessions: Sequence[SessionWindows] = (),
        fill: bool = False,
        hold: bool = False,
    ) -> None:
        fixed = [length for length in lengths if length]
        if not lengths or sorted(fixed) != fixed or lengths[: len(fixed)] != fixed:
            raise ValueError("interval lengths must be ascending, session-aligned last")
        if any(length % fixed[0] for length in fixed):
            raise ValueError("every interval must be a multiple of the smallest")
        if len(sessions) != len(lengths) - len(fixed):
            raise ValueError("one session table per session-aligned interval")
        self.lengths = np.asarray(lengths, np.int64)
        self.lateness = int(lateness)
        self.fill = bool(fill)
        self.hold = bool(hold)
        if self.fill and self.hold:
            raise ValueError("filling gaps and sale-condition rules do not go together")
        self.slots = int(lateness // (fixed[0] if fixed else 86_400 * 10**9) + 2)
        self._tables = _session_arrays(len(lengths), len(fixed), sessions)
        if max_jump < 0:
            raise ValueError("max_jump must not be negative")
        self.max_jump = min(int(max_jump), 2**62)
        self.clock = np.array([_NEVER, _NEVER, _NEVER, _NEVER], np.int64)
        self.closed = np.full(len(lengths), _NEVER, np.int64)
        #: Symbols ids below this have been seen; the scans for closed windows stop there.
        self.used = 0
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        shape = (len(self.lengths), capacity, self.slots)
        self.start = np.full(shape, _EMPTY, np.int64)
        self.ohlc = np.zeros(shape + (4,), np.float64)
        self.vol = np.zeros(shape + (2,), np.float64)
        self.count = np.zeros(shape, np.int64)
        # per interval and symbol: start and slot of the newest window (a cache)
        self.cur = np.zeros((len(self.lengths), capacity, 2), np.int64)
        self.cur[:, :, 0] = _NEVER
        # per interval and symbol: end and close of its last bar (gaps are filled from them)
        self.last_end = np.full((len(self.lengths), capacity), _NEVER, np.int64)
        self.last_close = np.zeros((len(self.lengths), capacity), np.float64)
        # with hold: per interval and symbol, the held bar (start, end of the last window it
        # covers, ohlc, volume and pv, count; start -1: none; a NaN open: volume carried)
        # and per symbol the session open and close whose auction prints were taken
        self.held_span = np.full((len(self.lengths), capacity, 2), _EMPTY, np.int64)
        self.held_ohlc = np.zeros((len(self.lengths), capacity, 4), np.float64)
        self.held_vol = np.zeros((len(self.lengths), capacity, 2), np.float64)
        self.held_count = np.zeros((len(self.lengths), capacity), np.int64)
        self.auctions = np.full((capacity, 2), _NEVER, np.int64)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        """The arrays of every symbol's state (those of filling when it is on)."""
        arrays = (self.start, self.ohlc, self.vol, self.count, self.cur)
        if self.hold:
            return (*arrays, *self._held_arrays(), self.auctions[None])
        return (*arrays, self.last_end, self.last_close) if self.fill else arrays

    def _held_arrays(self) -> tuple[np.ndarray, ...]:
        return (self.held_span, self.held_ohlc, self.held_vol, self.held_count)

    @property
    def capacity(self) -> int:
        """Number of symbols the arrays hold."""
        return self.start.shape[1]

    def ensure(self, n_symbols: int) -> None:
        """Grow the arrays to hold at least ``n_symbols`` symbols."""
        if n_symbols <= self.capacity:
            return
        old = (self.start, self.ohlc, self.vol, self.count, self.cur, self.last_end,
               self.last_close, *self._held_arrays())  # fmt: skip
        auctions = self.auctions
        size = self.capacity
        self._alloc(max(n_symbols, 2 * size))
        arrays = (self.start, self.ohlc, self.vol, self.count, self.cur, self.last_end,
                  self.last_close, *self._held_arrays())  # fmt: skip
        for new, previous in zip(arrays, old, strict=True):
            new[:, :size] = previous
        self.auctions[:size] = auctions

    @property
    def watermark(self) -> int:
        """The current watermark (ns), or a very negative number before any tick."""
        return int(max(self.clock[_CLOCK_MAX_TS] - self.lateness, self.clock[_CLOCK_FLOOR]))

    @property
    def max_ts(self) -> int:
        """The largest event time accepted so far."""
        return int(self.clock[_CLOCK_MAX_TS])

    def add(
        self,
        sid: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
        roles: np.ndarray | None = None,
    ) -> tuple[np.ndarray, ClosedBars]:
        """Add ticks in order; return their flags and the bars they closed.

        A tick's flag is 0 (accepted), :data:`LATE` or :data:`FUTURE`.
        ``roles`` (with ``hold`` only; none: all priced): each tick's role,
        :data:`~marketpulse.stream.tape.PRICED` and the others of that module.
        """
        n = len(ts)
        if n:
            top = int(sid.max()) + 1
            self.ensure(top)  # the kernel does not check bounds
            self.used = max(self.used, top)
        flags = np.zeros(n, np.int8)
        newest = max(self.max_ts, int(ts.max())) if n else self.max_ts
        oldest = int(ts.min()) if n else newest
        room = len(self.lengths) * (n + self.used * self.slots) + self._fill_room(newest, oldest)
        room += self._held_room()
        if roles is None or not self.hold:
            roles = np.zeros(n if self.hold else 0, np.int8)
        out = ClosedBars(room)
        count = _add_ticks(
            sid, ts, price, size, self.lengths, self.lateness, self.max_jump, self.clock,
            self.closed, self.used, self.start, self.ohlc, self.vol, self.count, self.cur, flags,
            *self._tables, *self._fill_arrays(), *_out_arrays(out), *self._hold_arrays(), roles,
        )  # fmt: skip
        return flags, out.truncate(count)

    def _hold_arrays(self) -> tuple[object, ...]:
        return (self.hold, *self._held_arrays())

    def _held_room(self) -> int:
        """The most held bars a call can release (one per interval and symbol)."""
        return len(self.lengths) * self.used if self.hold else 0

    def _fill_arrays(self) -> tuple[object, ...]:
        return (self.fill, self.last_end, self.last_close)

    def _fill_room(self, newest: int, oldest: int) -> int:
        """The most filling bars of windows starting up to ``newest`` (0 without filling).

        A symbol without a bar yet may have its first one closed by ticks
        from ``oldest`` on, or by a window open already; filling starts there.
        """
        if not self.fill or not self.used:
            return 0
        room = 0
        _, _, _, w_start, _, n_w = self._tables
        for j, length in enumerate(self.lengths.tolist()):
            last = self.last_end[j, : self.used].copy()
            opened = self.start[j, : self.used]
            first = min(oldest, int(opened[opened != _EMPTY].min(initial=oldest)))
            last[last == _NEVER] = first - first % length if length else first
            if length:
                room += int(np.maximum(0, (newest - last) // length + 1).sum())
            else:
                starts = w_start[j, : n_w[j]]
                room += int((np.searchsorted(starts, newest, "right")
                             - np.searchsorted(starts, last)).clip(0).sum())  # fmt: skip
        return room

    def advance(self, floor: int) -> ClosedBars:
        """Raise the watermark to at least ``floor`` (idle partitions, end of stream)."""
        self.clock[_CLOCK_FLOOR] = max(self.clock[_CLOCK_FLOOR], floor)
        room = self._fill_room(self.max_ts, self.max_ts)
        out = ClosedBars(len(self.lengths) * self.used * self.slots + room + self._held_room())
        watermark = self.watermark
        count = _close_due(
            watermark, self.lengths, self.closed, self.used, self.start, self.ohlc, self.vol,
            self.count, 0, *self._tables[2:], self.max_ts, *self._fill_arrays(),
            *_out_arrays(out), *self._hold_arrays(),
        )  # fmt: skip
        base = int(self.lengths[0])
        if base:
            self.clock[_CLOCK_NEXT] = watermark - watermark % base + base
        return out.truncate(count)

    def snapshot_symbols(self, sids: np.ndarray) -> list[bytes]:
        """Return the open windows of each of ``sids`` as bytes (for the ``state`` topic)."""
        sids = np.asarray(sids, np.int64)
        if len(sids) == 0:
            return []
        if int(sids.max()) >= self.capacity:
            self.ensure(int(sids.max()) + 1)
        n = len(sids)
        parts = [
            np.ascontiguousarray(array[:, sids].swapaxes(0, 1), array.dtype.newbyteorder("<"))
            .reshape(n, -1)
            .view(np.uint8)
            for array in self._arrays()
        ]
        return [row.tobytes() for row in np.concatenate(parts, axis=1)]

    def restore_symbol(self, sid: int, data: bytes) -> None:
        """Set the open windows of symbol ``sid`` from its bytes of :meth:`snapshot_symbols`.

        Raises:
            ValueError: the bytes were written with other intervals or lateness.
        """
        self.ensure(sid + 1)
        self.used = max(self.used, sid + 1)
        targets = self._arrays()
        sizes = [t[:, sid].size for t in targets]
        if len(data) != 8 * sum(sizes):
            raise ValueError(
                f"window state of {len(data)} bytes does not fit {len(self.lengths)} "
                f"intervals of {self.slots} slots (were the intervals, lateness, the filling "
                "of gaps or the sale-condition rules changed?)"
            )
        offset = 0
        for target, size in zip(targets, sizes, strict=True):
            dtype = "<i8" if target.dtype == np.int64 else "<f8"
            values = np.frombuffer(data, dtype=dtype, count=size, offset=offset)
            target[:, sid] = values.reshape(target[:, sid].shape)
            offset += 8 * size

    def close_all(self) -> ClosedBars:
        """Close every open window (end of a finite stream)."""
        return self.advance(2**62)


#: Columns of no rows, shared by every :class:`ClosedBars` of no bars (writable, as
#: the kernels' arrays are: a read-only array is another type to numba).
_NO_ROWS = {np.dtype(t).char: np.empty(0, t) for t in (np.int64, np.float64)}

_out_arrays = operator.attrgetter(*ClosedBars.__slots__)


#: The kernel's session tables of each (intervals, session windows): every partition's
#: state shares them (they are read only, and a few MB for local dates from 1970 to 2100).
_TABLES: dict[tuple[int, ...], tuple[Sequence[SessionWindows], tuple[np.ndarray, ...]]] = {}


def _session_arrays(
    n_int: int, n_fixed: int, sessions: Sequence[SessionWindows]
) -> tuple[np.ndarray, ...]:
    """The kernel's session tables: opens, closes; per interval, session -> window, starts, ends.

    Rows of fixed intervals are unused; window rows are padded with the
    largest time.
    """
    key = (n_int, n_fixed, *map(id, sessions))
    if key not in _TABLES:
        if len(_TABLES) > 16:
            _TABLES.clear()
        _TABLES[key] = (tuple(sessions), _build_session_arrays(n_int, n_fixed, sessions))
    return _TABLES[key][1]


def _build_session_arrays(
    n_int: int, n_fixed: int, sessions: Sequence[SessionWindows]
) -> tuple[np.ndarray, ...]:
    if not sessions:
        empty = np.empty(0, np.int64)
        pad = np.zeros((n_int, 1), np.int64)
        return empty, empty, pad, pad, pad, np.zeros(n_int, np.int64)
    opens, closes = sessions[0].opens, sessions[0].closes
    if any(len(s.opens) != len(opens) or (s.opens != opens).any() for s in sessions):
        raise ValueError("session-aligned intervals must follow one calendar")
    width = max(len(s.start) for s in sessions)
    group = np.zeros((n_int, len(opens)), np.int64)
    start = np.full((n_int, width), 2**62, np.int64)
    end = np.full((n_int, width), 2**62, np.int64)
    n_w = np.zeros(n_int, np.int64)
    for j, table in enumerate(sessions, start=n_fixed):
        group[j] = table.group
        start[j, : len(table.start)] = table.start
        end[j, : len(table.end)] = table.end
        n_w[j] = len(table.start)
    return (np.ascontiguousarray(opens, np.int64), np.ascontiguousarray(closes, np.int64),
            group, start, end, n_w)  # fmt: skip


@_kernel
def _session_window(j, t, s_open, s_close, s_group):
    """The window of session-aligned interval ``j`` holding ``t``; -1 outside every session."""
    i = np.searchsorted(s_close, t, side="right")  # the first session not closed at t
    if i == len(s_close) or s_open[i] > t:
        return -1
    return s_group[j, i]


@_kernel
def _gap_start(j, s, wm, max_ts, lengths, w_start, w_end, n_w, last_end):
    """The start of symbol ``s``'s window after its last bar; -1 unless it is due.

    Due: closed by ``wm`` and starting by ``max_ts``.
    """
    last = last_end[j, s]
    if last == -(2**62):
        return -1
    if lengths[j] > 0:
        b = last
        e = last + lengths[j]
    else:
        g = np.searchsorted(w_start[j, : n_w[j]], last)
        if g == n_w[j]:
            return -1
        b = w_start[j, g]
        e = w_end[j, g]
    if e <= wm and b <= max_ts:
        return b
    return -1


@_kernel
def _window_end(j, b, lengths, w_start, w_end, n_w):
    """The end of interval ``j``'s window starting at ``b``."""
    if lengths[j] > 0:
        return b + lengths[j]
    return w_end[j, np.searchsorted(w_start[j, : n_w[j]], b)]


@_kernel
def _close_due(wm, lengths, closed, n_sym, start, ohlc, vol, count, k, s_group, w_start,
               w_end, n_w, max_ts, fill, last_end, last_close, o_sid, o_int, o_start, o_end,
               o_open, o_high, o_low, o_close, o_vol, o_pv, o_count, hold, h_span, h_ohlc,
               h_vol, h_count):  # fmt: skip
    n_int, _, n_slot = start.shape  # symbols from n_sym on hold no window
    for j in range(n_int):
        length = lengths[j]
        if closed[j] != -(2**62):
            if length > 0:
                if wm // length == closed[j] // length:
                    continue
            else:
                ends = w_end[j, : n_w[j]]
                if np.searchsorted(ends, wm, side="right") == np.searchsorted(
                    ends, closed[j], side="right"
                ):
                    continue  # no session window ended in between
        closed[j] = wm
        # emit by (start, symbol) without sorting: one pass per distinct start
        # (a symbol holds at most n_slot open windows); each pass also finds the
        # next start to emit
        b_next = -1
        for s in range(n_sym):
            for q in range(n_slot):
                b = start[j, s, q]
                if b != -1 and (b_next == -1 or b < b_next):
                    e = (
                        b + length
                        if length > 0
                        else _window_end(j, b, lengths, w_start, w_end, n_w)
                    )
                    if e <= wm:
                        b_next = b
            if fill:
                b = _gap_start(j, s, wm, max_ts, lengths, w_start, w_end, n_w, last_end)
                if b != -1 and (b_next == -1 or b < b_next):
                    b_next = b
            if hold:
                b = _held_next(j, s, wm, lengths, w_start, w_end, n_w, h_span, h_ohlc)
                if b != -1 and (b_next == -1 or b < b_next):
                    b_next = b
        while b_next != -1:
            current = b_next
            b_next = -1
            for s in range(n_sym):
                emitted = False
                for q in range(n_slot):
                    b = start[j, s, q]
                    if b != current:
                        if b != -1 and (b_next == -1 or b < b_next):
                            if (
                                b + length
                                if length > 0
                                else _window_end(j, b, lengths, w_start, w_end, n_w)
                            ) <= wm:
                                b_next = b
                        continue
                    if hold:  # held for the volume-only windows after it
                        k = _hold(j, s, q, b, lengths, w_start, w_end, n_w, ohlc, vol, count,
                                  h_span, h_ohlc, h_vol, h_count, k, o_sid, o_int, o_start,
                                  o_end, o_open, o_high, o_low, o_close, o_vol, o_pv,
                                  o_count)  # fmt: skip
                        start[j, s, q] = -1
                        emitted = True
                        continue
                    o_sid[k] = s
                    o_int[k] = j
                    o_start[k] = b
                    o_end[k] = (
                        b + length
                        if length > 0
                        else _window_end(j, b, lengths, w_start, w_end, n_w)
                    )
                    o_open[k] = ohlc[j, s, q, 0]
                    o_high[k] = ohlc[j, s, q, 1]
                    o_low[k] = ohlc[j, s, q, 2]
                    o_close[k] = ohlc[j, s, q, 3]
                    o_vol[k] = vol[j, s, q, 0]
                    o_pv[k] = vol[j, s, q, 1]
                    o_count[k] = count[j, s, q]
                    start[j, s, q] = -1
                    last_end[j, s] = o_end[k]
                    last_close[j, s] = o_close[k]
                    k += 1
                    emitted = True
                if hold:
                    b = _held_next(j, s, wm, lengths, w_start, w_end, n_w, h_span, h_ohlc)
                    if b == current and not emitted:  # the next window closed empty
                        k = _emit_held(j, s, lengths, w_start, w_end, n_w, h_span, h_ohlc,
                                       h_vol, h_count, k, o_sid, o_int, o_start, o_end, o_open,
                                       o_high, o_low, o_close, o_vol, o_pv, o_count)  # fmt: skip
                        b = -1
                    if b != -1 and b != current and (b_next == -1 or b < b_next):
                        b_next = b
                if not fill:
                    continue
                b = _gap_start(j, s, wm, max_ts, lengths, w_start, w_end, n_w, last_end)
                if b == current and not emitted:  # an interval without trades: a filling bar
                    p = last_close[j, s]
                    o_sid[k] = s
                    o_int[k] = j
                    o_start[k] = b
                    o_end[k] = (
                        b + length
                        if length > 0
                        else _window_end(j, b, lengths, w_start, w_end, n_w)
                    )
                    o_open[k] = p
                    o_high[k] = p
                    o_low[k] = p
                    o_close[k] = p
                    o_vol[k] = 0.0
                    o_pv[k] = 0.0
                    o_count[k] = 0
                    last_end[j, s] = o_end[k]
                    k += 1
                    b = _gap_start(j, s, wm, max_ts, lengths, w_start, w_end, n_w, last_end)
                if b != -1 and b != current and (b_next == -1 or b < b_next):
                    b_next = b
    return k


@_kernel
def _add_ticks(sid, ts, price, size, lengths, lateness, max_jump, clock, closed, n_sym, start,
               ohlc, vol, count, cur, flags, s_open, s_close, s_group, w_start, w_end, n_w, fill,
               last_end, last_close, o_sid, o_int, o_start, o_end, o_open, o_high, o_low, o_close,
               o_vol, o_pv, o_count, hold, h_span, h_ohlc, h_vol, h_count, roles):  # fmt: skip
    n_int, _, n_slot = start.shape
    n_fixed = 0
    while n_fixed < n_int and lengths[n_fixed] > 0:
        n_fixed += 1
    base = lengths[0]
    # np.int64, not 0: a literal 0 argument makes numba compile a callee again for it alone
    k = np.int64(0)
    for i in range(len(ts)):
        t = ts[i]
        s = sid[i]
        if max_jump > 0 and clock[0] != -(2**62) and t - clock[0] > max_jump:
            pending = clock[3]
            if pending == -(2**62) or abs(t - pending) > max_jump:
                clock[3] = t  # a jump; the partition's next tick may confirm it
                flags[i] = 2
                continue
        clock[3] = -(2**62)
        r = roles[i] if hold else 0
        wm = max(clock[0] - lateness, clock[1])
        if base > 0:
            # the symbol's current smallest window, without a division when t is still in it
            b0 = cur[0, s, 0]
            if not (b0 <= t < b0 + base):
                b0 = t - t % base
            if b0 + base <= wm:
                flags[i] = 1
                continue
        else:  # session-aligned intervals only: late when its session has closed
            g = _session_window(np.int64(0), t, s_open, s_close, s_group)
            if (w_end[0, g] if g >= 0 else t + 1) <= wm:
                flags[i] = 1
                continue
        if t > clock[0]:
            # advance the watermark first, so that windows it closes leave their slots
            clock[0] = t
            new_wm = max(t - lateness, clock[1])
            if base == 0 or new_wm >= clock[2]:
                k = _close_due(new_wm, lengths, closed, n_sym, start, ohlc, vol, count, k,
                               s_group, w_start, w_end, n_w, t, fill, last_end, last_close,
                               o_sid, o_int, o_start, o_end, o_open, o_high, o_low, o_close,
                               o_vol, o_pv, o_count, hold, h_span, h_ohlc, h_vol,
                               h_count)  # fmt: skip
                if base > 0:
                    clock[2] = new_wm - new_wm % base + base
            if n_fixed < n_int:  # the session windows closed just now take no more trades
                wm = max(clock[0] - lateness, clock[1])
        if r == 2:
            continue  # left out: it moves the clock only
        p = price[i]
        z = size[i]
        for j in range(n_fixed):
            length = lengths[j]
            b = cur[j, s, 0]
            q = cur[j, s, 1]
            if not (b <= t < b + length):
                b = t - t % length
                q = (b // length) % n_slot
                cur[j, s, 0] = b
                cur[j, s, 1] = q
            if hold and r != 0:
                _update_role(j, s, q, b, p, z, r, start, ohlc, vol, count)
            elif hold:
                _update_priced(j, s, q, b, p, z, start, ohlc, vol, count)
            else:
                _update(j, s, q, b, p, z, start, ohlc, vol, count)
        for j in range(n_fixed, n_int):
            g = _session_window(j, t, s_open, s_close, s_group)
            if g < 0 or w_end[j, g] <= wm:
                continue  # outside every session, or its window has closed
            b = w_start[j, g]
            q = g % n_slot
            cur[j, s, 0] = b
            cur[j, s, 1] = q
            if hold and r != 0:
                _update_role(j, s, q, b, p, z, r, start, ohlc, vol, count)
            elif hold:
                _update_priced(j, s, q, b, p, z, start, ohlc, vol, count)
            else:
                _update(j, s, q, b, p, z, start, ohlc, vol, count)
    return k


@_kernel
def _update(j, s, q, b, p, z, start, ohlc, vol, count):
    """Add a trade to interval ``j``'s window of symbol ``s`` in slot ``q``, starting at ``b``."""
    if start[j, s, q] != b:
        start[j, s, q] = b
        ohlc[j, s, q, 0] = p
        ohlc[j, s, q, 1] = p
        ohlc[j, s, q, 2] = p
        vol[j, s, q, 0] = 0.0
        vol[j, s, q, 1] = 0.0
        count[j, s, q] = 0
    else:
        if p > ohlc[j, s, q, 1]:
            ohlc[j, s, q, 1] = p
        if p < ohlc[j, s, q, 2]:
            ohlc[j, s, q, 2] = p
    ohlc[j, s, q, 3] = p
    vol[j, s, q, 0] += z
    vol[j, s, q, 1] += p * z
    count[j, s, q] += 1


@_kernel
def _update_priced(j, s, q, b, p, z, start, ohlc, vol, count):
    """Like :func:`_update`, where a window may have no price yet (tape rules).

    A window without a price has a NaN open and close, a high of -inf and a
    low of +inf: the first test of a priced trade (a new high) finds it.
    """
    if start[j, s, q] != b:
        start[j, s, q] = b
        ohlc[j, s, q, 0] = p
        ohlc[j, s, q, 1] = p
        ohlc[j, s, q, 2] = p
        vol[j, s, q, 0] = 0.0
        vol[j, s, q, 1] = 0.0
        count[j, s, q] = 0
    else:
        high = ohlc[j, s, q, 1]
        if p > high:
            if high == -np.inf:  # the window's first price
                ohlc[j, s, q, 0] = p
            ohlc[j, s, q, 1] = p
        if p < ohlc[j, s, q, 2]:
            ohlc[j, s, q, 2] = p
    ohlc[j, s, q, 3] = p
    vol[j, s, q, 0] += z
    vol[j, s, q, 1] += p * z
    count[j, s, q] += 1


@_kernel
def _update_role(j, s, q, b, p, z, r, start, ohlc, vol, count):
    """Add a volume-only trade (role 1) or an opening print (3, the bar's first trade)."""
    if start[j, s, q] != b:
        start[j, s, q] = b
        ohlc[j, s, q, 0] = np.nan
        ohlc[j, s, q, 1] = -np.inf
        ohlc[j, s, q, 2] = np.inf
        ohlc[j, s, q, 3] = np.nan
        vol[j, s, q, 0] = 0.0
        vol[j, s, q, 1] = 0.0
        count[j, s, q] = 0
    if r == 3:
        if p > ohlc[j, s, q, 1]:
            if ohlc[j, s, q, 1] == -np.inf:  # the window's first price: its close too
                ohlc[j, s, q, 3] = p
            ohlc[j, s, q, 1] = p
        if p < ohlc[j, s, q, 2]:
            ohlc[j, s, q, 2] = p
        ohlc[j, s, q, 0] = p
    vol[j, s, q, 0] += z
    vol[j, s, q, 1] += p * z
    count[j, s, q] += 1


@_kernel
def _held_next(j, s, wm, lengths, w_start, w_end, n_w, h_span, h_ohlc):
    """The start of the window after symbol ``s``'s held bar when it has closed; else -1."""
    if h_span[j, s, 0] == -1 or np.isnan(h_ohlc[j, s, 0]):
        return -1  # nothing held, or volume carried to the next bar
    last = h_span[j, s, 1]
    if lengths[j] > 0:
        b = last
        e = last + lengths[j]
    else:
        g = np.searchsorted(w_start[j, : n_w[j]], last)
        if g == n_w[j]:
            return -1
        b = w_start[j, g]
        e = w_end[j, g]
    return b if e <= wm else -1


@_kernel
def _hold(j, s, q, b, lengths, w_start, w_end, n_w, ohlc, vol, count, h_span, h_ohlc, h_vol,
          h_count, k, o_sid, o_int, o_start, o_end, o_open, o_high, o_low, o_close, o_vol, o_pv,
          o_count):  # fmt: skip
    """Take symbol ``s``'s closed window (slot ``q``, start ``b``) into its held bar.

    A priced window releases the bar held before it (or takes the volume
    carried) and is held; a volume-only one adds to the held bar.
    """
    e = _window_end(j, b, lengths, w_start, w_end, n_w)
    if not np.isnan(ohlc[j, s, q, 0]):
        if h_span[j, s, 0] != -1:
            if np.isnan(h_ohlc[j, s, 0]):  # volume carried from before: this bar takes it
                vol[j, s, q, 0] += h_vol[j, s, 0]
                vol[j, s, q, 1] += h_vol[j, s, 1]
                count[j, s, q] += h_count[j, s]
            else:
                k = _emit_held(j, s, lengths, w_start, w_end, n_w, h_span, h_ohlc, h_vol,
                               h_count, k, o_sid, o_int, o_start, o_end, o_open, o_high, o_low,
                               o_close, o_vol, o_pv, o_count)  # fmt: skip
        h_span[j, s, 0] = b
        for c in range(4):
            h_ohlc[j, s, c] = ohlc[j, s, q, c]
        h_vol[j, s, 0] = vol[j, s, q, 0]
        h_vol[j, s, 1] = vol[j, s, q, 1]
        h_count[j, s] = count[j, s, q]
    else:
        if h_span[j, s, 0] == -1:  # no bar before it: the volume waits for the next one
            h_span[j, s, 0] = b
            h_ohlc[j, s, 0] = np.nan
            h_vol[j, s, 0] = 0.0
            h_vol[j, s, 1] = 0.0
            h_count[j, s] = 0
        h_vol[j, s, 0] += vol[j, s, q, 0]
        h_vol[j, s, 1] += vol[j, s, q, 1]
        h_count[j, s] += count[j, s, q]
    h_span[j, s, 1] = e
    return k


@_kernel
def _emit_held(j, s, lengths, w_start, w_end, n_w, h_span, h_ohlc, h_vol, h_count, k, o_sid,
               o_int, o_start, o_end, o_open, o_high, o_low, o_close, o_vol, o_pv,
               o_count):  # fmt: skip
    """Write symbol ``s``'s held bar as output row ``k``; return the next row."""
    b = h_span[j, s, 0]
    o_sid[k] = s
    o_int[k] = j
    o_start[k] = b
    o_end[k] = _window_end(j, b, lengths, w_start, w_end, n_w)
    o_open[k] = h_ohlc[j, s, 0]
    o_high[k] = h_ohlc[j, s, 1]
    o_low[k] = h_ohlc[j, s, 2]
    o_close[k] = h_ohlc[j, s, 3]
    o_vol[k] = h_vol[j, s, 0]
    o_pv[k] = h_vol[j, s, 1]
    o_count[k] = h_count[j, s]
    h_span[j, s, 0] = -1
    return k + 1


#: The kernels called from Python (marketpulse.kernel_progress reads their callees off them).
KERNELS = (_add_ticks, _close_due)
