"""The processor's state of one input partition.

A partition's windows, indicator state, alert state and symbol ids live
together in one :class:`PartitionState`: the processor advances it batch by
batch, :mod:`marketpulse.stream.emit` turns its closed bars into rows, and
:mod:`marketpulse.stream.checkpoint` writes and restores it, so the state
moves with the partition when Kafka reassigns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from marketpulse.alerts import AlertEngine
from marketpulse.indicators import IndicatorState
from marketpulse.stream.quote_windows import QuoteState
from marketpulse.stream.windows import WindowState

if TYPE_CHECKING:
    from marketpulse.forecast.stage import Book

__all__ = ["PartitionState"]


@dataclass
class PartitionState:
    """What the processor keeps of one input partition.

    Attributes:
        windows: the open windows and the watermark of every symbol.
        indicators: the indicator state per symbol and interval.
        alerts: the alert engine with the rules' state per symbol.
        sids: symbol -> id, in the order the partition first named them.
        names: the symbols by id.
        last_input: ``time.monotonic()`` of the partition's latest input.
        dirty: ids of the symbols whose state changed since the last checkpoint.
        names_written: the symbols whose names the checkpoints so far hold (the
            first ones of :attr:`names`): the next writes the names from there on.
        quotes: the quotes in force and order flow (:mod:`marketpulse.stream.quote_windows`),
            from the partition's first quote on; ``None`` before.
        max_symbols: most symbols the partition takes (``None``: no limit); a
            symbol beyond gets the id -1 and its rows are the processor's to refuse.
        forecasts: the forecasting models' state of each symbol's series
            (:mod:`marketpulse.forecast.stage`); empty without models.
    """

    windows: WindowState
    indicators: IndicatorState
    alerts: AlertEngine
    sids: dict[str, int] = field(default_factory=dict)
    names: np.ndarray = field(default_factory=lambda: np.empty(0, object))
    last_input: float = 0.0
    dirty: set[int] = field(default_factory=set)
    names_written: int = 0
    quotes: QuoteState | None = None
    max_symbols: int | None = None
    forecasts: Book = field(default_factory=dict)
    #: the last dictionary :meth:`lookup_codes` mapped, and its ids (-1: not known then)
    _codes: tuple[list[str | None], np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    def lookup_codes(self, dictionary: list[str | None], codes: np.ndarray) -> np.ndarray:
        """Map rows' dictionary codes to symbol ids; only the symbols the rows use join.

        New symbols get ids in the order the rows first name them, as
        :meth:`lookup` gives with a dictionary built from these rows alone.
        """
        # a consumer keeping up decodes the same symbols in the same order poll after
        # poll: their ids are looked up once (an id never changes; -1, a name not known
        # then, is looked up again below)
        cached = self._codes
        if cached is not None and cached[0] == dictionary:
            table = cached[1]
        else:
            sids = self.sids
            table = np.array([sids.get(name, -1) for name in dictionary], np.int64)  # type: ignore[arg-type]
            self._codes = (dictionary, table)
        known = table[codes]
        if len(known) and known.min() >= 0:
            return known  # the common case: no new symbol
        used, first = np.unique(codes, return_index=True)
        used = used[np.argsort(first)]
        table = np.zeros(len(dictionary), np.int64)
        table[used] = self.lookup([dictionary[i] for i in used.tolist()])
        return table[codes]

    def lookup(self, dictionary: list[str | None]) -> np.ndarray:
        """Map a batch's symbol dictionary to this partition's symbol ids (-1: over the limit)."""
        out = np.empty(len(dictionary), np.int64)
        added = []
        room = len(self.sids) < self.max_symbols if self.max_symbols is not None else True
        for i, name in enumerate(dictionary):
            sid = self.sids.get(name)  # type: ignore[arg-type]
            if sid is None and not room:
                sid = -1  # every symbol costs memory for good: input must not size the process
            elif sid is None:
                sid = self.sids[name] = len(self.sids)  # type: ignore[index]
                added.append(name)
                room = self.max_symbols is None or len(self.sids) < self.max_symbols
            out[i] = sid
        if added:
            self._codes = None  # names it held as unknown are known now
            self.names = np.concatenate([self.names, np.array(added, object)])
            self.windows.ensure(len(self.sids))
            if self.quotes is not None:
                self.quotes.ensure(len(self.sids))
        return out
