"""Quotes per bar and order flow: the as-of join, Lee-Ready and their per-partition state.

Beside the bar windows (:mod:`marketpulse.stream.windows`), a partition that
has seen a quote keeps, per symbol, the quote in force and the state of the
tick test, and per symbol, interval and window (the same windows and ring of
slots as the bars) the time integrals of the spread and the mid and the
volume bought and sold. Each closed bar then gets:

- ``spread_twa`` and ``mid_twa``: the spread (ask - bid) and the mid
  ((bid + ask) / 2) averaged over the bar, each quote weighted by how long it
  prevailed inside the bar. The quote in force at the bar's start carries
  over from before; time before the symbol's first quote has no weight.
- ``last_bid`` and ``last_ask``: the quote in force at the bar's end (the
  last one with a time before the end).
- ``buy_volume`` and ``sell_volume``: the volume of its trades classified buy
  or sell by Lee and Ready (1991, "Inferring Trade Direction from Intraday
  Data", J. Finance 46(2), 733-746): a trade above the mid of the quote in
  force is a buy, below it a sell; at the mid, and when the symbol has no
  quote yet, the tick test decides (uptick or zero-uptick: buy; downtick or
  zero-downtick: sell; a symbol's first trades before any price change stay
  unclassified, in neither).

The quote in force at a trade is the as-of join of the trade to the quotes of
its symbol: the last quote with ``ts <= trade ts``. Lee and Ready match each
trade to the quote of at least 5 seconds earlier, because in their 1988 TAQ
data quotes were recorded ahead of the trades that caused them; with
exchange timestamps on both, as every feed here gives, that lag does not
exist and current practice (e.g. Bessembinder 2003, J. Financial Markets
6(3); Holden and Jacobsen 2014, J. Finance 69(4)) uses no delay. So do we:
the delay is 0.

Quotes usually reach the bus ahead of the trades of their time (a feed sends
the quotes of a batch first), so a quote is not applied on arrival: it waits
in a pending list, sorted by time, until a trade of the partition reaches its
time (or the watermark passes it), and the quotes of every symbol are then
applied in time order. The result depends only on the sequence of ticks,
never on how they were cut into batches. A quote older than its symbol's
quote in force counts from that quote's time; a trade older than quotes
applied already (out of order within the lateness) is matched to the newest
one. Filled bars (``fill_gaps``) carry no quote statistics.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from marketpulse.stream.windows import (
    _CLOCK_FLOOR,
    ClosedBars,
    WindowState,
    _kernel,
    _session_window,
)

# _flow's helpers (_apply, _slot, _weigh, _finish), called once a trade or a quote, are
# compiled as the window kernels are (``_kernel``): without numba's reference counts
# of their array arguments

__all__ = [
    "KERNELS",
    "MAX_PENDING",
    "MAX_PENDING_SYMBOL",
    "QUOTE_BAR_COLUMNS",
    "QuoteBars",
    "QuoteState",
]

#: The columns quotes add to a bar, in order (:data:`marketpulse.models.BAR_QUOTE_COLUMNS`).
QUOTE_BAR_COLUMNS = (
    "spread_twa", "mid_twa", "last_bid", "last_ask", "buy_volume", "sell_volume",
)  # fmt: skip

_NEVER = np.int64(-(2**62))
#: Quotes waiting for trades at most, per partition: beyond (a partition with quotes
#: and no trade to reach them), the oldest are applied as if the watermark had passed.
MAX_PENDING = 1_000_000
#: Quotes of one symbol waiting at most (beyond, its oldest are applied the same way):
#: a symbol's pending quotes travel in its ``state`` record, 24 bytes each, and a record
#: must stay under Kafka's default limit of 1,000,000 bytes (``message.max.bytes``).
MAX_PENDING_SYMBOL = 20_000
# per window: time integrals of the spread and the mid, the time with a quote, volumes
_SPREAD_DT, _MID_DT, _DT, _BUY, _SELL = 0, 1, 2, 3, 4
_N_ACC = 5
# per window: the last quote in it; per symbol: the quote in force
_BID, _ASK = 0, 1


_NO_TRADES = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0),
              np.empty(0, np.int8))  # fmt: skip


class QuoteBars:
    """The quote columns of the bars closed by one call, row for row (NaN: null)."""

    __slots__ = QUOTE_BAR_COLUMNS

    def __init__(self, values: np.ndarray) -> None:
        for i, name in enumerate(QUOTE_BAR_COLUMNS):
            setattr(self, name, values[:, i])

    def __len__(self) -> int:
        return len(self.spread_twa)  # type: ignore[attr-defined]


class QuoteState:
    """The quotes in force, the tick test and the open windows' quote sums of one partition.

    Args:
        windows: the partition's bar windows: the same intervals, lateness,
            slots and sessions.
    """

    def __init__(self, windows: WindowState) -> None:
        self._windows = windows
        self.lengths = windows.lengths
        self.lateness = windows.lateness
        self.slots = windows.slots
        self._tables = windows._tables
        self.pending_sid = np.empty(0, np.int64)
        self.pending_ts = np.empty(0, np.int64)
        self.pending_px = np.empty((0, 2), np.float64)
        self._alloc(windows.capacity)

    def _alloc(self, capacity: int) -> None:
        n_int = len(self.lengths)
        self.quote_ts = np.full(capacity, _NEVER, np.int64)
        self.direction = np.zeros(capacity, np.int64)  # the tick test: +1 up, -1 down, 0 none
        self.quote = np.full((capacity, 2), np.nan, np.float64)
        self.last_price = np.full(capacity, np.nan, np.float64)
        self.start = np.full((n_int, capacity, self.slots), -1, np.int64)
        self.acc = np.zeros((n_int, capacity, self.slots, _N_ACC), np.float64)
        self.last = np.full((n_int, capacity, self.slots, 2), np.nan, np.float64)

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (self.quote_ts, self.direction, self.quote, self.last_price, self.start,
                self.acc, self.last)  # fmt: skip

    @property
    def capacity(self) -> int:
        """Number of symbols the arrays hold."""
        return len(self.quote_ts)

    def ensure(self, n_symbols: int) -> None:
        """Grow the arrays to hold at least ``n_symbols`` symbols."""
        size = self.capacity
        if n_symbols <= size:
            return
        old = self._arrays()
        self._alloc(max(n_symbols, 2 * size))
        for new, previous in zip(self._arrays(), old, strict=True):
            if new.ndim >= 3:
                new[:, :size] = previous
            else:
                new[:size] = previous

    def add_quotes(
        self, sid: np.ndarray, ts: np.ndarray, bid: np.ndarray, ask: np.ndarray
    ) -> np.ndarray:
        """Queue quotes (in arrival order) until trades or the watermark reach their times.

        Returns the symbols of quotes applied at once (beyond :data:`MAX_PENDING`
        in all, or :data:`MAX_PENDING_SYMBOL` of one symbol: a partition with
        quotes and no trade to reach them, as before an open).
        """
        if not len(ts):
            return np.empty(0, np.int64)
        self.ensure(int(sid.max()) + 1)
        all_sid = np.concatenate([self.pending_sid, sid.astype(np.int64)])
        all_ts = np.concatenate([self.pending_ts, ts.astype(np.int64)])
        all_px = np.concatenate([self.pending_px, np.column_stack([bid, ask]).astype(np.float64)])
        order = np.argsort(all_ts, kind="stable")  # a symbol's equal times stay in arrival order
        self.pending_sid, self.pending_ts = all_sid[order], all_ts[order]
        self.pending_px = np.ascontiguousarray(all_px[order])
        until = self._beyond_limits()
        if until is None:
            return np.empty(0, np.int64)
        windows = self._windows
        floor = int(windows.clock[_CLOCK_FLOOR])
        return self._run(*_NO_TRADES, ClosedBars(0), windows.max_ts, floor, until)[1]

    def _beyond_limits(self) -> int | None:
        """The time up to which pending quotes must be applied to keep within the limits."""
        excess = len(self.pending_ts) - MAX_PENDING
        until = int(self.pending_ts[excess - 1]) if excess > 0 else None
        counts = np.bincount(self.pending_sid)
        for s in np.flatnonzero(counts > MAX_PENDING_SYMBOL).tolist():
            mine = self.pending_ts[self.pending_sid == s]
            last = int(mine[len(mine) - MAX_PENDING_SYMBOL - 1])  # the newest of the excess
            until = last if until is None else max(until, last)
        return until

    def trades(
        self,
        sid: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
        flags: np.ndarray,
        closed: ClosedBars,
        max_ts: int,
        floor: int,
    ) -> tuple[QuoteBars, np.ndarray]:
        """Classify trades just added to the windows, and give their closed bars' quote columns.

        Args:
            sid: the trades' symbol ids, as given to :meth:`WindowState.add`.
            ts: their times.
            price: their prices.
            size: their sizes.
            flags: their flags from it (only accepted trades count).
            closed: the bars it closed.
            max_ts: the windows' max event time before the call.
            floor: the windows' watermark floor.

        Returns:
            the quote columns of ``closed``, and the symbols whose quotes were applied.
        """
        if len(sid):
            self.ensure(int(sid.max()) + 1)
        return self._run(sid, ts, price, size, flags, closed, max_ts, floor, _NEVER)

    def advance(
        self, closed: ClosedBars, max_ts: int, floor: int, watermark: int
    ) -> tuple[QuoteBars, np.ndarray]:
        """The quote columns of bars closed by raising the watermark to ``watermark``."""
        return self._run(*_NO_TRADES, closed, max_ts, floor, watermark)

    def _run(self, sid, ts, price, size, flags, closed, max_ts, floor, final):  # type: ignore[no-untyped-def]
        out = np.full((len(closed), len(QUOTE_BAR_COLUMNS)), np.nan)
        if len(closed):
            self.ensure(int(closed.sid.max()) + 1)
        ts, price, size = _read_only(ts), _read_only(price), _read_only(size)
        applied = _flow(
            sid, ts, price, size, flags, max_ts, floor, final, self.lateness, self.lengths,
            self.pending_sid, self.pending_ts, self.pending_px, self.quote_ts, self.quote,
            self.last_price, self.direction, self.start, self.acc, self.last, *self._tables,
            closed.sid, closed.interval, closed.start, closed.end, closed.count, out,
        )  # fmt: skip
        changed = np.unique(self.pending_sid[:applied])
        if applied:
            self.pending_sid = self.pending_sid[applied:]
            self.pending_ts = self.pending_ts[applied:]
            self.pending_px = self.pending_px[applied:]
        return QuoteBars(out), changed

    def snapshot_symbols(self, sids: np.ndarray) -> list[bytes]:
        """Each of ``sids``' quote state as bytes: quote in force, tick test, windows, pending."""
        sids = np.asarray(sids, np.int64)
        if len(sids) and int(sids.max()) >= self.capacity:
            self.ensure(int(sids.max()) + 1)
        records = []
        for s in sids.tolist():
            mine = self.pending_sid == s
            parts = [
                np.array([self.quote_ts[s], self.direction[s], int(mine.sum())], "<i8"),
                np.asarray(self.quote[s], "<f8"),
                np.array([self.last_price[s]], "<f8"),
                np.ascontiguousarray(self.start[:, s], "<i8"),
                np.ascontiguousarray(self.acc[:, s], "<f8"),
                np.ascontiguousarray(self.last[:, s], "<f8"),
                np.ascontiguousarray(self.pending_ts[mine], "<i8"),
                np.ascontiguousarray(self.pending_px[mine], "<f8"),
            ]
            records.append(b"".join(p.tobytes() for p in parts))
        return records

    def restore_symbol(self, sid: int, data: bytes) -> None:
        """Set symbol ``sid``'s quote state from its bytes of :meth:`snapshot_symbols`.

        Raises:
            ValueError: the bytes do not fit these intervals and lateness.
        """
        self.ensure(sid + 1)
        fixed = 3 + 2 + 1 + sum(a[:, sid].size for a in (self.start, self.acc, self.last))
        if len(data) < 8 * fixed:
            raise ValueError(f"quote state of {len(data)} bytes is too short")
        head = np.frombuffer(data, "<i8", count=3)
        n_pending = int(head[2])
        if len(data) != 8 * (fixed + 3 * n_pending):
            raise ValueError(
                f"quote state of {len(data)} bytes does not fit {len(self.lengths)} intervals "
                f"of {self.slots} slots"
            )
        self.quote_ts[sid], self.direction[sid] = int(head[0]), int(head[1])
        offset = 24
        self.quote[sid] = np.frombuffer(data, "<f8", count=2, offset=offset)
        offset += 16
        self.last_price[sid] = np.frombuffer(data, "<f8", count=1, offset=offset)[0]
        offset += 8
        for target in (self.start, self.acc, self.last):
            view = target[:, sid]
            dtype = "<i8" if target.dtype == np.int64 else "<f8"
            target[:, sid] = np.frombuffer(data, dtype, count=view.size, offset=offset).reshape(
                view.shape
            )
            offset += 8 * view.size
        ts = np.frombuffer(data, "<i8", count=n_pending, offset=offset)
        offset += 8 * n_pending
        px = np.frombuffer(data, "<f8", count=2 * n_pending, offset=offset).reshape(-1, 2)
        self.add_quotes(np.full(n_pending, sid, np.int64), ts, px[:, 0], px[:, 1])


