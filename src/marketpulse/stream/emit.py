"""Closed bars -> the bars, indicators and alerts rows of each partition.

The bars one moment closes in several partitions (a poll that carries a
boundary for all of them) are turned into rows in one pass: the sessions,
the text columns and the tables are made once for all of them and sliced
per partition, while each partition's indicator and alert state advances on
its own rows. The fixed cost of those steps is most of a small close
(about 1 ms per partition, paid by every partition at every boundary before).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from marketpulse.indicators import DeclaredSet, update_indicators
from marketpulse.models import INDICATOR_COLUMNS
from marketpulse.stream.output import Constant, Output, bars_table, indicators_table, text_column
from marketpulse.stream.partition import PartitionState
from marketpulse.stream.sessions import session_ids
from marketpulse.stream.windows import ClosedBars
from marketpulse.timeframes import N_INTERVAL_KEYS, interval_keys

__all__ = ["EmitSettings", "Emitter", "N_INTERVALS", "alert_rows"]

#: Indicator keys of a symbol: ``sid * N_INTERVALS + timeframes.interval_keys(...)``.
N_INTERVALS = N_INTERVAL_KEYS
#: Bar starts whose session is remembered at most (then the memory starts afresh).
_SESSION_MEMORY = 65_536
#: Bars of one call at most for the memory to be used: beyond, a single computation
#: over them all costs less than looking each start up.
_REMEMBERED_CALL = 256
#: The bar fields the alert rules may read.
_PRICES = ("open", "high", "low", "close", "volume")


class EmitSettings(Protocol):
    """What the emitter reads of the processor's settings (``ProcessorSettings`` has it)."""

    @property
    def intervals(self) -> tuple[str, ...]:
        """The bar intervals, ascending."""
        ...

    @property
    def dataset(self) -> str:
        """The dataset every row carries."""
        ...

    @property
    def indicators(self) -> DeclaredSet:
        """The declared indicators."""
        ...

    @property
    def session_tz(self) -> str:
        """The exchange time zone of the session VWAP."""
        ...

    @property
    def session_calendar(self) -> str:
        """The exchange calendar of the session VWAP (empty: local dates)."""
        ...


class Emitter:
    """Makes the output rows of closed bars, for the intervals of ``settings``.

    Every row carries ``settings.dataset``.
    """

    def __init__(self, settings: EmitSettings) -> None:
        self.settings = settings
        self.dataset = Constant(settings.dataset)
        self._labels = np.array(settings.intervals, object)
        self._keys = np.array(interval_keys(settings.intervals, settings.intervals), np.int64)
        self._sessions: dict[int, int] = {}

    def emit(self, closes: Sequence[tuple[PartitionState, ClosedBars]]) -> list[Output]:
        """Return the output of each (partition state, closed bars), in order.

        Each state's indicators and alerts advance on its rows, and its
        symbols are marked changed for the next checkpoint.
        """
        outputs = [Output() for _ in closes]
        live = [(out, state, closed) for out, (state, closed) in zip(outputs, closes, strict=True)
                if len(closed)]  # fmt: skip
        if not live:
            return outputs
        if len(live) == 1:
            closed = live[0][2]
            codes, names = closed.sid, live[0][1].names
        else:
            closed = _concatenate([c for _, _, c in live])
            shift = np.cumsum([0] + [len(state.names) for _, state, _ in live[:-1]])
            codes = np.concatenate([c.sid + k for (_, _, c), k in zip(live, shift, strict=True)])
            names = np.concatenate([state.names for _, state, _ in live])
        end = closed.end
        with np.errstate(invalid="ignore", divide="ignore"):
            vwap = np.where(closed.volume > 0, closed.pv / closed.volume, np.nan)
        session = self.sessions(closed.start)
        columns = self.settings.indicators.columns
        values = np.empty((len(end), len(columns)), np.float64)
        keys = np.empty(len(end), np.int64)
        lo = 0
        for _, state, part in live:
            hi = lo + len(part)
            state.dirty.update(np.flatnonzero(np.bincount(part.sid)).tolist())
            keys[lo:hi] = part.sid * N_INTERVALS + self._keys[part.interval]
            values[lo:hi] = update_indicators(
                state.indicators, keys[lo:hi], part.high, part.low, part.close, part.volume,
                part.pv, session[lo:hi], part.open,
            )  # fmt: skip
            lo = hi
        symbol_column = text_column(codes, names)
        label_column = text_column(closed.interval, self._labels)
        ohlc = (closed.open, closed.high, closed.low, closed.close)
        bars = bars_table(
            symbol_column, label_column, closed.start, end, ohlc, closed.volume, vwap,
            closed.count, self.dataset,
        )  # fmt: skip
        indicators = indicators_table(
            symbol_column, label_column, closed.start, end, closed.close, values, self.dataset,
            columns,
        )  # fmt: skip
        symbols, labels = names[codes], self._labels[closed.interval]
        lo = 0
        for out, state, part in live:
            hi = lo + len(part)
            out.bars, out.indicators = bars.slice(lo, hi - lo), indicators.slice(lo, hi - lo)
            prices = {name: getattr(closed, name)[lo:hi] for name in _PRICES}
            rows = alert_rows(symbols[lo:hi], labels[lo:hi], closed.start[lo:hi], end[lo:hi],
                              prices, values[lo:hi], columns)  # fmt: skip
            out.alerts = state.alerts.evaluate(rows, codes=keys[lo:hi])
            lo = hi
        return outputs

    def sessions(self, start: np.ndarray) -> np.ndarray:
        """The session of each bar start, remembered per distinct start.

        The bars of one moment share few starts (one per interval), across
        partitions too; computing a session costs a fixed ~0.2 ms per call.
        """
        if len(start) > _REMEMBERED_CALL:  # catching up: one call over many starts is cheaper
            return self._compute_sessions(start)
        known = self._sessions
        distinct, where = np.unique(start, return_inverse=True)
        keys = distinct.tolist()
        missing = [k for k in keys if k not in known]
        if missing:
            if len(known) + len(missing) > _SESSION_MEMORY:
                known.clear()  # including this call's known starts: all are computed
                missing = keys
            found = self._compute_sessions(np.array(missing, np.int64))
            known.update(zip(missing, found.tolist(), strict=True))
        return np.array([known[k] for k in keys], np.int64)[where]

    def _compute_sessions(self, start: np.ndarray) -> np.ndarray:
        return session_ids(start, self.settings.session_tz, self.settings.session_calendar or None)


def alert_rows(
    symbols: np.ndarray,
    timeframes: np.ndarray,
    bar_start: np.ndarray,
    bar_end: np.ndarray,
    prices: dict[str, np.ndarray],
    values: np.ndarray,
    columns: tuple[str, ...] = INDICATOR_COLUMNS,
) -> dict[str, np.ndarray]:
    """The columns the alert engine reads: the bar's key, its fields (``prices``), indicators."""
    rows: dict[str, np.ndarray] = {
        "symbol": symbols, "timeframe": timeframes, "bar_start": bar_start, "bar_end": bar_end,
        **prices,
    }  # fmt: skip
    for i, name in enumerate(columns):
        rows[name] = values[:, i]
    return rows


def _concatenate(parts: list[ClosedBars]) -> ClosedBars:
    joined = ClosedBars(0)
    for name in ClosedBars.__slots__:
        setattr(joined, name, np.concatenate([getattr(part, name) for part in parts]))
    return joined
