"""Labelled anomalies the simulator can inject, to measure the detectors against.

An :class:`Anomaly` names a symbol, a time span and a kind:

* ``jump``: the price moves by ``size`` (log) at ``start`` and stays there;
* ``volume``: trade sizes are ``size`` times larger from ``start`` to ``end``;
* ``stale``: the symbol does not trade from ``start`` to ``end``;
* ``halt``: no trades from ``start`` to ``end``, then trading resumes with the
  price moved by ``size`` (a reopening gap);
* ``vol``: from ``start`` to ``end`` each trade's price gets extra noise of
  ``size`` (log standard deviation): volatility several times its usual.

:func:`draw_anomalies` places some of each kind at random, apart from each
other on each symbol; the list is the labels (:func:`write_labels` saves them
as CSV).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import msgspec
import numpy as np

from marketpulse.models import NS_PER_S

__all__ = ["KINDS", "Anomaly", "draw_anomalies", "write_labels"]

#: Kinds of anomaly, as in :attr:`Anomaly.kind`.
KINDS = ("jump", "volume", "stale", "halt", "vol")

# per kind: (shortest, longest) span in seconds, (smallest, largest) size
_SHAPES = {
    "jump": ((0, 0), (0.006, 0.02)),
    "volume": ((60, 180), (10.0, 30.0)),
    "stale": ((240, 600), (0.0, 0.0)),
    "halt": ((240, 420), (0.01, 0.03)),
    "vol": ((600, 1200), (0.002, 0.004)),
}
_APART_S = 1_800  # anomalies on one symbol are at least this far apart


class Anomaly(msgspec.Struct, frozen=True):
    """One injected anomaly (times in UTC ns; ``end == start`` for a jump)."""

    symbol: str
    start: int
    end: int
    kind: str
    size: float


def draw_anomalies(
    tickers: Sequence[str],
    start: int,
    end: int,
    per_kind: int,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
) -> list[Anomaly]:
    """Place ``per_kind`` anomalies of each kind between ``start`` and ``end`` (UTC ns).

    Each lands on a random symbol at a random time at least 30 minutes from
    the others on that symbol; jumps and halts move the price up or down.

    Raises:
        ValueError: an unknown kind, or no room left for one more anomaly.
    """
    rng = np.random.default_rng([seed, 7])
    taken: dict[str, list[int]] = {}
    out: list[Anomaly] = []
    apart = _APART_S * NS_PER_S
    for kind in kinds:
        if kind not in _SHAPES:
            raise ValueError(f"unknown anomaly kind {kind!r} (one of: {', '.join(KINDS)})")
        (shortest, longest), (small, large) = _SHAPES[kind]
        for _ in range(per_kind):
            for _attempt in range(1_000):
                symbol = str(tickers[int(rng.integers(len(tickers)))])
                at = int(rng.integers(start + apart, end - apart))
                if all(abs(at - other) >= apart for other in taken.get(symbol, [])):
                    break
            else:
                raise ValueError(f"no room for {per_kind} anomalies of each kind")
            taken.setdefault(symbol, []).append(at)
            span = int(rng.uniform(shortest, longest) * NS_PER_S)
            size = float(rng.uniform(small, large))
            if kind in ("jump", "halt"):
                size *= float(rng.choice([-1.0, 1.0]))
            out.append(Anomaly(symbol, at, at + span, kind, size))
    return sorted(out, key=lambda a: (a.start, a.symbol))


def write_labels(anomalies: Sequence[Anomaly], path: str | Path) -> None:
    """Write the labels as CSV: symbol, start, end (ISO-8601 UTC), kind, size."""
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["symbol", "start", "end", "kind", "size"])
        for a in anomalies:
            stamps = (np.datetime_as_string(np.datetime64(t, "ns"), unit="ms") + "Z"
                      for t in (a.start, a.end))  # fmt: skip
            writer.writerow([a.symbol, *stamps, a.kind, a.size])
