"""Sources of market events: the simulator and file replay.

Every feed yields :class:`FeedBatch` objects: trades as ``models.TRADE_SCHEMA``
columns, bars as ``models.BAR_SCHEMA`` columns, plus dead letters for records
the feed could not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.feeds.replay import FileReplay, detect_format
from marketpulse.feeds.simulator import Simulator

__all__ = ["Feed", "FeedBatch", "FileReplay", "Simulator", "detect_format", "open_feed"]


def open_feed(source: str | Path, **options: Any) -> Feed:
    """Open a feed by name: ``"simulator"`` or the path of a trades or bars file.

    Args:
        source: ``"simulator"`` for :class:`Simulator`, else a file for :class:`FileReplay`.
        **options: keyword arguments of that class (``rate=``, ``symbol=``, ...).

    Raises:
        InputError: the file cannot be replayed (see :class:`FileReplay`).
    """
    if str(source) == "simulator" and not Path(source).exists():
        return Simulator(**options)
    return FileReplay(Path(source).expanduser(), **options)
