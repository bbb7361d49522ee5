"""The live pages' updates, composed and serialised once for every client.

At most ``updates_per_s`` times a second, while any client is connected,
:class:`Broadcast` reads the source's current state once: every symbol's
row, the new alerts and the figures. It numbers what it read (a version),
notes the version at which each symbol's row last changed, and keeps, as
JSON text, the rows that changed with the newest version, the figures and
the alerts. A client that was sent the previous version gets that text as
it is; one that fell further behind (it acknowledged late) gets the rows
changed since its version, serialised for it alone. The cost per client and
update is then sending text, whatever the number of symbols.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

from starlette.concurrency import run_in_threadpool

from marketpulse.serve.market import MarketSource

__all__ = ["Broadcast", "dumps"]

logger = logging.getLogger(__name__)

#: Alerts kept for clients that connect later (a new client gets the newest 200).
_KEEP_ALERTS = 1000


def dumps(value: Any) -> str:
    """Return ``value`` as compact JSON text (what the pages parse)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Broadcast:
    """The newest state of a source, as versions every client shares.

    Args:
        source: where rows, alerts and figures come from.
        updates_per_s: most versions per second.

    Attributes:
        version: the newest version (0: none yet).
        dataset: the dataset of the newest version's rows.
        figures: the newest figures, as JSON text.
        alert_seq: the source's sequence number of the newest alert read.
    """

    def __init__(self, source: MarketSource, updates_per_s: float) -> None:
        self.source = source
        self.period = 1.0 / updates_per_s
        self.version = 0
        self.dataset: str | None = None
        self.figures = "{}"
        self.alert_seq = 0
        self._alerts: deque[tuple[int, dict[str, Any]]] = deque(maxlen=_KEEP_ALERTS)
        self._values: dict[str, tuple[Any, ...]] = {}
        self._rows: dict[str, dict[str, Any]] = {}
        self._changed_at: dict[str, int] = {}
        self._delta = "[]"
        self._new = asyncio.Event()
        self._users = 0
        self._task: asyncio.Task | None = None
        self._first: asyncio.Lock | None = None
        self._composed_at = 0.0

    async def join(self) -> int:
        """Count a client in (the versions start with the first); return the newest version.

        Raises:
            Exception: what reading the source raised (the client is not counted in).
        """
        if self._first is None:
            self._first = asyncio.Lock()
        async with self._first:
            if self._task is None or self._task.done():
                await self._compose()
                self._users += 1
                self._task = asyncio.create_task(self._tick())
            else:
                self._users += 1
        return self.version

    def leave(self) -> None:
        """Count a client out (the versions stop with the last)."""
        self._users -= 1

    async def newer_than(self, version: int) -> int:
        """Wait for a version newer than ``version``; return the newest."""
        while self.version <= version:
            await self._new.wait()
        return self.version

    def rows_since(self, version: int) -> str:
        """The rows that changed after ``version``, as JSON text (0: every row)."""
        if version == self.version - 1:
            return self._delta
        return dumps([row for symbol, row in self._rows.items()
                      if self._changed_at[symbol] > version])  # fmt: skip

    def alerts_after(self, seq: int, most: int | None = None) -> tuple[int, str]:
        """The newest alert sequence number and the alerts after ``seq`` (JSON text)."""
        if seq >= self.alert_seq:
            return self.alert_seq, "[]"
        alerts = [record for n, record in self._alerts if n > seq]
        return self.alert_seq, dumps(alerts[-most:] if most else alerts)

    async def _tick(self) -> None:
        """Compose a version every period while clients are connected."""
        while self._users > 0:
            await asyncio.sleep(max(0.0, self._composed_at + self.period - time.monotonic()))
            if self._users > 0:
                try:
                    await self._compose()
                except Exception as exc:  # noqa: BLE001 - the next period tries again
                    logger.warning("live updates: reading the live state failed: %s", exc)

    async def _compose(self) -> None:
        """Read the source once; make the next version."""
        self._composed_at = time.monotonic()
        rows, seq, alerts, figures = await run_in_threadpool(self._read)
        version = self.version + 1
        dataset = self.source.dataset
        if dataset != self.dataset:  # another dataset: every row of it is new
            self._values, self._rows, self._changed_at = {}, {}, {}
            self.dataset = dataset
        changed = []
        for row in rows:
            symbol, values = row["symbol"], tuple(row.values())
            if self._values.get(symbol) != values:
                self._values[symbol] = values
                self._rows[symbol] = row
                self._changed_at[symbol] = version
                changed.append(row)
        self._delta = dumps(changed)
        self._alerts.extend(alerts)
        self.alert_seq = max(self.alert_seq, seq)
        self.figures = figures
        self.version = version
        self._new.set()
        self._new = asyncio.Event()

    def _read(self) -> tuple[list[dict[str, Any]], int, list[tuple[int, dict[str, Any]]], str]:
        """The source's rows, new alerts (numbered) and figures (text), in a worker thread."""
        rows = self.source.watchlist()
        seq, alerts = self.source.alerts_after(self.alert_seq)
        first = seq - len(alerts) + 1
        numbered = [(first + i, alert) for i, alert in enumerate(alerts)]
        return rows, seq, numbered, dumps(self.source.figures())
