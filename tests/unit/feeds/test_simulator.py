import time

import numpy as np
import pyarrow as pa
import pytest

from marketpulse.feeds import Simulator
from marketpulse.models import TRADE_SCHEMA

START = 1381152600 * 10**9  # 2013-10-07 09:30 New York
SESSION_NS = 23_400 * 10**9


def run(**options):
    options = {"realtime": False, "start_ts": START, **options}
    return pa.Table.from_batches([b.data for b in Simulator(**options).batches()])


def test_batches_follow_the_trade_schema():
    feed = Simulator(realtime=False, start_ts=START, max_events=50_000, batch_size=8192)
    batches = list(feed.batches())
    assert feed.name == "simulator"
    assert all(b.kind == "trade" and b.data.schema == TRADE_SCHEMA for b in batches)
    assert all(b.data.num_rows <= 8192 for b in batches)
    assert sum(b.data.num_rows for b in batches) == 50_000
    assert [b.done for b in batches][-1] == 50_000 and batches[-1].total == 50_000


def test_same_seed_same_stream():
    first = run(seed=7, max_events=30_000)
    assert first.equals(run(seed=7, max_events=30_000))
    feed = Simulator(seed=7, realtime=False, start_ts=START, max_events=30_000)
    for _ in range(2):  # each replay starts over
        assert first.equals(pa.Table.from_batches([b.data for b in feed.batches()]))
    other = run(seed=8, max_events=30_000)
    assert not first.column("price").equals(other.column("price"))
    assert not first.column("ts").equals(other.column("ts"))


def test_values_are_sane():
    data = run(seed=3, max_events=200_000)
    ts = data.column("ts").to_numpy()
    assert ts[0] >= START and (np.diff(ts) >= 0).all()
    price = data.column("price").to_numpy()
    assert np.isfinite(price).all() and (price > 0).all()
    size = data.column("size").to_numpy()
    assert (size >= 1).all() and (size == np.round(size)).all()
    assert (size % 100 == 0).mean() > 0.5  # mostly round lots
    assert set(data.column("condition").unique().to_pylist()) == {None, "I", "F"}
    assert all(len(v) == 1 for v in data.column("exchange").unique().to_pylist())


@pytest.mark.parametrize("count", [1, 50, 120])
def test_number_of_symbols(count):
    feed = Simulator(symbols=count, realtime=False, start_ts=START, max_events=20_000)
    assert len(set(feed.tickers)) == count
    assert all(t.isalpha() and t.isupper() and 1 <= len(t) <= 5 for t in feed.tickers)
    data = pa.Table.from_batches([b.data for b in feed.batches()])
    seen = set(data.column("symbol").to_pylist())
    assert seen <= set(feed.tickers) and len(seen) >= min(count, 40)


def test_rate_in_virtual_time_flat():
    ts = run(rate=5000, intraday=False, max_events=200_000).column("ts").to_numpy()
    mean_gap_s = (ts[-1] - START) / len(ts) / 1e9
    assert mean_gap_s == pytest.approx(1 / 5000, rel=0.05)


def test_rate_over_a_session_and_its_u_shape():
    rate = 20.0
    ts = run(rate=rate, max_events=int(rate * 23_400 * 1.2)).column("ts").to_numpy()
    in_session = np.count_nonzero(ts < START + SESSION_NS)
    assert in_session == pytest.approx(rate * 23_400, rel=0.05)
    half_hour = 1800 * 10**9
    opening = np.count_nonzero(ts < START + half_hour)
    lunch = np.count_nonzero((ts >= START + 3 * half_hour) & (ts < START + 4 * half_hour))
    closing = np.count_nonzero((ts >= START + SESSION_NS - half_hour) & (ts < START + SESSION_NS))
    assert opening > 1.5 * lunch and closing > 1.2 * lunch


def test_symbols_burst():
    data = run(rate=50, intraday=False, max_events=50 * 7200)
    minute = (data.column("ts").to_numpy() - START) // (60 * 10**9)
    symbol = data.column("symbol").combine_chunks().indices.to_numpy()
    counts = np.zeros((minute.max() + 1, symbol.max() + 1))
    np.add.at(counts, (minute, symbol), 1)
    share = counts / counts.sum(axis=1, keepdims=True)
    overall = counts.sum(axis=0) / counts.sum()
    assert (share / overall).max() > 5  # some symbol traded 5x its usual pace for a minute


def test_realtime_follows_the_wall_clock():
    before = time.time_ns()
    batches = list(Simulator(rate=20_000, max_events=500).batches())
    after = time.time_ns()
    ts = np.concatenate([b.data.column("ts").to_numpy() for b in batches])
    assert len(ts) == 500 and (np.diff(ts) >= 0).all()
    assert before <= ts[0] and ts[-1] <= after


def test_close_stops_the_stream():
    feed = Simulator(realtime=False, start_ts=START, batch_size=1000)
    count = 0
    for _ in feed.batches():
        count += 1
        if count == 3:
            feed.close()
    assert count == 3
