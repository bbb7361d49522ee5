"""Exchange sessions: which trading day a timestamp belongs to."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["session_ids"]

_DAY_NS = 86_400 * 1_000_000_000


@lru_cache(maxsize=16)
def _check_zone(tz: str) -> str:
    from zoneinfo import ZoneInfo

    ZoneInfo(tz)  # raises ZoneInfoNotFoundError for an unknown zone
    return tz


def session_ids(ts: np.ndarray, tz: str) -> np.ndarray:
    """Return, per UTC-ns timestamp, the local date in ``tz`` as days since the epoch."""
    if len(ts) == 0:
        return np.empty(0, np.int64)
    zone = _check_zone(tz)
    stamps = (
        pa.array(ts, pa.int64())
        .cast(pa.timestamp("ns", tz="UTC"))
        .cast(pa.timestamp("ns", tz=zone))
    )
    local = pc.local_timestamp(stamps).cast(pa.int64()).to_numpy()
    return local // _DAY_NS
