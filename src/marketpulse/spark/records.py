"""A producer that keeps what it is sent: the records ``process`` would put on its topics.

The Spark operator runs the process service's own sending code
(:func:`~marketpulse.runtime.forward.send_output`) against a
:class:`Recorder`, so the Spark route's records are byte for byte those of
``process``; they leave the operator as the rows of one frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from marketpulse.bus.base import Producer
from marketpulse.bus.codec import dead_letter_headers, encode_alerts, encode_rows

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from marketpulse.models import Alert, DeadLetter

__all__ = ["RECORD_COLUMNS", "Recorder"]

#: The columns of the records a :class:`Recorder` keeps (the operator's output rows).
RECORD_COLUMNS = ("topic", "partition", "seq", "key", "value", "headers")

Header = tuple[str, bytes]


class Recorder(Producer):
    """Keeps the records sent to it, in order, instead of sending them.

    A partition of ``-1`` (by key) is kept as ``-1``: whoever writes the
    records places them (the Spark operator's records all name theirs).
    """

    def __init__(self) -> None:
        self.topics: list[str] = []
        self.partitions: list[int] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.headers: list[list[Header] | None] = []

    def __len__(self) -> int:
        return len(self.values)

    def _keep(
        self,
        topic: str,
        partition: int,
        keys: Sequence[str | bytes | None],
        values: Sequence[bytes | None],
        headers: Sequence[list[Header] | None] | None = None,
    ) -> None:
        n = len(values)
        self.topics.extend([topic] * n)
        self.partitions.extend([partition] * n)
        self.keys.extend(k.encode() if isinstance(k, str) else k for k in keys)
        self.values.extend(values)
        self.headers.extend(headers if headers is not None else [None] * n)

    def send_columns(self, topic: str, kind: str, data: pa.RecordBatch | pa.Table) -> None:
        """Keep rows as JSON records keyed by their symbol (placed by key: partition -1)."""
        keys, values = encode_rows("bars" if kind == "bar" else kind, data)
        self._keep(topic, -1, keys, values)

    def send_rows(self, topic: str, kind: str, rows: pa.Table, partition: int) -> None:
        """Keep the rows of output table ``kind`` as JSON records keyed by symbol."""
        if rows.num_rows:
            self._keep(topic, partition, *encode_rows(kind, rows))

    def send_encoded(
        self, topic: str, keys: Sequence[str], values: Sequence[bytes], partition: int
    ) -> None:
        """Keep records already encoded."""
        self._keep(topic, partition, keys, values)

    def send_alerts(self, topic: str, alerts: Iterable[Alert], partition: int = -1) -> None:
        """Keep alerts keyed by symbol."""
        self._keep(topic, partition, *encode_alerts(alerts))

    def send_dead(
        self,
        topic: str,
        letters: Iterable[DeadLetter],
        partition: int = -1,
        dataset: str | None = None,
    ) -> None:
        """Keep dead letters: the original key and bytes, what went wrong in headers."""
        letters = list(letters)
        self._keep(
            topic, partition, [letter.key for letter in letters],
            [letter.value for letter in letters],
            [dead_letter_headers(letter, dataset) for letter in letters],
        )  # fmt: skip

    def send_records(
        self, topic: str, records: Iterable[tuple[bytes, bytes | None]], partition: int
    ) -> None:
        """Keep key/value records."""
        pairs = list(records)
        self._keep(topic, partition, [k for k, _ in pairs], [v for _, v in pairs])

    def flush(self, timeout: float | None = None) -> None:
        """Nothing to wait for: the records are kept."""

    def frame(self, first_seq: int = 0) -> pd.DataFrame:
        """The records as a frame of :data:`RECORD_COLUMNS`, ``seq`` counting from ``first_seq``."""
        import pandas as pd

        return pd.DataFrame(
            {
                "topic": self.topics,
                "partition": pd.array(self.partitions, dtype="int32"),
                "seq": pd.array(range(first_seq, first_seq + len(self)), dtype="int64"),
                "key": self.keys,
                "value": self.values,
                "headers": [
                    None if h is None else [{"key": k, "value": v} for k, v in h]
                    for h in self.headers
                ],
            },
            columns=list(RECORD_COLUMNS),
        )
