import math

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse.bus import Batch, Message
from marketpulse.models import BAR_SCHEMA, TRADE_SCHEMA, Bar, Trade, encode
from marketpulse.stream import Processor, ProcessorSettings

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC


def trades(rows, line=False):
    columns = {
        "symbol": pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
        "ts": pa.array([r[1] for r in rows], pa.int64()),
        "price": pa.array([r[2] for r in rows], pa.float64()),
        "size": pa.array([r[3] for r in rows], pa.float64()),
        "exchange": pa.nulls(len(rows), pa.string()),
        "condition": pa.nulls(len(rows), pa.string()),
    }
    batch = pa.RecordBatch.from_pydict(columns, schema=TRADE_SCHEMA)
    if line:
        batch = batch.append_column("line", pa.array(range(2, len(rows) + 2), pa.int64()))
    return batch


def batch_of(data, first=0, kind="trade"):
    return Batch("ticks", 0, first, first + data.num_rows - 1, kind=kind, columns=data)


def test_bad_trades_go_to_the_dlq_with_their_reason_and_good_ones_are_kept():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    data = trades(
        [
            ("AAPL", T0, 10.0, 5),
            ("AAPL", T0 + 1, float("nan"), 5),
            ("AAPL", T0 + 2, -1.0, 5),
            ("AAPL", T0 + 3, 10.0, -5),
            ("", T0 + 4, 10.0, 5),
            ("BAD SYMBOL", T0 + 5, 10.0, 5),
            ("AAPL", T0 + 6, 12.0, 1),
        ],
        line=True,
    ).replace_schema_metadata({"source": "x.csv"})
    out = proc.process(batch_of(data, first=100))
    reasons = [(d.reason, d.offset, d.line, d.file) for d in out.dead]
    assert reasons == [
        ("nan", 101, 3, "x.csv"),
        ("price", 102, 4, "x.csv"),
        ("size", 103, 5, "x.csv"),
        ("symbol", 104, 6, "x.csv"),
        ("symbol", 105, 7, "x.csv"),
    ]
    assert all(d.topic == "ticks" and d.partition == 0 for d in out.dead)
    assert msgspec.json.decode(out.dead[0].value)["symbol"] == "AAPL"
    assert out.accepted == 2
    bars = proc.finish().bars.to_pylist()
    assert len(bars) == 1
    assert (bars[0]["open"], bars[0]["close"], bars[0]["volume"], bars[0]["trades"]) == (
        10.0,
        12.0,
        6.0,
        2,
    )


def test_late_tick_goes_to_the_dlq_with_reason_late():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0.5))
    proc.process(batch_of(trades([("AAPL", T0, 10.0, 1), ("AAPL", T0 + 2 * S, 11.0, 1)])))
    out = proc.process(batch_of(trades([("AAPL", T0 + 100, 50.0, 1)]), first=2))
    assert [(d.reason, d.offset, d.key) for d in out.dead] == [("late", 2, "AAPL")]
    assert "watermark" in out.dead[0].error
    bars = proc.finish().bars.to_pylist()
    assert [
        b["high"] for b in bars if b["start"] == T0
    ] == []  # the T0 bar closed before, without the late tick


def test_quiet_symbol_bar_closes_when_others_trade():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    out = proc.process(batch_of(trades([("IBM", T0, 180.0, 1), ("SPY", T0 + 3 * S, 167.0, 1)])))
    assert [(b["symbol"], b["start"], b["end"]) for b in out.bars.to_pylist()] == [
        ("IBM", T0, T0 + S)
    ]
    assert out.indicators.num_rows == 1
    assert out.indicators.column("sma_20").null_count == 1  # not warmed up: null, never 0


def test_idle_partition_advances_by_processing_time():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0, idle_timeout=1.0))
    proc.process(batch_of(trades([("IBM", T0, 180.0, 1)])))
    state = proc.state("ticks", 0)
    assert proc.idle(now=state.last_input + 0.5).bars.num_rows == 0
    out = proc.idle(now=state.last_input + 2.0)
    assert out.bars.column("start").to_pylist() == [T0]


