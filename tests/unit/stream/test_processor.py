import math
import time

import msgspec
import numpy as np
import pyarrow as pa
import pytest

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
        "dataset": pa.nulls(len(rows), pa.string()),
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
        b["high"] for b in bars if b["bar_start"] == T0
    ] == []  # the T0 bar closed before, without the late tick


def test_quiet_symbol_bar_closes_when_others_trade():
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    out = proc.process(batch_of(trades([("IBM", T0, 180.0, 1), ("SPY", T0 + 3 * S, 167.0, 1)])))
    assert [(b["symbol"], b["bar_start"], b["bar_end"]) for b in out.bars.to_pylist()] == [
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
    assert out.bars.column("bar_start").to_pylist() == [T0]


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
            "timeframe": ["1d"] * n,
            "bar_start": [T0 - T0 % day + i * day for i in range(n)],
            "bar_end": [T0 - T0 % day + (i + 1) * day for i in range(n)],
            "open": closes,
            "high": closes + 1,
            "low": closes - 1,
            "close": closes,
            "volume": [0.0] * n,
            "vwap": [None] * n,
            "trades": [0] * n,
            "dataset": ["feed-name"] * n,  # the processor's dataset replaces a feed's
        },
        schema=BAR_SCHEMA,
    )
    out = proc.process(batch_of(data, kind="bar"))
    assert out.bars.num_rows == n
    sma = out.indicators.column("sma_20").to_pylist()
    assert sma[18] is None and math.isclose(sma[19], closes[:20].mean(), rel_tol=1e-12)
    assert out.indicators.column("vwap").null_count == n  # no volume: no VWAP
    key = ("symbol", "timeframe", "bar_start", "bar_end", "dataset")
    assert out.indicators.select(key).equals(out.bars.select(key))  # keyed alike
    assert set(out.bars.column("dataset").to_pylist()) == {"live"}


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
    assert sorted((b["symbol"], b["timeframe"]) for b in out.bars.to_pylist()) == [
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


DAY = 86_400 * S
YEAR_2030 = 1_893_456_000 * S


def test_a_far_future_trade_goes_to_the_dlq_as_future_and_the_stream_carries_on():
    """One bad time must not push the watermark ahead and turn the rest of the stream late."""
    settings = ProcessorSettings(intervals=("1s",), lateness=0)
    rows = [("SPY", T0 + i * S // 4, 100.0 + i, 10) for i in range(12)]
    clean = Processor(settings)
    expected = clean.process(batch_of(trades(rows))).bars.to_pylist()
    expected += clean.finish().bars.to_pylist()
    assert len(expected) == 3
    proc = Processor(settings)
    poisoned = rows[:5] + [("SPY", YEAR_2030, 167.41, 100)] + rows[5:]
    out = proc.process(batch_of(trades(poisoned, line=True), first=40))
    assert [(d.reason, d.offset, d.line, d.ts) for d in out.dead] == [("future", 45, 7, YEAR_2030)]
    assert out.dead[0].error == (
        "field ts: 2030-01-01T00:00:00Z is more than 1,209,600 s (max_time_jump) ahead of its "
        "partition's newest trade, 2013-10-07T13:30:01Z"
    )
    assert out.accepted == len(rows)
    assert out.bars.to_pylist() + proc.finish().bars.to_pylist() == expected


def test_max_time_jump_is_the_bound_and_zero_lifts_it():
    rows = [
        ("SPY", T0, 10.0, 1),
        ("SPY", T0 + 3 * DAY, 11.0, 1),
        ("SPY", T0 + 3 * DAY + S, 12.0, 1),
    ]
    for jump, reasons in ((86_400.0, ["future"]), (4 * 86_400.0, []), (0.0, [])):
        proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0, max_time_jump=jump))
        out = proc.process(batch_of(trades(rows)))
        assert [d.reason for d in out.dead] == reasons, jump
    with pytest.raises(ValueError, match="max_time_jump must not be negative"):
        ProcessorSettings(max_time_jump=-1.0)


def test_a_live_source_refuses_trades_and_bars_ahead_of_the_wall_clock():
    now = time.time_ns()
    hour = 3600 * S
    rows = [("SPY", now - S, 10.0, 1), ("SPY", now + hour, 11.0, 1)]
    live = Processor(ProcessorSettings(intervals=("1s",), lateness=0, wall_clock=True))
    out = live.process(batch_of(trades(rows)))
    assert [(d.reason, d.offset) for d in out.dead] == [("future", 1)]
    assert out.dead[0].error.endswith("is more than 300 s ahead of the wall clock")
    replayed = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    assert replayed.process(batch_of(trades(rows))).dead == []  # no wall clock: accepted
    bar = Bar("SPY", "1m", now + hour, now + hour + 60 * S, 10.0, 10.0, 10.0, 10.0, 5.0)
    out = live.process(Batch("ticks", 1, 0, 0, messages=[Message(b"SPY", encode(bar), 0)]))
    assert [d.reason for d in out.dead] == ["future"] and out.bars.num_rows == 0


def test_implausible_values_in_messages_go_to_the_dlq_and_nothing_infinite_is_stored():
    """The Kafka path: raw records, polled together, checked by the same validation."""
    values = [
        Trade("SPY", T0, 1e308, 100.0),
        Trade("SPY", T0 + 1, 1e-320, 100.0),
        Trade("SPY", T0 + 2, 167.4, 1e30),
        Trade("SPY", -2_208_988_800 * S, 167.4, 100.0),  # 1900
        Trade("SPY", T0 + 3, 167.4, 100.0),
        Trade("SPY", YEAR_2030, 167.4, 100.0),
        Trade("SPY", T0 + 4, 167.5, 100.0),
        Bar("SPY", "1m", T0, T0 + 60 * S, 167.0, 1e308, 167.0, 167.0, 5.0),
        Bar("SPY", "1m", T0, T0 + 60 * S, 167.0, 168.0, 166.0, 167.0, 5.0, vwap=1e300),
    ]
    messages = [Message(b"SPY", encode(v), 100 + i) for i, v in enumerate(values)]
    other = Trade("IBM", T0, 180.0, 1.0)
    batches = [Batch("ticks", 0, 100, 108, messages=messages),
               Batch("ticks", 1, 7, 7, messages=[Message(b"IBM", encode(other), 7)])]  # fmt: skip
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    outs = proc.process_each(batches)
    dead = sorted((d.offset, d.reason) for d in outs[0].dead)
    assert dead == [(100, "price"), (101, "price"), (102, "size"), (103, "time"),
                    (105, "future"), (107, "price"), (108, "price")]  # fmt: skip
    assert outs[0].accepted == 2 and outs[1].accepted == 1
    bars = pa.concat_tables([o.bars for o in outs] + [proc.finish().bars])
    for name in ("open", "high", "low", "close", "volume", "vwap"):
        column = bars.column(name).to_numpy(zero_copy_only=False)
        assert np.isfinite(column).all(), name
    spy = [b for b in bars.to_pylist() if b["symbol"] == "SPY"]
    assert [(b["high"], b["low"], b["volume"]) for b in spy] == [(167.5, 167.4, 200.0)]


def test_output_trades_are_the_input_trades_kept_late_ones_included_refused_ones_not():
    """What the embedded pipeline stores as ``trades``: the processor's own decision."""
    proc = Processor(ProcessorSettings(intervals=("1s",), lateness=0))
    first = trades([("SPY", T0, 10.0, 1), ("SPY", T0 + 2 * S, 11.0, 1)], line=True)
    second = trades(
        [
            ("SPY", T0 + 100, 12.0, 1),  # late: its bar closed
            ("SPY", T0 + 2 * S + 1, -1.0, 1),  # not a price
            ("SPY", YEAR_2030, 13.0, 1),  # too far ahead
            ("SPY", T0 + 3 * S, 14.0, 1),
        ],
        line=True,
    )
    (all_kept,) = proc.process(batch_of(first)).trades  # the batch itself, its dataset set
    assert all_kept.drop_columns(["dataset"]).equals(first.drop_columns(["dataset"]))
    assert all_kept.column("dataset").to_pylist() == ["live", "live"]
    out = proc.process(batch_of(second, first=2))
    assert sorted(d.reason for d in out.dead) == ["future", "late", "price"]
    kept = pa.Table.from_batches(out.trades)
    assert kept.column("price").to_pylist() == [12.0, 14.0]
    assert kept.column("line").to_pylist() == [2, 5]  # the input's columns, all of them
    assert proc.finish().trades == []


def test_output_trades_of_raw_messages_polled_together_are_each_partitions_kept_trades():
    values = [Trade("SPY", T0, 10.0, 1.0), Trade("SPY", YEAR_2030, 11.0, 1.0),
              Trade("SPY", T0 + S, 12.0, 1.0)]  # fmt: skip
    messages = [Message(b"SPY", encode(v), i) for i, v in enumerate(values)]
    ibm = [Message(b"IBM", encode(Trade("IBM", T0, 9.0, 1.0)), 0)]
    batches = [Batch("ticks", 0, 0, 2, messages=messages), Batch("ticks", 1, 0, 0, messages=ibm)]
    outs = Processor(ProcessorSettings(intervals=("1s",), lateness=0)).process_each(batches)
    assert [d.reason for d in outs[0].dead] == ["future"]
    kept = [pa.Table.from_batches(o.trades).column("price").to_pylist() for o in outs]
    assert kept == [[10.0, 12.0], [9.0]]


def test_every_output_carries_the_processor_s_dataset_and_alerts_the_bar_s_key():
    from marketpulse.alerts import PriceCrossRule
    from marketpulse.stream.output import alerts_table, dlq_table

    settings = ProcessorSettings(intervals=("1s",), lateness=0, dataset="lean-2013-10-07-trades")
    proc = Processor(settings, [PriceCrossRule(name="p100", level=100.0, cooldown=0)])
    rows = [("SPY", T0, 99.0, 1), ("SPY", T0 + S, 101.0, 1), ("SPY", T0 + 2 * S, -1.0, 1),
            ("SPY", T0 + 3 * S, 102.0, 1)]  # fmt: skip
    out = proc.process(batch_of(trades(rows)))
    out.extend(proc.finish())
    assert out.bars.num_rows == 3 and out.indicators.num_rows == 3
    for table in (out.bars, out.indicators, pa.Table.from_batches(out.trades)):
        assert set(table.column("dataset").to_pylist()) == {"lean-2013-10-07-trades"}
    assert out.indicators.column("bar_start").to_pylist() == [T0, T0 + S, T0 + 3 * S]
    assert out.indicators.column("bar_end").to_pylist() == [T0 + S, T0 + 2 * S, T0 + 4 * S]
    (alert,) = out.alerts  # 99 -> 101 crosses 100
    assert (alert.timeframe, alert.bar_start, alert.bar_end, alert.dataset) == (
        "1s", T0 + S, T0 + 2 * S, "lean-2013-10-07-trades"
    )  # fmt: skip
    assert alert.details == {"close": 101.0, "prev_close": 99.0, "level": 100.0}
    stored = alerts_table(out.alerts)
    assert stored.column("details").to_pylist() == [
        [("close", 101.0), ("prev_close", 99.0), ("level", 100.0)]
    ]
    assert stored.column("dataset").to_pylist() == ["lean-2013-10-07-trades"]
    dlq = dlq_table(out.dead, 0, settings.dataset)
    assert dlq.column("reason").to_pylist() == ["price"]
    assert dlq.column("dataset").to_pylist() == ["lean-2013-10-07-trades"]
    assert dlq.column("source_topic").to_pylist() == ["ticks"]
    assert dlq.column("source_offset").to_pylist() == [2]


def test_the_same_alert_of_two_datasets_has_two_ids():
    from marketpulse.alerts import PriceCrossRule

    rule = PriceCrossRule(name="p100", level=100.0, cooldown=0)
    rows = [("SPY", T0, 99.0, 1), ("SPY", T0 + S, 101.0, 1), ("SPY", T0 + 2 * S, 101.0, 1)]
    ids = []
    for dataset in ("simulator", "polygon"):
        settings = ProcessorSettings(intervals=("1s",), lateness=0, dataset=dataset)
        proc = Processor(settings, [rule])
        ids += [a.id for a in proc.process(batch_of(trades(rows))).alerts]
    assert len(ids) == 2 and ids[0] != ids[1]


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "a/b"])
def test_a_bad_dataset_name_is_refused(name):
    with pytest.raises(ValueError, match="dataset"):
        ProcessorSettings(dataset=name)
