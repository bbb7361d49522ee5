"""The symbols a feed follows: a fixed list, or a watchlist file read again when it changes.

A watchlist holds one symbol per line (or several, separated by commas or
spaces); ``#`` starts a comment. Saving the file changes the subscription of
a running feed, on vendors that allow it, without a restart.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from marketpulse.exceptions import ConfigError

__all__ = ["Symbols", "parse_symbols"]

logger = logging.getLogger(__name__)

_SPLIT = re.compile(r"[\s,;]+")


def parse_symbols(text: str) -> tuple[str, ...]:
    """Read symbols from text: separated by commas or spaces, ``#`` comments, no repeats."""
    seen: dict[str, None] = {}
    for line in text.splitlines():
        for word in _SPLIT.split(line.split("#", 1)[0]):
            if word:
                seen.setdefault(word.strip(), None)
    return tuple(seen)


class Symbols:
    """The symbols to follow, from a list or a watchlist file.

    Args:
        fixed: symbols given on the command line.
        watchlist: a file to read (and read again when it changes).

    Raises:
        ConfigError: neither gives a symbol, or the file cannot be read.
    """

    def __init__(self, fixed: tuple[str, ...] = (), watchlist: Path | None = None) -> None:
        self.watchlist = watchlist
        self._fixed = tuple(fixed)
        self._stamp: tuple[int, int] | None = None
        self.current = self._fixed + self._read(initial=True)
        if not self.current:
            where = f"watchlist {watchlist} is empty" if watchlist else "no symbols given"
            raise ConfigError(f"{where}: give --tickers AAPL,MSFT or a --watchlist file")

    def _read(self, initial: bool = False) -> tuple[str, ...]:
        if self.watchlist is None:
            return ()
        try:
            stat = self.watchlist.stat()
            self._stamp = (stat.st_mtime_ns, stat.st_size)
            symbols = parse_symbols(self.watchlist.read_text())
        except OSError as exc:
            if initial:
                raise ConfigError(f"watchlist {self.watchlist}: {exc.strerror}") from None
            logger.warning("watchlist %s: %s; keeping the symbols", self.watchlist, exc.strerror)
            return tuple(s for s in self.current if s not in self._fixed)
        return tuple(s for s in symbols if s not in self._fixed)

    def refresh(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Read the watchlist again if it changed; return the symbols added and removed."""
        if self.watchlist is None:
            return (), ()
        try:
            stat = self.watchlist.stat()
        except OSError:
            return (), ()
        if (stat.st_mtime_ns, stat.st_size) == self._stamp:
            return (), ()
        before = self.current
        self.current = self._fixed + self._read()
        if not self.current:
            logger.warning("watchlist %s is empty; keeping %s", self.watchlist, ", ".join(before))
            self.current = before
            return (), ()
        added = tuple(s for s in self.current if s not in before)
        removed = tuple(s for s in before if s not in self.current)
        if added or removed:
            logger.info("watchlist: +%s -%s", ",".join(added), ",".join(removed))
        return added, removed
