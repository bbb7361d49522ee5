"""The trades the processor kept, by reference: where they are on ``ticks``, not copies.

Every trade the processor keeps is stored (the ``trades`` table), and the
input already holds it. On Kafka the process service therefore does not send
each kept trade through the broker a second time: in the same transaction as
its outputs it writes to ``trades`` one small record per input batch that
names the kept trades' offsets on ``ticks``::

    {"kept_from": "marketpulse.ticks", "partition": 3, "runs": [100, 4099, 4101, 9999],
     "dataset": "lean"}

``runs`` holds pairs of first and last offsets (inclusive); the trades left
out are those the processor refused (they are in ``dlq``) and the records
that are no trades. A sink resolves each reference
(:class:`TradeResolver`): it reads those offsets of ``ticks`` again
(:meth:`~marketpulse.bus.base.Bus.read_range`) and stores the same records a
copy would have carried (:func:`trade_records`), bit for bit. The reference
commits with the consumed offsets, so exactly-once holds as for a copy; a
trade is stored once, and on the broker once.

The ``trades`` topic may also hold copies (the Spark route writes them, and a
version before this one did): a sink stores both.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.bus.base import Batch, Bus, RecordsGone, offsets_of, values_of
from marketpulse.bus.codec import encode_rows, stored_plain_trades
from marketpulse.exceptions import BusError
from marketpulse.stream.decode import decode_batch, from_plain
from marketpulse.stream.output import Constant, stamp

__all__ = ["TradeRef", "TradeResolver", "is_ref", "refs_of", "slices", "trade_records"]

logger = logging.getLogger(__name__)

#: How a reference record begins (a copy of a trade never does).
REF_PREFIX = b'{"kept_from":'

#: Runs a reference holds at most (a record stays far below Kafka's 1 MB limit).
_MAX_RUNS = 8_192

#: Seconds a read of ``ticks`` waits before it says so and tries again.
_READ_TIMEOUT_S = 30.0


class TradeRef(msgspec.Struct, frozen=True):
    """The trades kept of one input batch: offsets on one partition of ``kept_from``."""

    kept_from: str
    partition: int
    runs: list[int]
    dataset: str | None = None

    def offsets(self) -> np.ndarray:
        """Every offset the runs hold, in order."""
        pairs = self.runs
        runs = [np.arange(pairs[i], pairs[i + 1] + 1, dtype=np.int64)
                for i in range(0, len(pairs) - 1, 2)]  # fmt: skip
        return np.concatenate(runs) if runs else np.empty(0, np.int64)


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TradeRef)


def is_ref(value: bytes | None) -> bool:
    """Whether a ``trades`` record is a reference (else a copy of a trade)."""
    return value is not None and value.startswith(REF_PREFIX)


def slices(values: Sequence[bytes | None], most: int) -> list[tuple[int, int]]:
    """Cut ``trades`` records into slices ``[start, stop)`` of at most ``most`` trades each.

    A reference counts the trades it names, a copy one; a reference naming more
    than ``most`` is a slice of its own. A sink resolves a slice at a time, so a
    backlog of references never becomes all its trades in memory at once.
    """
    out, start, count = [], 0, 0
    for index, value in enumerate(values):
        n = _named(value) if is_ref(value) else 1
        if count and count + n > most:
            out.append((start, index))
            start, count = index, 0
        count += n
    if start < len(values):
        out.append((start, len(values)))
    return out


def _named(value: bytes | None) -> int:
    """How many trades a reference names (1 if it cannot be read: it fails on its own)."""
    try:
        runs = _decoder.decode(value).runs  # type: ignore[arg-type]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return 1
    return max(1, sum(runs[1::2]) - sum(runs[0::2]) + len(runs) // 2)


def refs_of(topic: str, partition: int, offsets: np.ndarray, dataset: str | None) -> list[bytes]:
    """The reference records of trades kept at ``offsets`` (ascending) of ``topic[partition]``."""
    n = len(offsets)
    if not n:
        return []
    offsets = np.asarray(offsets, np.int64)
    first, last = int(offsets[0]), int(offsets[-1])
    if last - first == n - 1:  # ascending offsets without a gap (the common case): one run
        return [_encoder.encode(TradeRef(topic, partition, [first, last], dataset))]
    breaks = np.flatnonzero(np.diff(offsets) != 1)
    starts = np.concatenate([offsets[:1], offsets[breaks + 1]])
    ends = np.concatenate([offsets[breaks], offsets[-1:]])
    runs = np.column_stack([starts, ends]).ravel().tolist()
    step = 2 * _MAX_RUNS
    return [
        _encoder.encode(TradeRef(topic, partition, runs[i : i + step], dataset))
        for i in range(0, len(runs), step)
    ]


def trade_records(
    trades: pa.RecordBatch | pa.Table, batch: Batch, dataset: str | None
) -> list[bytes]:
    """The ``trades`` records of ``trades``, rows of ``batch`` (of messages) at their ``offset``.

    Rows decoded from plain records (:func:`~marketpulse.stream.decode.from_plain`)
    are those records' own bytes with ``dataset`` appended
    (:func:`~marketpulse.bus.codec.stored_plain_trades`); any others are
    encoded from their columns, which hold their dataset.
    """
    if not from_plain(trades):
        return encode_rows("trades", trades)[1]
    values = values_of(batch.messages)
    kept = trades.column("offset").to_numpy()
    if len(kept) == len(values) and batch.last_offset - batch.first_offset + 1 == len(values):
        picked = values  # every record of the batch, whose offsets have no gaps
    else:
        at = np.searchsorted(np.asarray(offsets_of(batch.messages), np.int64), kept)
        picked = [values[i] for i in at.tolist()]
    return stored_plain_trades(picked, dataset)  # type: ignore[arg-type]


class TradeResolver:
    """Turns the references among ``trades`` records into the records of the trades they name.

    Args:
        bus: the bus ``ticks`` is on.
        stop: set it to give up a read that waits (the caller is stopping).
    """

    def __init__(self, bus: Bus, stop: threading.Event | None = None) -> None:
        self.bus = bus
        self.stop = stop or threading.Event()

    def records(
        self, values: Sequence[bytes]
    ) -> tuple[list[bytes], list[int], list[tuple[int, str]]] | None:
        """Each record as it is, or for a reference the records it names.

        Returns the records, the index in ``values`` each came from, and the
        references that could not be resolved (index, why: undecodable, or the
        trades are no longer on ``ticks``); ``None``: :attr:`stop` was set while
        a read waited for the broker.
        """
        if not any(map(is_ref, values)):
            return list(values), list(range(len(values))), []
        out: list[bytes] = []
        origin: list[int] = []
        failed: list[tuple[int, str]] = []
        for index, value in enumerate(values):
            if not is_ref(value):
                out.append(value)
                origin.append(index)
                continue
            try:
                resolved = self._resolve(_decoder.decode(value))
            except (msgspec.DecodeError, msgspec.ValidationError, RecordsGone) as exc:
                failed.append((index, f"a reference to kept trades not resolved: {exc}"))
                continue
            if resolved is None:
                return None
            out.extend(resolved)
            origin.extend([index] * len(resolved))
        return out, origin, failed

    def _resolve(self, ref: TradeRef) -> list[bytes] | None:
        kept = ref.offsets()
        if not len(kept):
            return []
        first, last = int(kept[0]), int(kept[-1])
        while True:
            try:
                batches = self.bus.read_range(ref.kept_from, ref.partition, first, last,
                                              _READ_TIMEOUT_S, self.stop)  # fmt: skip
                break
            except RecordsGone:
                raise
            except BusError as exc:
                if self.stop.is_set():
                    return None
                logger.warning("%s; trying again", exc)
        out: list[bytes] = []
        for batch in batches:
            trades = _trades_of(batch)
            if trades is not None:
                picked = trades.filter(pc.is_in(trades.column("offset"), pa.array(kept)))
                out.extend(_records(picked, batch, ref.dataset))
        if len(out) != len(kept):
            where = f"{ref.kept_from}[{ref.partition}]"
            raise RecordsGone(f"{where} holds {len(out):,} of the {len(kept):,} trades kept "
                              f"from offsets {first:,} to {last:,}")  # fmt: skip
        return out


def _trades_of(batch: Batch) -> pa.RecordBatch | None:
    """The trade columns of a batch of ``ticks``, each row with its ``offset``."""
    if batch.columns is not None and batch.kind != "trade":
        return None
    decoded, _ = decode_batch(batch)
    trades = next((data for kind, data in decoded if kind == "trade"), None)
    if trades is None or batch.columns is None:
        return trades
    offsets = pa.array(np.arange(batch.first_offset, batch.last_offset + 1, dtype=np.int64))
    index = trades.schema.get_field_index("offset")
    if index < 0:
        return trades.append_column("offset", offsets)
    return trades.set_column(index, "offset", offsets)


def _records(trades: pa.RecordBatch, batch: Batch, dataset: str | None) -> list[bytes]:
    """The ``trades`` records of kept trades, as :func:`trade_records` makes them."""
    if batch.columns is None and from_plain(trades):
        return trade_records(trades, batch, dataset)
    stamped = stamp(trades, Constant(dataset))
    return encode_rows("trades", stamped)[1]
