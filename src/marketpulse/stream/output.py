"""What the processor emits for one input batch, as columns per output topic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from marketpulse.models import (
    ALERT_SCHEMA,
    BAR_SCHEMA,
    CUSTOM_SCHEMA,
    DLQ_SCHEMA,
    INDICATOR_COLUMNS,
    INDICATOR_SCHEMA,
    PREDICTION_SCHEMA,
    Alert,
    DeadLetter,
    indicator_schema,
)

__all__ = [
    "Constant",
    "Output",
    "alerts_table",
    "bars_table",
    "dlq_table",
    "indicators_table",
    "stamp",
    "text_column",
]


# Tables are immutable, so every empty output shares these (making one costs ~0.1 ms).
_NO_BARS = BAR_SCHEMA.empty_table()
_NO_INDICATORS = INDICATOR_SCHEMA.empty_table()
_NO_CUSTOM = CUSTOM_SCHEMA.empty_table()
_NO_PREDICTIONS = PREDICTION_SCHEMA.empty_table()


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
    #: dlq says why); what the ``trades`` topic and table hold
    trades: list[pa.RecordBatch] = field(default_factory=list)
    #: the values plugins computed on these bars, long form (:data:`CUSTOM_SCHEMA`)
    custom: pa.Table = field(default_factory=lambda: _NO_CUSTOM)
    #: the quotes of input records (``ticks`` as bytes, decoded here), with their
    #: dataset: what the ``quotes`` topic and table hold (quotes as columns pass by)
    quotes: list[pa.RecordBatch] = field(default_factory=list)
    #: the forecasts made at these bars (:data:`PREDICTION_SCHEMA`)
    predictions: pa.Table = field(default_factory=lambda: _NO_PREDICTIONS)

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
        if other.custom.num_rows:
            self.custom = (
                pa.concat_tables([self.custom, other.custom])
                if self.custom.num_rows
                else other.custom
            )
        if other.predictions.num_rows:
            self.predictions = (
                pa.concat_tables([self.predictions, other.predictions])
                if self.predictions.num_rows
                else other.predictions
            )
        self.alerts.extend(other.alerts)
        self.dead.extend(other.dead)
        self.accepted += other.accepted
        self.trades.extend(other.trades)
        self.quotes.extend(other.quotes)


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


class Constant:
    """One string repeated as a column of any length, made once and then sliced.

    A run stamps its ``dataset`` on every output row; slicing a column made
    once costs nothing per row (building a string column costs ~20 ns a row).

    Args:
        value: the string (``None``: a column of nulls).
    """

    def __init__(self, value: str | None) -> None:
        self.value = value
        self._column = pa.nulls(0, pa.string())

    def __call__(self, n: int) -> pa.Array:
        """Return the column of ``n`` rows."""
        if n > len(self._column):
            size = max(n, 2 * len(self._column), 1024)
            self._column = (
                pa.repeat(self.value, size)
                if self.value is not None
                else pa.nulls(size, pa.string())
            )
        return self._column.slice(0, n)


def stamp(data: pa.RecordBatch | pa.Table, dataset: Constant) -> pa.RecordBatch | pa.Table:
    """``data`` with its ``dataset`` column set to ``dataset`` (appended if it has none)."""
    column = dataset(data.num_rows)
    index = data.schema.get_field_index("dataset")
    if index < 0:
        return data.append_column("dataset", column)
    return data.set_column(index, "dataset", column)


_NO_DATASET = Constant(None)


def bars_table(
    symbol: np.ndarray | pa.Array,
    timeframe: np.ndarray | pa.Array,
    bar_start: np.ndarray,
    bar_end: np.ndarray,
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    volume: np.ndarray,
    vwap: np.ndarray,
    trades: np.ndarray,
    dataset: Constant = _NO_DATASET,
) -> pa.Table:
    """Build a ``bars`` table from columns (symbol, timeframe: str objects or Arrow text)."""
    return pa.Table.from_arrays(
        [
            _text(symbol),
            _text(timeframe),
            pa.array(bar_start, pa.int64()),
            pa.array(bar_end, pa.int64()),
            *(pa.array(values, pa.float64()) for values in ohlc),
            pa.array(volume, pa.float64()),
            _floats(vwap),
            pa.array(trades, pa.int64()),
            dataset(len(bar_start)),
        ],
        schema=BAR_SCHEMA,
    )


def indicators_table(
    symbol: np.ndarray | pa.Array,
    timeframe: np.ndarray | pa.Array,
    bar_start: np.ndarray,
    bar_end: np.ndarray,
    close: np.ndarray,
    values: np.ndarray,
    dataset: Constant = _NO_DATASET,
    columns: tuple[str, ...] = INDICATOR_COLUMNS,
) -> pa.Table:
    """Build an ``indicators`` table; ``values`` is (n, len(columns)), in ``columns`` order.

    Its key is the bar's: (dataset, symbol, timeframe, bar_start).
    """
    arrays = [
        _text(symbol),
        _text(timeframe),
        pa.array(bar_start, pa.int64()),
        pa.array(bar_end, pa.int64()),
        pa.array(close, pa.float64()),
    ]
    by_column = np.ascontiguousarray(values.T)  # one copy, then each column is contiguous
    arrays += [_floats(by_column[i]) for i in range(len(columns))]
    arrays.append(dataset(len(bar_start)))
    return pa.Table.from_arrays(arrays, schema=indicator_schema(columns))


def alerts_table(alerts: list[Alert], dataset: str | None = None) -> pa.Table:
    """Build an ``alerts`` table; ``details`` become a map column.

    Args:
        alerts: the alerts.
        dataset: stamped on alerts that carry none.
    """
    if not alerts:
        return ALERT_SCHEMA.empty_table()
    columns: dict[str, list] = {name: [] for name in ALERT_SCHEMA.names}
    for alert in alerts:
        for name in ALERT_SCHEMA.names:
            columns[name].append(getattr(alert, name))
    if dataset is not None:
        columns["dataset"] = [dataset if d is None else d for d in columns["dataset"]]
    return pa.Table.from_pydict(columns, schema=ALERT_SCHEMA)


#: The stored ``dlq`` columns of each :class:`DeadLetter` field.
_DLQ_FIELDS = {
    "ts": "ts", "reason": "reason", "error": "error", "key": "key", "value": "value",
    "source_topic": "topic", "source_partition": "partition", "source_offset": "offset",
    "source_file": "file", "source_line": "line",
}  # fmt: skip


def dlq_table(dead: list[DeadLetter], now_ns: int, dataset: str | None = None) -> pa.Table:
    """Build a ``dlq`` table; rows without an event time get ``now_ns``.

    Args:
        dead: the dead letters.
        now_ns: the time of rows without one of their own.
        dataset: the dataset of every row.
    """
    if not dead:
        return DLQ_SCHEMA.empty_table()
    columns: dict[str, list] = {
        column: [getattr(letter, name) for letter in dead] for column, name in _DLQ_FIELDS.items()
    }
    columns["ts"] = [now_ns if ts is None else ts for ts in columns["ts"]]
    columns["dataset"] = [dataset] * len(dead)
    return pa.Table.from_pydict(columns, schema=DLQ_SCHEMA)
