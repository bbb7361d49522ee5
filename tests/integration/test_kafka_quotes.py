"""Quotes on the Kafka path: the process service gives the bars (quote columns included)
that the processor gives in one process, across a restart that restores its state."""

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketpulse.bus.base import Batch
from marketpulse.bus.codec import decode_rows
from marketpulse.feeds.simulator import Simulator
from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.stream.processor import Processor, ProcessorSettings

from .kafka_tools import bus_for, create_topics, process_command, read_committed, start, wait_log

pytestmark = pytest.mark.integration

T0 = 1_700_000_000 * 10**9
KEY = ["symbol", "timeframe", "bar_start"]


def _parts():
    sim = Simulator(symbols=4, rate=40.0, seed=3, start_ts=T0, realtime=False, quotes=True,
                    batch_size=200, max_events=2400, news_every=0)  # fmt: skip
    return [(b.kind, b.data) for b in sim.batches()]


def _embedded(parts) -> pa.Table:
    """The bars one processor closes by input alone (no idle timeout, no end of input)."""
    processor = Processor(ProcessorSettings(idle_timeout=None))
    tables = []
    for i, (kind, data) in enumerate(parts):
        out = processor.process(Batch("ticks", 0, i, i, kind=kind, columns=data))
        tables.append(out.bars)
    table = pa.concat_tables([t for t in tables if t.num_rows], promote_options="default")
    return table.drop_columns(["dataset"]).sort_by([(k, "ascending") for k in KEY])


def _run_process(bootstrap, prefix):
    proc = start(process_command(bootstrap, prefix, "q", "--exit-when-idle", "4"))
    log = wait_log(proc, 300)
    assert proc.returncode == 0, log


@pytest.mark.timeout(600)
def test_process_with_quotes_gives_the_embedded_bars_across_a_restart(
    kafka_bootstrap, topic_prefix
):
    topics = create_topics(kafka_bootstrap, topic_prefix, partitions=1)
    parts = _parts()
    half = len(parts) // 2
    for chunk in (parts[:half], parts[half:]):  # a restart in between: state from the topic
        with bus_for(kafka_bootstrap).producer() as producer:
            for kind, data in chunk:
                producer.send_columns(topics.ticks, kind, data)
        assert producer.failed == 0
        _run_process(kafka_bootstrap, topic_prefix)
    values = [value for rows in read_committed(kafka_bootstrap, topics.name("bars")).values()
              for _, value, _ in rows]  # fmt: skip
    got, errors = decode_rows("bars", values)
    assert not errors
    got = got.drop_columns(["dataset"]).sort_by([(k, "ascending") for k in KEY])
    expected = _embedded(parts)
    assert expected.num_rows > 100
    assert pc.min(expected.column("spread_twa")).as_py() > 0
    assert got.column_names == expected.column_names
    assert set(BAR_QUOTE_COLUMNS) <= set(got.column_names)
    assert got.equals(expected)
    # every quote of the ticks topic, once, in the quotes topic (the lake's quotes table)
    sent = pa.concat_tables(
        [pa.Table.from_batches([d]) for kind, d in parts if kind == "quote"]
    ).drop_columns(["dataset"])  # fmt: skip
    values = [value for rows in read_committed(kafka_bootstrap, topics.name("quotes")).values()
              for _, value, _ in rows]  # fmt: skip
    got_quotes = [json.loads(value) for value in values]
    assert len(got_quotes) == sent.num_rows > 100
    assert {q.get("dataset") for q in got_quotes} == {"live"}  # stored with their dataset
    key = ("symbol", "ts", "bid", "ask")
    assert sorted(tuple(q[k] for k in key) for q in got_quotes) == sorted(
        zip(*(sent.column(k).to_pylist() for k in key), strict=True)
    )
