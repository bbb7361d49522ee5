"""What the process service sends on as its input came: the trades it kept.

Every trade the processor keeps goes to the ``trades`` topic, as many records
as the input. Encoding their columns again cost more than all the processing
of a catch-up; a plain trade record's own bytes, with the dataset appended
(:func:`~marketpulse.bus.codec.stored_plain_trades`), serve instead.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from marketpulse.bus.base import Batch, Producer, offsets_of, values_of
from marketpulse.bus.codec import stored_plain_trades
from marketpulse.stream.decode import from_plain

__all__ = ["send_trades"]


def send_trades(
    producer: Producer,
    topic: str,
    trades: pa.RecordBatch | pa.Table,
    partition: int,
    batch: Batch | None,
    dataset: str | None,
) -> None:
    """Send the trades kept (rows of ``batch``, each with its input ``offset``) to ``topic``.

    Rows decoded from plain records (:func:`~marketpulse.stream.decode.from_plain`)
    are sent as those records, with ``dataset``; any other rows (columns, or
    records msgspec decoded) are encoded from their columns.
    """
    if batch is None or batch.columns is not None or not from_plain(trades):
        producer.send_rows(topic, "trades", trades, partition)
        return
    values = values_of(batch.messages)
    kept = trades.column("offset").to_numpy()
    if len(kept) == len(values) and batch.last_offset - batch.first_offset + 1 == len(values):
        picked = values  # every record of the batch, whose offsets have no gaps
    else:
        at = np.searchsorted(np.asarray(offsets_of(batch.messages), np.int64), kept)
        picked = [values[i] for i in at.tolist()]
    keys = _keys(trades.column("symbol"))
    producer.send_encoded(topic, keys, stored_plain_trades(picked, dataset), partition)


def _keys(symbol: pa.Array | pa.ChunkedArray) -> list[str]:
    """The symbols of a column as Python strings (a dictionary column without a lookup a row)."""
    if isinstance(symbol, pa.ChunkedArray):
        symbol = symbol.combine_chunks()
    if pa.types.is_dictionary(symbol.type):
        names = np.asarray(symbol.dictionary.to_pylist(), object)
        return names[symbol.indices.to_numpy(zero_copy_only=False)].tolist()
    return symbol.to_pylist()