def _read_only(values: np.ndarray) -> np.ndarray:
    """``values``, read-only as Arrow's columns are: numba compiles ``_flow`` once, not per kind."""
    if values.flags.writeable:
        values = values.view()
        values.flags.writeable = False
    return values


@nb.njit(cache=True, nogil=True)
def _flow(sid, ts, price, size, flags, max_ts, floor, final, lateness, lengths, p_sid, p_ts,
          p_px, quote_ts, quote, last_price, direction, start, acc, last, s_open, s_close,
          s_group, w_start, w_end, n_w, o_sid, o_int, o_start, o_end, o_count, out):  # fmt: skip
    """Run trades (then, if ``final`` is set, a watermark advance to it) through the quotes.

    Mirrors the clock of :func:`marketpulse.stream.windows._add_ticks`: a bar
    closed by trade ``i`` is finished before the trade is added, once every
    quote up to the trade's time is applied. Returns the pending quotes applied.
    """
    n_int = start.shape[0]
    done = np.zeros(len(o_end), np.bool_)
    wm = max(max_ts - lateness, floor)
    cm = max_ts
    # np.int64, not 0: a literal 0 argument makes numba compile _apply again for it alone
    applied = np.int64(0)
    r = np.int64(0)  # rows before r are finished
    for i in range(len(ts)):
        if flags[i] != 0:
            continue
        t = ts[i]
        s = sid[i]
        new_wm = wm
        if t > cm:
            new_wm = max(t - lateness, floor)
        r1 = r  # the bars this trade closes: the next rows ending by the new watermark
        while r1 < len(o_end) and o_end[r1] <= new_wm:
            r1 += 1
        applied = _apply(t, applied, p_sid, p_ts, p_px, wm, r, r1, done, lateness, lengths,
                         quote_ts, quote, start, acc, last, s_group, w_start, w_end, n_w,
                         o_sid, o_int, o_start, o_end, o_count, out)  # fmt: skip
        r = r1
        if t > cm:
            cm = t
            wm = new_wm
        # the tick test, then the quote rule (Lee and Ready 1991)
        p = price[i]
        d = 0
        previous = last_price[s]
        if previous == previous:  # not NaN
            if p > previous:
                d = 1
            elif p < previous:
                d = -1
            else:
                d = direction[s]
        last_price[s] = p
        direction[s] = d
        side = d
        if quote_ts[s] != -(2**62):
            mid = 0.5 * (quote[s, 0] + quote[s, 1])
            if p > mid:
                side = 1
            elif p < mid:
                side = -1
        if side == 0:
            continue
        slot = _BUY if side > 0 else _SELL
        for j in range(n_int):
            length = lengths[j]
            if length > 0:
                b = t - t % length
                q = (b // length) % start.shape[2]
            else:
                g = _session_window(j, t, s_open, s_close, s_group)
                if g < 0 or w_end[j, g] <= wm:
                    continue
                b = w_start[j, g]
                q = g % start.shape[2]
            _slot(j, s, q, b, start, acc, last)
            acc[j, s, q, slot] += size[i]
    if final != -(2**62):
        r1 = len(o_end)
        applied = _apply(final, applied, p_sid, p_ts, p_px, wm, r, r1, done, lateness, lengths,
                         quote_ts, quote, start, acc, last, s_group, w_start, w_end, n_w,
                         o_sid, o_int, o_start, o_end, o_count, out)  # fmt: skip
    return applied


@_kernel
def _apply(until, applied, p_sid, p_ts, p_px, wm, r, r1, done, lateness, lengths, quote_ts,
           quote, start, acc, last, s_group, w_start, w_end, n_w, o_sid, o_int, o_start, o_end,
           o_count, out):  # fmt: skip
    """Apply the pending quotes up to time ``until``, in time order; return how many are applied.

    Before a quote at ``z``, the closing bars (rows ``r`` to ``r1``) ending by
    ``z - lateness`` are finished: the quote cannot change them, and the
    windows its time-weighting reaches are then at most a ring's worth. The
    closing bars still open after the last of those quotes are finished last.
    """
    n_int, _, n_slot = start.shape
    while applied < len(p_ts) and p_ts[applied] <= until:
        z = p_ts[applied]
        s = p_sid[applied]
        for k in range(r, r1):
            if not done[k] and o_end[k] <= z - lateness:
                _finish(k, quote_ts, quote, start, acc, last, o_sid, o_int, o_start, o_end,
                        o_count, out)  # fmt: skip
                done[k] = True
        a = quote_ts[s]
        if a != -(2**62):
            if z < a:
                z = a  # an older quote counts from the time of the one in force
            # the previous quote prevailed over [a, z): into the windows still open
            low = max(a, max(wm, z - lateness))
            bid = quote[s, 0]
            ask = quote[s, 1]
            for j in range(n_int):
                length = lengths[j]
                if length > 0:
                    b = low - low % length
                    while b < z:
                        x0 = max(a, b)
                        x1 = min(z, b + length)
                        if x1 > x0:
                            q = (b // length) % n_slot
                            _slot(j, s, q, b, start, acc, last)
                            _weigh(j, s, q, x1 - x0, bid, ask, acc, last)
                        b += length
                else:
                    g = np.searchsorted(w_end[j, : n_w[j]], low, side="right")
                    while g < n_w[j] and w_start[j, g] < z:
                        x0 = max(a, w_start[j, g])
                        x1 = min(z, w_end[j, g])
                        if x1 > x0:
                            q = g % n_slot
                            _slot(j, s, q, w_start[j, g], start, acc, last)
                            _weigh(j, s, q, x1 - x0, bid, ask, acc, last)
                        g += 1
        quote_ts[s] = z
        quote[s, 0] = p_px[applied, 0]
        quote[s, 1] = p_px[applied, 1]
        applied += 1
    for k in range(r, r1):
        if not done[k]:
            _finish(k, quote_ts, quote, start, acc, last, o_sid, o_int, o_start, o_end, o_count,
                    out)  # fmt: skip
    return applied


@_kernel
def _slot(j, s, q, b, start, acc, last):
    """Make slot ``q`` hold interval ``j``'s window of symbol ``s`` starting at ``b``."""
    if start[j, s, q] != b:
        start[j, s, q] = b
        for c in range(acc.shape[3]):
            acc[j, s, q, c] = 0.0
        last[j, s, q, 0] = np.nan
        last[j, s, q, 1] = np.nan


@_kernel
def _weigh(j, s, q, dt, bid, ask, acc, last):
    """Add a quote prevailing ``dt`` ns in a window."""
    w = float(dt)
    acc[j, s, q, 0] += (ask - bid) * w
    acc[j, s, q, 1] += 0.5 * (bid + ask) * w
    acc[j, s, q, 2] += w
    last[j, s, q, 0] = bid
    last[j, s, q, 1] = ask


@_kernel
def _finish(k, quote_ts, quote, start, acc, last, o_sid, o_int, o_start, o_end, o_count, out):
    """Set closed bar ``k``'s quote columns; the quote in force prevails to its end."""
    j = o_int[k]
    s = o_sid[k]
    b = o_start[k]
    e = o_end[k]
    spread_dt = 0.0
    mid_dt = 0.0
    dt = 0.0
    bid = np.nan
    ask = np.nan
    buy = 0.0
    sell = 0.0
    for q in range(start.shape[2]):
        if start[j, s, q] == b:
            spread_dt = acc[j, s, q, 0]
            mid_dt = acc[j, s, q, 1]
            dt = acc[j, s, q, 2]
            buy = acc[j, s, q, 3]
            sell = acc[j, s, q, 4]
            bid = last[j, s, q, 0]
            ask = last[j, s, q, 1]
            start[j, s, q] = -1
            break
    a = quote_ts[s]
    if a != -(2**62) and a < e:
        w = float(e - max(a, b))
        spread_dt += (quote[s, 1] - quote[s, 0]) * w
        mid_dt += 0.5 * (quote[s, 0] + quote[s, 1]) * w
        dt += w
        bid = quote[s, 0]
        ask = quote[s, 1]
    if o_count[k] == 0:  # a filled bar: no trades, no quote statistics
        return
    if dt > 0:
        out[k, 0] = spread_dt / dt
        out[k, 1] = mid_dt / dt
    out[k, 2] = bid
    out[k, 3] = ask
    out[k, 4] = buy
    out[k, 5] = sell


#: The kernels called from Python (marketpulse.kernel_progress reads their callees off them).
KERNELS = (_flow,)
