"""What the processor emits for one input batch, as columns per output topic."""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_SCHEMA,
    DLQ_SCHEMA,
    INDICATOR_COLUMNS,
    INDICATOR_SCHEMA,
    Alert,
    DeadLetter,
)

__all__ = ["Output", "alerts_table", "bars_table", "dlq_table", "indicators_table", "text_column"]


# Tables are immutable, so every empty output shares these (making one costs ~0.1 ms).
_NO_BARS = BAR_SCHEMA.empty_table()
_NO_INDICATORS = INDICATOR_SCHEMA.empty_table()


@dataclass(slots=True)
class Output:
    """Rows produced by the processor, per output topic, in order."""

    bars: pa.Table = field(default_factory=lambda: _NO_BARS)
    indicators: pa.Table = field(default_factory=lambda: _NO_INDICATORS)
    alerts: list[Alert] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    #: trades accepted into windows / bars accepted as input
    accepted: int = 0
    #: the input trades kept, in input order, with all the input's columns: those
    #: valid and not ``future``, late ones included (real trades, in no bar: the
    #: dlq says why); what the embedded pipeline stores as ``trades``
    trades: list[pa.RecordBatch] = field(default_factory=list)

    def extend(self, other: Output) -> None:
        """Append ``other``'s rows after this output's rows."""
        if other.bars.num_rows:
            self.bars = (
                pa.concat_tables([self.bars, other.bars]) if self.bars.num_rows else other.bars
            )
        if other.indicators.num_rows:
            self.indicators = (
                pa.concat_tables([self.indicators, other.indicators])
                if self.indicators.num_rows
                else other.indicators
            )
        self.alerts.extend(other.alerts)
        self.dead.extend(other.dead)
        self.accepted += other.accepted
        self.trades.extend(other.trades)


def _floats(values: np.ndarray) -> pa.Array:
    """Float64 column with NaN as null (not warmed up, no volume).

    Built from the values and a validity bitmap: faster than ``pa.array(...,
    from_pandas=True)``, which tests each value on its own.
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    missing = np.isnan(values)
    nulls = int(np.count_nonzero(missing))
    if not nulls:
        return pa.array(values, pa.float64())
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(
        pa.float64(), len(values), [validity, pa.py_buffer(values)], null_count=nulls
    )


def text_column(codes: np.ndarray, names: np.ndarray) -> pa.Array:
    """The string column ``names[codes]``, taken in Arrow (no Python string per row)."""
    return pa.array(names, pa.string()).take(pa.array(codes))


def _text(values: np.ndarray | pa.Array) -> pa.Array:
    return values if isinstance(values, pa.Array) else pa.array(values, pa.string())


def bars_table(
    symbol: np.ndarray | pa.Array,
    interval: np.ndarray | pa.Array,
    start: np.ndarray,
    end: np.ndarray,
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume: np.ndarray,
    vwap: np.ndarray,
    trades: np.ndarray,
) -> pa.Table:
    """Build a ``bars`` table from columns (symbol, interval: str objects or Arrow text)."""
    return pa.Table.from_arrays(
        [
            _text(symbol),
            _text(interval),
            pa.array(start, pa.int64()),
            pa.array(end, pa.int64()),
            *(pa.array(values, pa.float64()) for values in ohlc),
            pa.array(volume, pa.float64()),
            _floats(vwap),
            pa.array(trades, pa.int64()),
        ],
        schema=BAR_SCHEMA,
    )


def indicators_table(
    symbol: np.ndarray | pa.Array,
    interval: np.ndarray | pa.Array,
    ts: np.ndarray,
    close: np.ndarray,
    values: np.ndarray,
) -> pa.Table:
    """Build an ``indicators`` table; ``values`` is (n, 13) in INDICATOR_COLUMNS order."""
    arrays = [
        _text(symbol),
        _text(interval),
        pa.array(ts, pa.int64()),
        pa.array(close, pa.float64()),
    ]
    columns = np.ascontiguousarray(values.T)  # one copy, then each column is contiguous
    arrays += [_floats(columns[i]) for i in range(len(INDICATOR_COLUMNS))]
    return pa.Table.from_arrays(arrays, schema=INDICATOR_SCHEMA)


_json = msgspec.json.Encoder()


def alerts_table(alerts: list[Alert]) -> pa.Table:
    """Build an ``alerts`` table."""
    if not alerts:
        return ALERT_SCHEMA.empty_table()
    columns: dict[str, list] = {name: [] for name in ALERT_SCHEMA.names}
    for alert in alerts:
        for name in ALERT_SCHEMA.names:
            value = getattr(alert, name)
            columns[name].append(_json.encode(value).decode() if name == "values" else value)
    return pa.Table.from_pydict(columns, schema=ALERT_SCHEMA)


def dlq_table(dead: list[DeadLetter], now_ns: int) -> pa.Table:
    """Build a ``dlq`` table; rows without an event time get ``now_ns``."""
    if not dead:
        return DLQ_SCHEMA.empty_table()
    columns: dict[str, list] = {name: [] for name in DLQ_SCHEMA.names}
    for letter in dead:
        for name in DLQ_SCHEMA.names:
            value = getattr(letter, name)
            columns[name].append(now_ns if name == "ts" and value is None else value)
    return pa.Table.from_pydict(columns, schema=DLQ_SCHEMA)
