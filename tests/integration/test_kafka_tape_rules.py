"""``marketpulse process --conditions lean`` on Kafka: the same bars as the embedded replay."""

import msgspec
import pyarrow as pa
import pytest

from marketpulse.bus import Batch
from marketpulse.feeds import FileReplay
from marketpulse.stream import Processor, ProcessorSettings

from .conftest import LEAN_TRADES, marketpulse
from .kafka_tools import create_topics, load_file, read_committed

pytestmark = pytest.mark.integration

FIELDS = ("open", "high", "low", "close", "volume", "vwap", "trades")


def embedded_bars():
    """The bars of one in-process pass (what `replay --conditions lean` stores)."""
    processor = Processor(ProcessorSettings(intervals=("1m",), lateness=120, conditions="lean"))
    offset, tables = 0, []
    for batch in FileReplay(LEAN_TRADES).batches():
        n = batch.data.num_rows
        tables.append(processor.process(
            Batch("ticks", 0, offset, offset + n - 1, kind=batch.kind, columns=batch.data)
        ).bars)  # fmt: skip
        offset += n
    tables.append(processor.finish().bars)
    table = pa.concat_tables(tables)
    keys = zip(table["symbol"].to_pylist(), table["bar_start"].to_pylist(), strict=True)
    values = zip(*(table[f].to_pylist() for f in FIELDS), strict=True)
    return dict(zip(keys, values, strict=True))


def test_process_with_lean_conditions_makes_the_embedded_replays_bars(
    kafka_bootstrap, topic_prefix
):
    topics = create_topics(kafka_bootstrap, topic_prefix)
    sent = load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
    assert sent == 388_417
    result = marketpulse(
        "process", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}p", "--exit-when-idle", "4", "--idle-timeout", "0",
        "--intervals", "1m", "--lateness", "120", "--conditions", "lean",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    partitions = read_committed(kafka_bootstrap, topics.name("bars")).values()
    bars = [msgspec.json.decode(v) for records in partitions for _, v, _ in records]
    ours = {(b["symbol"], b["bar_start"]): tuple(b[f] for f in FIELDS) for b in bars}
    assert len(ours) == len(bars)
    expected = embedded_bars()
    # the bars input closed (idle timeout 0: the last few minutes of each partition stay open)
    assert len(ours) > len(expected) - 4 * 4
    assert {k: expected[k] for k in ours} == ours
    missing = set(expected) - set(ours)
    last = {s: max(t for (sym, t) in expected if sym == s) for s, _ in expected}
    assert all(t >= last[s] - 4 * 60 * 10**9 for s, t in missing)
    assert read_committed(kafka_bootstrap, topics.name("dlq")) in ({}, {p: [] for p in range(6)})
