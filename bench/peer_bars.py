"""One-minute bars of several engines, compared: the check behind bench/bench_peers.py.

Every engine's bars are reduced to ``{(symbol, start_ms): (open, high, low,
close, volume)}``. Each symbol's last window is left out of the comparison:
no later trade of that symbol closes it by event time, and engines differ in
what they do with a window the input never closed (MarketPulse closes it when
its partition is idle for 2 s, Spark in append mode when another symbol's
trades move the watermark past it, Quix Streams never). Every other window is
closed by a later trade of its symbol in all of them, each allowing no
lateness past the window's end (MarketPulse with ``--lateness 0``, Quix with
``grace_ms=0``, Spark with a watermark of 0 s; each symbol's trades arrive in
time order, so none is late), and must be equal, field by field, exactly: the
prices are the trades' own, and volumes are sums of whole share counts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping

__all__ = [
    "FIELDS",
    "Bars",
    "PeerDisagrees",
    "check_equal",
    "closed_by_event_time",
    "first_difference",
    "reference_bars",
]

#: The compared fields of a bar, in order.
FIELDS = ("open", "high", "low", "close", "volume")
Bar = tuple[float, float, float, float, float]
Bars = dict[tuple[str, int], Bar]
_MINUTE_MS = 60_000


class PeerDisagrees(Exception):
    """A peer's bars differ from the reference's (the message names the peer and the bar)."""


def _when(start_ms: int) -> str:
    return dt.datetime.fromtimestamp(start_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def closed_by_event_time(bars: Mapping[tuple[str, int], Bar], last: Mapping[str, int]) -> Bars:
    """``bars`` less each symbol's windows from its last one (``last``: symbol to start) on."""
    return {key: bar for key, bar in bars.items() if key[1] < last.get(key[0], -1)}


def first_difference(reference: Mapping[tuple[str, int], Bar],
                     other: Mapping[tuple[str, int], Bar]) -> str | None:  # fmt: skip
    """The first bar (by start, then symbol) that differs, in words; ``None`` when equal."""
    for key in sorted(reference.keys() | other.keys(), key=lambda k: (k[1], k[0])):
        symbol, start = key
        mine, theirs = reference.get(key), other.get(key)
        where = f"{symbol} {_when(start)}"
        if theirs is None:
            return f"bar {where} missing (reference {_show(mine)})"
        if mine is None:
            return f"bar {where} not in the reference ({_show(theirs)})"
        for name, a, b in zip(FIELDS, mine, theirs, strict=True):
            if a != b:
                return f"bar {where}: {name} {b!r}, reference {a!r}"
    return None


def _show(bar: Bar | None) -> str:
    return " ".join(f"{n}={v!r}" for n, v in zip(FIELDS, bar or (), strict=False))


def check_equal(peer: str, reference: Bars, other: Bars, reference_name: str = "marketpulse"
                ) -> int:  # fmt: skip
    """Raise :class:`PeerDisagrees` unless ``other`` equals ``reference``; the bars compared."""
    if not reference:
        raise PeerDisagrees(f"{peer}: no bars to compare ({reference_name} produced none)")
    difference = first_difference(reference, other)
    if difference is not None:
        missing = len(reference.keys() - other.keys())
        extra = len(other.keys() - reference.keys())
        differ = sum(reference[k] != other[k] for k in reference.keys() & other.keys())
        raise PeerDisagrees(
            f"{peer} disagrees with {reference_name}: first differing {difference}; "
            f"of {len(reference):,} bars {missing:,} missing, {differ:,} different, "
            f"{extra:,} more"
        )
    return len(reference)


def reference_bars(trades: Iterable[tuple[str, int, float, float]]) -> tuple[Bars, dict[str, int]]:
    """Bars of ``(symbol, ts_ns, price, size)`` in arrival order, plainly; and each last start."""
    bars: dict[tuple[str, int], list[float]] = {}
    last: dict[str, int] = {}
    for symbol, ts, price, size in trades:
        start = ts // 1_000_000 // _MINUTE_MS * _MINUTE_MS
        bar = bars.get((symbol, start))
        if bar is None:
            bars[(symbol, start)] = [price, price, price, price, size]
        else:
            bar[1], bar[2] = max(bar[1], price), min(bar[2], price)
            bar[3] = price
            bar[4] += size
        last[symbol] = max(last.get(symbol, start), start)
    return {key: tuple(bar) for key, bar in bars.items()}, last  # type: ignore[misc]
