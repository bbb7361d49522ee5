"""Labelled anomalies injected into the simulator: each does what its label says."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.feeds import Simulator
from marketpulse.feeds.anomalies import KINDS, Anomaly, draw_anomalies, write_labels

T0 = 1_700_000_000 * 10**9
S = 10**9


def _trades(anomalies=(), seed=3) -> pa.Table:
    sim = Simulator(symbols=5, rate=200, seed=seed, start_ts=T0, realtime=False,
                    max_events=120_000, news_every=0, anomalies=anomalies)  # fmt: skip
    return pa.Table.from_batches([b.data for b in sim.batches() if b.kind == "trade"])


def _of(table: pa.Table, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mine = table.filter(pa.compute.equal(table["symbol"].cast(pa.string()), symbol))
    return (mine["ts"].to_numpy(), mine["price"].to_numpy(), mine["size"].to_numpy())


@pytest.fixture(scope="module")
def plain() -> pa.Table:
    return _trades()


def test_a_stale_period_removes_that_symbols_trades_and_nothing_else(plain):
    gap = Anomaly("AAPL", T0 + 100 * S, T0 + 200 * S, "stale", 0.0)
    table = _trades([gap])
    ts, _, _ = _of(table, "AAPL")
    before, _, _ = _of(plain, "AAPL")
    assert not ((ts >= gap.start) & (ts < gap.end)).any()
    assert ((before >= gap.start) & (before < gap.end)).sum() > 100
    assert np.array_equal(ts, before[(before < gap.start) | (before >= gap.end)])
    others = pa.compute.not_equal(plain["symbol"].cast(pa.string()), "AAPL")
    kept = pa.compute.not_equal(table["symbol"].cast(pa.string()), "AAPL")
    assert plain.filter(others).equals(table.filter(kept))


def test_a_jump_moves_the_price_from_its_time_on(plain):
    jump = Anomaly("QQQ", T0 + 150 * S, T0 + 150 * S, "jump", 0.05)
    ts, price, _ = _of(_trades([jump]), "QQQ")
    ts0, price0, _ = _of(plain, "QQQ")
    assert np.array_equal(ts, ts0)
    ratio = np.log(price / price0)
    assert np.abs(ratio[ts < jump.start]).max() < 1e-3
    assert np.abs(ratio[ts >= jump.start] - 0.05).max() < 1e-3  # rounding to the cent only


def test_a_volume_burst_multiplies_sizes_within_its_span(plain):
    burst = Anomaly("SPY", T0 + 100 * S, T0 + 160 * S, "volume", 20.0)
    ts, _, size = _of(_trades([burst]), "SPY")
    _, _, size0 = _of(plain, "SPY")
    inside = (ts >= burst.start) & (ts < burst.end)
    assert np.array_equal(size[inside], np.rint(size0[inside] * 20.0))
    assert np.array_equal(size[~inside], size0[~inside])


def test_drawn_anomalies_are_apart_and_written_as_labels(tmp_path):
    tickers = ["A", "B", "C", "D"]
    found = draw_anomalies(tickers, T0, T0 + 6 * 3600 * S, per_kind=3, seed=1)
    assert sorted({a.kind for a in found}) == sorted(KINDS) and len(found) == 15
    for symbol in tickers:
        starts = sorted(a.start for a in found if a.symbol == symbol)
        assert all(b - a >= 1800 * S for a, b in zip(starts, starts[1:], strict=False))
    write_labels(found, tmp_path / "labels.csv")
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    assert lines[0] == "symbol,start,end,kind,size" and len(lines) == 16
    with pytest.raises(ValueError, match="unknown anomaly kind 'x'"):
        draw_anomalies(tickers, T0, T0 + 6 * 3600 * S, per_kind=1, kinds=["x"])
    with pytest.raises(ValueError, match="not simulated: ZZZ"):
        Simulator(symbols=3, anomalies=[Anomaly("ZZZ", T0, T0, "jump", 0.1)])
