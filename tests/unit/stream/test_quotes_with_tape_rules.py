"""Quotes beside ``conditions="lean"``: the bars keep no quote columns (held bars end late)."""

import pyarrow as pa

from marketpulse.bus import Batch
from marketpulse.feeds import Simulator
from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.stream import Processor, ProcessorSettings


def _bars(conditions):
    processor = Processor(ProcessorSettings(intervals=("1s", "1m"), conditions=conditions))
    feed = Simulator(symbols=5, rate=500.0, seed=1, start_ts=1_700_000_000 * 10**9,
                     realtime=False, max_events=30_000, quotes=True)  # fmt: skip
    offset, tables = 0, []
    for batch in feed.batches():
        n = batch.data.num_rows
        tables.append(processor.process(
            Batch("ticks", 0, offset, offset + n - 1, kind=batch.kind, columns=batch.data)
        ).bars)  # fmt: skip
        offset += n
    tables.append(processor.finish().bars)
    bars = pa.concat_tables([t for t in tables if t.num_rows], promote_options="default")
    return bars.sort_by([("timeframe", "ascending"), ("symbol", "ascending"),
                         ("bar_start", "ascending")])  # fmt: skip


def test_lean_bars_of_a_quoted_stream_are_its_bars_without_quote_columns():
    plain, lean = _bars("none"), _bars("lean")
    assert set(BAR_QUOTE_COLUMNS) <= set(plain.column_names)  # the quotes made their columns
    assert plain.column("spread_twa").null_count < plain.num_rows
    assert not set(BAR_QUOTE_COLUMNS) & set(lean.column_names)
    # the simulator's trades carry no Lean condition: the same bars, an interval later
    assert lean.equals(plain.select(lean.column_names)) and lean.num_rows > 300
