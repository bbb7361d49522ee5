"""Read what :func:`~marketpulse.analytics.verify.verify` checks from the Kafka topics.

Every partition of ``trades``, ``bars``, ``indicators``, ``alerts`` and ``dlq``
is read from its start to its last stable offset with ``isolation.level =
read_committed``: the records of committed transactions only, as a sink sees
them. References in ``trades`` to the kept trades' offsets on ``ticks``
(:mod:`marketpulse.stream.trade_refs`) are resolved to those trades, as a sink
resolves them. A trade record carries no identity of the input record it came
from (no source offset), so trades stored twice cannot be told from trades
that were alike: they show as trades in no bar.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import confluent_kafka as ck
import msgspec
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.analytics.verify import Stored
from marketpulse.bus.codec import decode_dead_letters
from marketpulse.bus.kafka import KafkaBus
from marketpulse.bus.topics import Topics
from marketpulse.exceptions import BusError
from marketpulse.models import decode_tick
from marketpulse.stream.trade_refs import TradeResolver

__all__ = ["read_topics"]


class _TradeKey(msgspec.Struct):
    """What the check reads of a ``trades`` record (other fields are skipped unread)."""

    symbol: str
    ts: int
    condition: str | None = None
    dataset: str | None = None


class _BarKey(msgspec.Struct):
    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    trades: int | None = None
    dataset: str | None = None


class _IndicatorKey(msgspec.Struct):
    symbol: str
    timeframe: str
    bar_start: int
    dataset: str | None = None


class _AlertKey(msgspec.Struct):
    id: str
    timeframe: str
    dataset: str | None = None


#: Per table the record fields read, decoded into these (a record's own schema is
#: the codec's, :mod:`marketpulse.bus.codec`: the check needs its keys and counts only).
_KEYS: dict[str, type[msgspec.Struct]] = {
    "trades": _TradeKey, "bars": _BarKey, "indicators": _IndicatorKey, "alerts": _AlertKey,
}  # fmt: skip
_TYPES = {"ts": pa.int64(), "bar_start": pa.int64(), "bar_end": pa.int64(), "trades": pa.int64()}
#: The dataset of rows that carry none (as the lake's ``unknown`` partition).
_UNKNOWN = "unknown"


@dataclass
class _Records:
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes] = field(default_factory=list)
    headers: list[list[tuple[str, bytes]] | None] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)


def read_topics(bus: KafkaBus, topics: Topics, timeout: float = 120.0) -> Stored:
    """Read the committed records the check needs from the topics under ``topics.prefix``.

    Raises:
        BusError: a topic other than ``trades`` does not exist, or a partition's
            end was not reached within ``timeout`` seconds.
    """
    notes = []
    tables = {}
    for table in _KEYS:
        name = topics.name(table)
        if table == "trades" and not _exists(bus, name):
            notes.append(f"topic {name} does not exist (store_trades off?): bars are not checked "
                         "against trades")  # fmt: skip
            tables[table] = _rows(table, [], notes, name)
            continue
        values = _read(bus, name, timeout).values
        if table == "trades":
            values = _resolved(bus, values, notes, name)
        tables[table] = _rows(table, values, notes, name)
    dlq = _dead_letters(_read(bus, topics.name("dlq"), timeout, headers=True))
    notes.append(f"trades: records of {topics.name('trades')} carry no identity of their input: "
                 "trades stored twice show as extra trades, not as keys stored twice")  # fmt: skip
    return Stored(
        f"Kafka at {bus.settings.bootstrap}, topics {topics.prefix}*",
        tables["trades"], tables["bars"], tables["indicators"], tables["alerts"], dlq,
        notes=notes,
    )  # fmt: skip


def _resolved(bus: KafkaBus, values: list[bytes], notes: list[str], topic: str) -> list[bytes]:
    """``trades`` records with each reference replaced by the trades it names on ``ticks``."""
    resolved = TradeResolver(bus).records(values)
    assert resolved is not None  # no stop event is set
    records, _, failed = resolved
    if failed:
        notes.append(f"{topic}: {len(failed):,} references to kept trades not resolved (their "
                     f"trades are not checked); the first: {failed[0][1]}")  # fmt: skip
    return records


def _exists(bus: KafkaBus, name: str) -> bool:
    try:
        bus.partitions(name)
    except BusError:
        return False
    return True


def _read(bus: KafkaBus, topic: str, timeout: float, headers: bool = False) -> _Records:
    """Every committed record of ``topic``, partition after partition, in offset order."""
    count = bus.partitions(topic)  # BusError naming the topic when it does not exist
    reader = bus.reader()
    deadline = time.monotonic() + timeout
    out: dict[int, _Records] = {}
    try:
        ends = {}
        for p in range(count):
            # a read_committed client's high watermark is the last stable offset
            low, high = reader.get_watermark_offsets(ck.TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = (low, high)
        reader.assign([ck.TopicPartition(topic, p, low) for p, (low, _) in ends.items()])
        pending = set(ends)
        while pending:
            if time.monotonic() > deadline:
                raise BusError(f"read {topic}: the end of partitions {sorted(pending)} was not "
                               f"reached within {timeout:.0f} s")  # fmt: skip
            for record in reader.consume(10_000, 0.1):
                error = record.error()
                if error is not None:
                    if error.code() == ck.KafkaError._PARTITION_EOF:
                        pending.discard(record.partition())
                    elif error.fatal() or not error.retriable():
                        raise BusError(f"read {topic}[{record.partition()}]: {error.str()}")
                    continue
                p = record.partition()
                if record.offset() >= ends[p][1]:
                    pending.discard(p)
                    continue
                got = out.setdefault(p, _Records())
                got.keys.append(record.key())
                got.values.append(record.value() or b"")
                if headers:  # dead letters: what went wrong is in the headers
                    got.headers.append(record.headers())
                    got.timestamps.append(record.timestamp()[1])
                if record.offset() >= ends[p][1] - 1:
                    pending.discard(p)
    except ck.KafkaException as exc:
        raise BusError(f"read {topic}: {exc}") from None
    finally:
        reader.close()
    merged = _Records()
    for p in sorted(out):
        for name in ("keys", "values", "headers", "timestamps"):
            getattr(merged, name).extend(getattr(out[p], name))
    return merged


def _rows(table: str, values: list[bytes], notes: list[str], topic: str) -> pa.Table:
    struct = _KEYS[table]
    try:
        rows = msgspec.json.decode(b"[" + b",".join(values) + b"]", type=list[struct])
    except (msgspec.DecodeError, msgspec.ValidationError):
        rows, errors = [], []
        for value in values:  # record by record: the bad ones are left out and counted
            try:
                rows.append(msgspec.json.decode(value, type=struct))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                errors.append(str(exc))
        notes.append(f"{topic}: {len(errors):,} records are not {table} (not checked); the "
                     f"first: {errors[0]}")  # fmt: skip
    names = struct.__struct_fields__
    columns = list(zip(*(msgspec.structs.astuple(r) for r in rows), strict=True))
    columns = columns or [()] * len(names)
    data = {n: pa.array(c, _TYPES.get(n, pa.string())) for n, c in zip(names, columns, strict=True)}
    data["dataset"] = pc.fill_null(data["dataset"], _UNKNOWN)
    return pa.table(data)


def _dead_letters(records: _Records) -> pa.Table:
    letters = decode_dead_letters(records.keys, records.values, records.headers,
                                  [t * 1_000_000 for t in records.timestamps])  # fmt: skip
    reasons = letters.column("reason").to_pylist()
    # a late trade's own time is in its value (the record's time is when it was sent)
    ts = [_tick_time(v) if r == "late" else None for r, v in zip(reasons, records.values,
                                                                strict=True)]  # fmt: skip
    return pa.table({
        "reason": letters.column("reason"),
        "symbol": letters.column("key"),
        "ts": pa.array(ts, pa.int64()),
        "dataset": pc.fill_null(letters.column("dataset"), _UNKNOWN),
    })  # fmt: skip


def _tick_time(value: bytes) -> int | None:
    try:
        return getattr(decode_tick(value), "ts", None)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
