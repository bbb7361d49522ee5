"""The PostgreSQL sink stores the bars' quote columns, adding them to an existing table."""

import numpy as np
import psycopg
import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch
from marketpulse.feeds.simulator import Simulator
from marketpulse.models import BAR_QUOTE_COLUMNS, BAR_SCHEMA
from marketpulse.sinks import PostgresSink
from marketpulse.stream.processor import Processor, ProcessorSettings

pytestmark = pytest.mark.integration

T0 = 1_700_000_000 * 10**9


def _quoted_bars() -> pa.Table:
    sim = Simulator(symbols=3, rate=30.0, seed=5, start_ts=T0, realtime=False, quotes=True,
                    batch_size=200, max_events=1200, news_every=0)  # fmt: skip
    processor = Processor(ProcessorSettings(idle_timeout=None, dataset="pgquotes"))
    tables = [processor.process(Batch("ticks", 0, i, i, kind=b.kind, columns=b.data)).bars
              for i, b in enumerate(sim.batches())]  # fmt: skip
    tables.append(processor.finish().bars)
    return pa.concat_tables([t for t in tables if t.num_rows])


def _columns(url):
    with psycopg.connect(url) as conn:
        return [d.name for d in conn.execute("SELECT * FROM bars LIMIT 0").description]


def test_bars_with_quotes_add_their_columns_and_store_them(postgres_url):
    plain = pa.table({
        "symbol": ["OLD"], "timeframe": ["1m"], "bar_start": [T0], "bar_end": [T0 + 60 * 10**9],
        "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0],
        "vwap": [1.0], "trades": [1], "dataset": ["pgquotes"],
    }, schema=BAR_SCHEMA)  # fmt: skip
    with PostgresSink(postgres_url) as sink:  # a table as an earlier run made it
        sink.write("bars", plain)
    assert not set(BAR_QUOTE_COLUMNS) & set(_columns(postgres_url))
    bars = _quoted_bars()
    assert bars.num_rows > 50
    with PostgresSink(postgres_url) as sink:
        sink.write("bars", bars)
        sink.write("bars", plain)  # plain bars beside quoted ones in one flush
    assert set(BAR_QUOTE_COLUMNS) <= set(_columns(postgres_url))
    with PostgresSink(postgres_url) as sink:  # the schema check takes the added columns
        sink.write("bars", bars.slice(0, 1))
    names = ", ".join(BAR_QUOTE_COLUMNS)
    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            f"SELECT symbol, timeframe, (extract(epoch FROM bar_start) * 1e9)::bigint, {names}"
            " FROM bars WHERE dataset = 'pgquotes' ORDER BY 1, 2, 3"
        ).fetchall()
    stored = {(r[0], r[1], r[2]): r[3:] for r in rows}
    assert stored[("OLD", "1m", T0)] == (None,) * len(BAR_QUOTE_COLUMNS)
    for row in bars.to_pylist():
        got = stored[(row["symbol"], row["timeframe"], row["bar_start"])]
        expected = [row[name] for name in BAR_QUOTE_COLUMNS]
        np.testing.assert_array_equal(np.array(got, float), np.array(expected, float))
    assert sum(v[0] is not None for v in stored.values()) >= bars.num_rows
