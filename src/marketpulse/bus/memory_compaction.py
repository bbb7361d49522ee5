"""Log compaction for the in-memory bus: a compacted topic keeps each key's latest value.

Kafka's ``cleanup.policy=compact`` keeps, per partition, the latest record of
each key however old it is, and drops the records a later one of the same key
supersedes (the ``state`` topic: every commit of the processor writes the
changed symbols' state again, and a restore reads the partition back for the
latest one per key). No consumer group commits past such a topic's records,
so the in-memory bus cannot drop them by commits as it does its other topics:
without compaction it would hold every state record ever written.

Unlike Kafka, the records kept take new, consecutive offsets at the end of
the compacted range (the bus's segments hold consecutive offsets): a record
never moves to an offset lower than its own, so a consumer positioned anywhere
still reads every latest value it had not read, and may read some it had read
again (as after a rebalance).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["COMPACT_MIN_ROWS", "compact", "compacted_topics"]

#: Records a compacted partition holds beyond twice those its last compaction
#: kept before it is compacted again: compaction then costs a constant per
#: record written, and the partition holds at most about three times its keys.
COMPACT_MIN_ROWS = 4096

#: One segment of a partition: its first offset, its kind, its rows, when it was appended.
Segment = tuple[int, str, pa.RecordBatch | pa.Table, float]


def compacted_topics(names: list[str], configs: object) -> set[str]:
    """Return those of ``names`` whose topic ``configs`` set ``cleanup.policy`` to compact.

    Args:
        names: the topics being created.
        configs: the ``configs`` option of ``create_topics`` (topic name to
            its Kafka settings), or ``None``.
    """
    if not isinstance(configs, dict):
        return set()
    out = set()
    for name in names:
        policy = str((configs.get(name) or {}).get("cleanup.policy", ""))
        if "compact" in policy.split(","):
            out.add(name)
    return out


def compact(segments: list[Segment], end_offset: int) -> list[Segment] | None:
    """Return a partition's segments reduced to the latest value of each key.

    The kept records, in their order, end at ``end_offset``; a key whose latest
    value is a tombstone (``None``) is dropped with it, as nothing older is left
    for it to delete.

    Args:
        segments: the partition's segments, oldest first, up to ``end_offset``.
        end_offset: the partition's next offset.

    Returns:
        The new segments (none, or one), or ``None`` when a segment holds
        records other than key/value ones, which are not compacted.
    """
    if not segments:
        return []
    if any(kind != "records" for _, kind, _, _ in segments):
        return None
    table = pa.concat_tables(
        [data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
         for _, _, data, _ in segments]
    )  # fmt: skip
    position = pa.array(np.arange(table.num_rows, dtype=np.int64))
    latest = (
        pa.table({"key": table.column("key"), "at": position})
        .group_by("key", use_threads=False)
        .aggregate([("at", "max")])
        .column("at_max")
    )
    kept = table.take(np.sort(latest.to_numpy()))
    kept = kept.filter(pc.is_valid(kept.column("value")))
    if kept.num_rows == 0:
        return []
    # take() copied the kept values: the superseded segments' buffers go with them
    return [(end_offset - kept.num_rows, "records", kept.combine_chunks(), segments[-1][3])]