def test_partition_with_records_left_to_read_is_not_idle():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0, idle_timeout=1.0))
    proc.process(batch_of(trades([("IBM", T0, 180.0, 1)])))
    state = proc.state("ticks", 0)
    later = state.last_input + 5.0
    assert proc.idle_each(now=later, behind={("ticks", 0)}) == {}
    # its backlog read, a tick in the open window is on time, not late
    out = proc.process(batch_of(trades([("IBM", T0 + S // 2, 181.0, 1)]), first=1))
    assert out.dead == [] and out.accepted == 1
    closed = proc.idle_each(now=state.last_input + 5.0)
    assert closed[("ticks", 0)].bars.column("high").to_pylist() == [181.0]


def test_bars_from_a_feed_get_indicators_and_pass_through():
    proc = Processor()
    n = 40
    closes = 100 + np.cumsum(np.sin(np.arange(n)))
    day = 86_400 * S
    data = pa.RecordBatch.from_pydict(
        {
            "symbol": ["HSI"] * n,
            "interval": ["1d"] * n,
            "start": [T0 - T0 % day + i * day for i in range(n)],
            "end": [T0 - T0 % day + (i + 1) * day for i in range(n)],
            "open": closes,
            "high": closes + 1,
            "low": closes - 1,
            "close": closes,
            "volume": [0.0] * n,
            "vwap": [None] * n,
            "trades": [0] * n,
        },
        schema=BAR_SCHEMA,
    )
    out = proc.process(batch_of(data, kind="bar"))
    assert out.bars.num_rows == n
    sma = out.indicators.column("sma_20").to_pylist()
    assert sma[18] is None and math.isclose(sma[19], closes[:20].mean(), rel_tol=1e-12)
    assert out.indicators.column("vwap").null_count == n  # no volume: no VWAP


def test_raw_messages_are_decoded_and_bad_ones_reported_with_offsets():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    messages = [
        Message(b"AAPL", encode(Trade("AAPL", T0, 10.0, 1.0)), 7),
        Message(b"AAPL", b"\x00\xffnot json", 8),
        Message(b"AAPL", b'{"type": "trade", "symbol": "AAPL", "price": "x"}', 9),
        Message(b"AAPL", encode(Trade("AAPL", T0 + 2 * S, 11.0, 1.0)), 10),
        Message(b"HSI", encode(Bar("HSI", "1d", 0, 86_400 * S, 1, 2, 0.5, 1.5, 10)), 11),
        Message(b"AAPL", encode(Trade("AAPL", T0 + 3 * S, -1.0, 1.0)), 12),
    ]
    out = proc.process(Batch("ticks", 3, 7, 12, messages=messages))
    assert [(d.reason, d.partition, d.offset) for d in out.dead] == [
        ("schema", 3, 8),
        ("schema", 3, 9),
        ("price", 3, 12),  # validated after decoding: still its own offset
    ]
    assert out.dead[0].value == b"\x00\xffnot json"
    assert sorted((b["symbol"], b["interval"]) for b in out.bars.to_pylist()) == [
        ("AAPL", "1s"),
        ("HSI", "1d"),
    ]


def test_output_does_not_depend_on_batch_boundaries():
    rng = np.random.default_rng(3)
    n = 30_000
    symbols = np.array(["A", "B", "C", "D", "E"])[rng.integers(0, 5, n)]
    ts = T0 + np.sort(rng.integers(0, 900 * S, n))
    price = 50 + np.cumsum(rng.normal(0, 0.02, n))
    size = rng.integers(1, 10, n) * 100.0
    data = trades(
        list(zip(symbols.tolist(), ts.tolist(), price.tolist(), size.tolist(), strict=True))
    )

    def run(step):
        proc = Processor()
        bars, inds = [], []
        for start in range(0, n, step):
            out = proc.process(batch_of(data.slice(start, step), first=start))
            bars.append(out.bars)
            inds.append(out.indicators)
        out = proc.finish()
        return pa.concat_tables(bars + [out.bars]), pa.concat_tables(inds + [out.indicators])

    bars_one, ind_one = run(n)
    bars_many, ind_many = run(977)
    assert bars_one.num_rows > 1000
    assert bars_one.equals(bars_many)
    assert ind_one.equals(ind_many)
