"""The declared indicators on a DataFrame: pandas or Arrow in, the same out.

>>> import marketpulse.indicators as mi
>>> out = mi.compute(bars, ["rsi(14)", "ema(50)", "bb=bbands(20, 2.5)"])  # doctest: +SKIP

The same kernels as the stream, so the values equal what the pipeline stores
for the same bars. pandas and pyarrow are imported when called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from marketpulse.indicators.declare import DEFAULT, DeclaredSet, parse_set
from marketpulse.indicators.state import IndicatorState, update_indicators

__all__ = ["compute"]

_REQUIRED = ("high", "low", "close", "volume")
_TIMES = ("bar_start", "ts", "timestamp", "date", "time")
_GROUPS = ("symbol", "timeframe", "dataset")


def compute(
    data: Any,
    indicators: str | list[str] | tuple[str, ...] | DeclaredSet = DEFAULT,
    *,
    session_tz: str = "America/New_York",
) -> Any:
    """Return ``data`` with the declared indicators' columns added.

    Args:
        data: bars as a pandas DataFrame or an Arrow table: ``high``, ``low``,
            ``close`` and ``volume`` columns, ``open`` (kinds that read it give
            NaN without), ``vwap`` (else the typical price stands in for the
            session VWAP's prices), oldest first within each series. Rows of
            several series are told apart by their ``symbol``, ``timeframe``
            and ``dataset`` columns where present, and may interleave.
        indicators: declarations (``"ema(50)"``, ``["rsi(14)", "bb=bbands(20, 2.5)"]``)
            or a parsed set; default: the thirteen default columns.
        session_tz: time zone whose local date is a bar's session (the VWAP
            restarts each session), read from a ``session`` column, else a time
            column (``bar_start``, ``ts``, ``timestamp``, ``date``, ``time``)
            or a datetime index; without any, one session.

    Returns:
        the same kind of table, its rows and columns unchanged, the indicator
        columns appended (a name already present is replaced).

    Raises:
        ValueError: a declaration is wrong or a needed column is missing.
        TypeError: ``data`` is neither a pandas DataFrame nor an Arrow table.
    """
    import pandas as pd
    import pyarrow as pa

    declared = indicators if isinstance(indicators, DeclaredSet) else parse_set(indicators)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if isinstance(data, pa.Table):
        frame = data.to_pandas()
    elif isinstance(data, pd.DataFrame):
        frame = data
    else:
        raise TypeError(
            f"compute() takes a pandas DataFrame or an Arrow table, not {type(data).__name__}"
        )
    values = _values(frame, declared, session_tz)
    if isinstance(data, pa.Table):
        for i, name in enumerate(declared.columns):
            column = pa.array(values[:, i], pa.float64(), mask=np.isnan(values[:, i]))
            where = data.schema.get_field_index(name)
            data = (
                data.set_column(where, name, column)
                if where >= 0
                else data.append_column(name, column)
            )
        return data
    out = frame.copy()
    for i, name in enumerate(declared.columns):
        out[name] = values[:, i]
    return out


def _values(frame: Any, declared: DeclaredSet, session_tz: str) -> np.ndarray:
    import pandas as pd

    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"compute(): the data has no column {', '.join(missing)} "
            f"(it needs {', '.join(_REQUIRED)})"
        )
    n = len(frame)
    columns = {c: frame[c].to_numpy(np.float64, na_value=np.nan) for c in _REQUIRED}
    opens = frame["open"].to_numpy(np.float64, na_value=np.nan) if "open" in frame.columns else None
    if "vwap" in frame.columns:
        vwap = frame["vwap"].to_numpy(np.float64, na_value=np.nan)
    else:
        vwap = np.full(n, np.nan)
    typical = (columns["high"] + columns["low"] + columns["close"]) / 3.0
    pv = np.where(np.isnan(vwap), typical, vwap) * columns["volume"]
    groups = [c for c in _GROUPS if c in frame.columns]
    keys = (
        frame.groupby(groups, sort=False, dropna=False).ngroup().to_numpy(np.int64)
        if groups
        else np.zeros(n, np.int64)
    )
    if "session" in frame.columns:
        session = frame["session"].to_numpy(np.int64)
    else:
        times = next((frame[c] for c in _TIMES if c in frame.columns), None)
        if times is None and isinstance(frame.index, pd.DatetimeIndex):
            times = frame.index.to_series()
        if times is None:
            session = np.zeros(n, np.int64)
        else:
            stamps = (
                pd.to_datetime(times, utc=True)
                if not pd.api.types.is_datetime64_any_dtype(times)
                else times
            )
            stamps = stamps.dt.tz_localize("UTC") if stamps.dt.tz is None else stamps
            local = stamps.dt.tz_convert(session_tz)
            session = (local.dt.year * 10000 + local.dt.month * 100 + local.dt.day).to_numpy(
                np.int64
            )
    state = IndicatorState(capacity=max(int(keys.max()) + 1 if n else 1, 1), declared=declared)
    return update_indicators(
        state,
        keys,
        columns["high"],
        columns["low"],
        columns["close"],
        columns["volume"],
        pv,
        session,
        opens,
    )
