"""Quotes per bar and order flow against an independent pandas reference.

The reference joins each trade to its quote with ``pd.merge_asof`` (the last
quote at or before the trade, per symbol), classifies it by Lee and Ready
(1991, "Inferring Trade Direction from Intraday Data", J. Finance 46(2),
733-746: quote rule, tick test at the mid and without a quote) and
time-weights the quotes over each bar by integrating their step function.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from marketpulse.bus.base import Batch
from marketpulse.feeds.simulator import Simulator
from marketpulse.models import BAR_QUOTE_COLUMNS, QUOTE_SCHEMA
from marketpulse.stream import quote_windows
from marketpulse.stream.processor import Processor, ProcessorSettings
from marketpulse.testing import trade_batch

S = 10**9
T0 = 1_700_000_000 * S  # a whole minute and second
SETTINGS = ProcessorSettings(intervals=("1s", "1m"), lateness=0.5, idle_timeout=None)


def _quotes(rows: list[tuple[str, int, float, float]]) -> pa.RecordBatch:
    symbol, ts, bid, ask = zip(*rows, strict=True) if rows else ((), (), (), ())
    return pa.RecordBatch.from_arrays(
        [pa.array(symbol, pa.string()), pa.array(ts, pa.int64()), pa.array(bid, pa.float64()),
         pa.array([100.0] * len(ts)), pa.array(ask, pa.float64()), pa.array([100.0] * len(ts)),
         pa.nulls(len(ts), pa.string())],
        schema=QUOTE_SCHEMA,
    )  # fmt: skip


def _run(
    parts: list[tuple[str, pa.RecordBatch]],
    cuts: np.random.Generator | None = None,
    restore_every: int = 0,
    settings: ProcessorSettings = SETTINGS,
) -> pd.DataFrame:
    """Bars (with the quote columns) of ``parts``, cut at random and restored from checkpoints."""
    processor = Processor(settings)
    records: dict[bytes, bytes] = {}
    bars, offset, step = [], 0, 0
    for kind, data in parts:
        pieces = [data]
        if cuts is not None and data.num_rows > 1:
            at = np.sort(cuts.choice(np.arange(1, data.num_rows), min(3, data.num_rows - 1), False))
            pieces = [
                data.slice(lo, hi - lo)
                for lo, hi in zip([0, *at], [*at, data.num_rows], strict=True)
            ]
        for piece in pieces:
            batch = Batch("ticks", 0, offset, offset + piece.num_rows - 1, kind=kind, columns=piece)
            offset += piece.num_rows
            out = processor.process(batch)
            bars.append(out.bars)
            records.update(processor.checkpoint("ticks", 0))
            step += 1
            if restore_every and step % restore_every == 0:
                processor = Processor(settings)
                processor.restore("ticks", 0, records)
    bars.append(processor.finish().bars)
    table = pa.concat_tables([b for b in bars if b.num_rows], promote_options="default")
    frame = table.to_pandas()
    return frame.sort_values(["symbol", "timeframe", "bar_start"]).reset_index(drop=True)


def _reference(parts: list[tuple[str, pa.RecordBatch]], bars: pd.DataFrame) -> pd.DataFrame:
    """The quote columns of ``bars`` computed from the definition, with pandas."""
    quotes = pd.concat([d.to_pandas() for k, d in parts if k == "quote"], ignore_index=True)
    trades = pd.concat([d.to_pandas() for k, d in parts if k == "trade"], ignore_index=True)
    trades["symbol"] = trades["symbol"].astype(str)
    trades["seq"] = np.arange(len(trades))
    quotes = quotes.sort_values("ts", kind="stable")
    joined = pd.merge_asof(
        trades.sort_values("ts", kind="stable"), quotes[["symbol", "ts", "bid", "ask"]],
        on="ts", by="symbol", allow_exact_matches=True,
    ).sort_values("seq")  # fmt: skip
    # tick test: sign of the last non-zero price change of the symbol's trades
    change = np.sign(joined.groupby("symbol")["price"].diff())
    tick = change.replace(0, np.nan).groupby(joined["symbol"]).ffill().fillna(0)
    mid = (joined["bid"] + joined["ask"]) / 2
    side = np.where(joined["price"] > mid, 1, np.where(joined["price"] < mid, -1, tick))
    joined["side"] = side
    expected = []
    by_symbol = {s: g for s, g in quotes.groupby("symbol")}
    for bar in bars.itertuples():
        b, e = int(bar.bar_start), int(bar.bar_end)
        inside = joined[(joined.symbol == bar.symbol) & (joined.ts >= b) & (joined.ts < e)]
        buy = inside.loc[inside.side > 0, "size"].sum()
        sell = inside.loc[inside.side < 0, "size"].sum()
        q = by_symbol.get(bar.symbol)
        spread = mid_twa = bid = ask = np.nan
        if q is not None:
            ts = q["ts"].to_numpy()
            ends = np.append(ts[1:], np.iinfo(np.int64).max)
            x0, x1 = np.maximum(ts, b), np.minimum(ends, e)
            w = np.clip(x1 - x0, 0, None).astype(float)
            if w.sum() > 0:
                spread = ((q["ask"] - q["bid"]).to_numpy() * w).sum() / w.sum()
                mid_twa = ((q["ask"] + q["bid"]).to_numpy() / 2 * w).sum() / w.sum()
            before = np.flatnonzero(ts < e)
            if len(before):
                bid, ask = q["bid"].iloc[before[-1]], q["ask"].iloc[before[-1]]
        total = buy + sell
        expected.append((spread, mid_twa, bid, ask, buy, sell,
                         (buy - sell) / total if total else np.nan))  # fmt: skip
    return pd.DataFrame(expected, columns=list(BAR_QUOTE_COLUMNS))


def _simulated(n: int = 3000) -> list[tuple[str, pa.RecordBatch]]:
    sim = Simulator(symbols=4, rate=40.0, seed=7, start_ts=T0, realtime=False, quotes=True,
                    batch_size=250, max_events=n, news_every=0)  # fmt: skip
    return [(b.kind, b.data) for b in sim.batches()]


def _check(bars: pd.DataFrame, parts: list[tuple[str, pa.RecordBatch]]) -> None:
    expected = _reference(parts, bars)
    for name in BAR_QUOTE_COLUMNS:
        np.testing.assert_allclose(
            bars[name].to_numpy(float), expected[name].to_numpy(float), rtol=1e-12, atol=1e-12,
            equal_nan=True, err_msg=name,
        )  # fmt: skip


def test_simulated_quotes_and_trades_match_the_pandas_reference() -> None:
    parts = _simulated()
    bars = _run(parts)
    assert len(bars) > 200 and bars["spread_twa"].notna().all()
    assert (bars["buy_volume"] > 0).any() and (bars["sell_volume"] > 0).any()
    _check(bars, parts)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_cuts_and_restores_give_the_same_bars(seed: int) -> None:
    parts = _simulated(1500)
    whole = _run(parts)
    cut = _run(parts, np.random.default_rng(seed), restore_every=seed + 1)
    pd.testing.assert_frame_equal(whole, cut)
    _check(cut, parts)


def test_session_windows_match_the_reference_across_cuts_and_restores() -> None:
    """Daily bars of the New York session (the simulator trades 09:30 on, virtual clock)."""
    settings = ProcessorSettings(intervals=("1m", "1d"), lateness=2.0, idle_timeout=None,
                                 session_calendar="XNYS")  # fmt: skip
    sim = Simulator(symbols=3, rate=2.0, seed=11, start_ts=1_704_205_800 * S, realtime=False,
                    quotes=True, batch_size=300, max_events=3000, news_every=0)  # fmt: skip
    parts = [(b.kind, b.data) for b in sim.batches()]  # 2024-01-02 from the open
    whole = _run(parts, settings=settings)
    assert set(whole.timeframe) == {"1m", "1d"}
    cut = _run(parts, np.random.default_rng(5), restore_every=3, settings=settings)
    pd.testing.assert_frame_equal(whole, cut)
    _check(cut, parts)


def test_worked_example_from_the_definition() -> None:
    """A bar worked by hand from Lee and Ready (1991), J. Finance 46(2), 733-746.

    Quotes of XYZ: 10.00/10.10 from t-0.5 s, 10.00/10.20 from t+0.25 s,
    10.10/10.20 from t+0.75 s. The 1 s bar [t, t+1): spread 0.10 for 0.25 s,
    0.20 for 0.5 s, 0.10 for 0.25 s: 0.15; mid 10.05, 10.10, 10.15: 10.10.
    Trades: 10.10 at t+0.1 (above the mid 10.05: buy, 100), 10.10 at t+0.5
    (the mid of 10.00/10.20: tick test, zero tick after no change yet... the
    price is unchanged from 10.10, whose last change is none: unclassified),
    10.05 at t+0.6 (below the mid 10.10: sell, 300), 10.15 at t+0.8 (the mid of
    10.10/10.20: tick test, uptick from 10.05: buy, 50). Buy 150, sell 300,
    imbalance (150 - 300) / 450 = -1/3; last bid/ask 10.10/10.20.
    """
    ms = 10**6
    parts = [
        ("quote", _quotes([("XYZ", T0 - 500 * ms, 10.00, 10.10)])),
        ("quote", _quotes([("XYZ", T0 + 250 * ms, 10.00, 10.20),
                           ("XYZ", T0 + 750 * ms, 10.10, 10.20)])),  # fmt: skip
        ("trade", trade_batch([("XYZ", T0 + 100 * ms, 10.10, 100.0),
                           ("XYZ", T0 + 500 * ms, 10.10, 200.0),
                           ("XYZ", T0 + 600 * ms, 10.05, 300.0),
                           ("XYZ", T0 + 800 * ms, 10.15, 50.0)])),
    ]  # fmt: skip
    bars = _run(parts)
    one = bars[bars.timeframe == "1s"].iloc[0]
    assert one.spread_twa == pytest.approx(0.15, rel=1e-12)
    assert one.mid_twa == pytest.approx(10.10, rel=1e-12)
    assert (one.last_bid, one.last_ask) == (10.10, 10.20)
    assert (one.buy_volume, one.sell_volume) == (150.0, 300.0)
    assert one.order_flow_imbalance == pytest.approx(-1 / 3, rel=1e-12)
    _check(bars, parts)


def test_a_symbol_without_quotes_is_classified_by_the_tick_test_alone() -> None:
    ms = 10**6
    parts = [
        ("quote", _quotes([("AAA", T0, 9.0, 9.2)])),
        ("trade", trade_batch([("BBB", T0 + 100 * ms, 5.0, 10.0), ("BBB", T0 + 200 * ms, 5.1, 20.0),
                           ("BBB", T0 + 300 * ms, 5.1, 30.0), ("BBB", T0 + 400 * ms, 5.0, 40.0),
                           ("AAA", T0 + 500 * ms, 9.1, 5.0)])),
    ]  # fmt: skip
    bars = _run(parts)
    b = bars[(bars.symbol == "BBB") & (bars.timeframe == "1s")].iloc[0]
    assert np.isnan(b.spread_twa) and np.isnan(b.last_bid)
    assert (b.buy_volume, b.sell_volume) == (50.0, 40.0)  # up, zero-up; down; first: none
    _check(bars, parts)


def test_old_state_without_quotes_restores() -> None:
    """State written before quotes (no quote fields) restores, and quotes then start afresh."""
    parts = _simulated(600)
    trades_only = [(k, d) for k, d in parts if k == "trade"]
    processor = Processor(SETTINGS)
    for i, (_, data) in enumerate(trades_only[:2]):
        processor.process(Batch("ticks", 0, i * 1000, i * 1000 + data.num_rows - 1, kind="trade",
                                columns=data))  # fmt: skip
    records = dict(processor.checkpoint("ticks", 0))
    again = Processor(SETTINGS)
    assert again.restore("ticks", 0, records) > 0
    assert again.state("ticks", 0).quotes is None


def test_quotes_beyond_the_pending_limit_are_applied_oldest_first(monkeypatch) -> None:
    """A partition with quotes and no trade keeps at most MAX_PENDING of them waiting.

    The second batch (ABC's quotes) pushes XYZ's out: XYZ's state changes without
    a quote of it in the batch, and its checkpoint record must say so.
    """
    monkeypatch.setattr(quote_windows, "MAX_PENDING", 10)
    ms = 10**6
    xyz = [("XYZ", T0 + i * 100 * ms, 10.0 + 0.01 * (i % 3), 10.1 + 0.01 * i) for i in range(12)]
    abc = [("ABC", T0 + i * 100 * ms, 5.0, 5.02 + 0.01 * (i % 2)) for i in range(12, 25)]
    trades = [("XYZ", T0 + 2600 * ms, 10.2, 5.0), ("ABC", T0 + 2700 * ms, 5.0, 3.0),
              ("XYZ", T0 + 4000 * ms, 10.0, 7.0)]  # fmt: skip
    parts = [("quote", _quotes(xyz)), ("quote", _quotes(abc)), ("trade", trade_batch(trades))]
    processor = Processor(SETTINGS)
    for i, (kind, data) in enumerate(parts[:2]):
        processor.process(Batch("ticks", 0, i, i, kind=kind, columns=data))
    state = processor.state("ticks", 0).quotes
    assert state is not None and len(state.pending_ts) == 10
    assert state.quote_ts[0] == T0 + 1100 * ms  # all of XYZ's are in force already
    records: dict[bytes, bytes] = {}
    fresh = Processor(SETTINGS)
    for i, (kind, data) in enumerate(parts[:2]):  # a checkpoint after each batch
        fresh.process(Batch("ticks", 0, i, i, kind=kind, columns=data))
        records.update(fresh.checkpoint("ticks", 0))
    again = Processor(SETTINGS)
    again.restore("ticks", 0, records)
    restored = again.state("ticks", 0).quotes
    assert restored is not None
    np.testing.assert_array_equal(restored.pending_ts, state.pending_ts)
    np.testing.assert_array_equal(restored.quote_ts[:2], state.quote_ts[:2])
    np.testing.assert_array_equal(restored.quote[:2], state.quote[:2])
    bars = _run(parts, restore_every=1)  # checkpoints carry what was applied
    assert set(bars.symbol) == {"XYZ", "ABC"} and bars["spread_twa"].notna().all()
    _check(bars, parts)


def test_one_symbol_keeps_at_most_its_limit_of_quotes_waiting(monkeypatch) -> None:
    """A symbol quoted without trades keeps MAX_PENDING_SYMBOL quotes waiting, the newest."""
    monkeypatch.setattr(quote_windows, "MAX_PENDING_SYMBOL", 5)
    ms = 10**6
    xyz = [("XYZ", T0 + i * 100 * ms, 10.0, 10.1 + 0.01 * i) for i in range(8)]
    abc = [("ABC", T0 + (8 + i) * 100 * ms, 5.0, 5.02) for i in range(3)]
    processor = Processor(SETTINGS)
    processor.process(Batch("ticks", 0, 0, 0, kind="quote", columns=_quotes(xyz + abc)))
    state = processor.state("ticks", 0).quotes
    assert state is not None
    assert sorted(state.pending_ts.tolist()) == [q[1] for q in xyz[3:] + abc]
    assert state.quote_ts[0] == xyz[2][1]  # XYZ's three oldest are in force, the last of them
    assert state.quote[0].tolist() == [10.0, 10.12]


def test_a_symbol_quoted_for_long_without_trades_still_fits_a_kafka_record() -> None:
    """Quotes before an open, with no trade to reach them: the state record stays < 1 MB."""
    n, ms = 100_000, 10**6
    quotes = [("XYZ", T0 + i * ms, 10.0, 10.01 + 0.01 * (i % 7)) for i in range(n)]
    processor = Processor(SETTINGS)
    for i in range(0, n, 10_000):
        processor.process(
            Batch("ticks", 0, i, i, kind="quote", columns=_quotes(quotes[i : i + 10_000]))
        )
    records = dict(processor.checkpoint("ticks", 0))
    assert len(records[b"XYZ"]) < 1_000_000
    assert len(processor.state("ticks", 0).quotes.pending_ts) == quote_windows.MAX_PENDING_SYMBOL


def test_no_bars_get_the_quote_columns_after_their_own_with_their_schemas_metadata():
    from marketpulse.stream.processor import _with_quotes_table

    columns = [("symbol", pa.string()), ("close", pa.float64())]
    tagged = pa.schema(columns, metadata={b"k": b"1"})
    for schema in (tagged, pa.schema(columns), tagged):  # equal schemas, but the metadata
        got = _with_quotes_table(schema.empty_table(), None)
        assert got.num_rows == 0
        assert got.column_names == ["symbol", "close", *BAR_QUOTE_COLUMNS]
        assert all(got.schema.field(name).type == pa.float64() for name in BAR_QUOTE_COLUMNS)
        assert got.schema.metadata == schema.metadata
