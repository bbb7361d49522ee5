import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketpulse.feeds import Simulator
from marketpulse.feeds.universe import REFERENCE, REFERENCE_DATE, universe
from marketpulse.models import QUOTE_SCHEMA, TRADE_SCHEMA

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
    assert data.column("dataset").null_count == len(data)  # stamped where stored
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


def test_realtime_follows_the_wall_clock():  # the default clock
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


class FakeClock:
    """A simulated clock: sleeping moves it on (by the time asked, plus an oversleep)."""

    def __init__(self, start, oversleep=0.0):
        self.now, self.oversleep, self.slept = start, oversleep, 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.slept += 1
        self.now += round((seconds + self.oversleep) * 1e9)


@pytest.mark.parametrize("oversleep", [0.0, 0.004, 0.03])
def test_realtime_delivers_the_announced_rate_whatever_the_wake_ups(oversleep):
    # every wake-up comes late (as sleeps do under load): the schedule has no drift
    clock = FakeClock(START + 7 * 3600 * 10**9, oversleep)  # a quiet time of the session
    feed = Simulator(rate=5000, realtime=True, clock=clock, sleep=clock.sleep)
    delivered, stamps = 0, []
    for batch in feed.batches():
        ts = batch.data.column("ts").to_numpy()
        assert (ts <= clock.now).all()  # nothing before its time
        stamps.append(ts)
        delivered += len(ts)
        if clock.now >= START + 7 * 3600 * 10**9 + 60 * 10**9:
            break
    elapsed = (clock.now - (START + 7 * 3600 * 10**9)) / 1e9
    assert clock.slept > 1000  # the run went through many simulated wake-ups
    assert delivered / elapsed == pytest.approx(5000, rel=0.02)
    ts = np.concatenate(stamps)
    assert (np.diff(ts) >= 0).all()


@pytest.mark.parametrize("delivery_s", [0.025, 0.002])
def test_realtime_delivers_on_the_grid_it_is_given(delivery_s):
    # each delivery holds the trades due since the last one: none waits longer than a step
    origin = START + 7 * 3600 * 10**9
    clock = FakeClock(origin)
    feed = Simulator(rate=5000, realtime=True, clock=clock, sleep=clock.sleep,
                     delivery_s=delivery_s)  # fmt: skip
    waits = []
    for batch in feed.batches():
        waits.append(clock.now - batch.data.column("ts").to_numpy())
        if clock.now >= origin + 2 * 10**9:
            break
    waits = np.concatenate(waits) / 1e9
    assert clock.slept == pytest.approx(2 / delivery_s, abs=2)
    assert waits.min() >= 0 and waits.max() <= delivery_s
    assert waits.mean() == pytest.approx(delivery_s / 2, rel=0.2)


def test_a_delivery_grid_must_be_positive():
    with pytest.raises(ValueError, match="delivery_s"):
        Simulator(realtime=True, delivery_s=0)


def test_realtime_skips_what_a_long_stall_missed():
    clock = FakeClock(START)
    feed = Simulator(rate=1000, realtime=True, clock=clock, sleep=clock.sleep)
    batches = feed.batches()
    next(batches)
    clock.now += 300 * 10**9  # the consumer stalls for 5 minutes
    caught_up = 0
    for batch in batches:
        caught_up += batch.data.num_rows
        if batch.data.column("ts").to_numpy()[-1] >= clock.now - 10**6:
            break
    assert caught_up == pytest.approx(60 * 1000, rel=0.05)  # the last minute only


def test_reference_levels_do_not_depend_on_the_seed_or_the_symbol_count():
    for seed, symbols in [(0, 50), (1, 30), (99, 120)]:
        data = run(seed=seed, symbols=symbols, max_events=20_000, news_every=0)
        names, prices = data.column("symbol").to_pylist(), data.column("price").to_pylist()
        first = {}
        for name, price in zip(names, prices, strict=True):
            first.setdefault(name, price)
        for name in ("KO", "AAPL", "SPY", "F"):
            assert first[name] == pytest.approx(REFERENCE[name][1], rel=0.005)
    assert universe(120).tickers[:50] == universe(50).tickers
    assert universe(120).price[:90].tolist() == universe(90).price.tolist()


def test_the_universe_is_documented_data():
    assert REFERENCE_DATE == "2024-12-31"
    u = universe(len(REFERENCE) + 10)
    assert u.tickers[: len(REFERENCE)] == list(REFERENCE)
    total = np.sqrt(u.beta**2 * 0.13**2 + u.loading**2 * 0.10**2 + u.idio_vol**2)
    assert total == pytest.approx(u.vol, rel=1e-9)
    listed = np.array([REFERENCE[name][2] for name in REFERENCE])
    assert u.vol[: len(REFERENCE)] == pytest.approx(listed, abs=0.002)  # SPY: +0.0015
    assert (u.price > 0).all() and len(set(u.tickers)) == len(u.tickers)


def rows_of(data, symbol):
    """A mask of ``data``'s rows of ``symbol`` (numpy's string arrays took 20 s for 1.5M rows)."""
    return pc.equal(data.column("symbol"), symbol).to_numpy()


def one_minute_returns(data):
    """Log returns of each symbol's last price per minute, by symbol: (returns, minutes)."""
    minute = data.column("ts").to_numpy() // (60 * 10**9)
    price = data.column("price").to_numpy()
    out = {}
    for name in ("AAPL", "MSFT", "KO", "NVDA", "JPM", "BAC"):
        mine = rows_of(data, name)
        m, p = minute[mine], price[mine]
        last = np.r_[m[1:] != m[:-1], True]  # the last trade of each minute
        out[name] = np.diff(np.log(p[last])), m[last][1:]
    return out


def test_symbols_co_move_through_market_and_sector_factors():
    data = run(rate=100, symbols=30, intraday=False, news_every=0, max_events=1_500_000, seed=4)
    returns = one_minute_returns(data)

    def corr(a, b):
        (ra, ma), (rb, mb) = returns[a], returns[b]
        common, ia, ib = np.intersect1d(ma, mb, return_indices=True)
        return np.corrcoef(ra[ia], rb[ib])[0, 1]

    model = universe(30).correlation()
    index = universe(30).tickers.index
    for a, b in [("AAPL", "MSFT"), ("JPM", "BAC"), ("KO", "NVDA")]:
        assert corr(a, b) == pytest.approx(model[index(a), index(b)], abs=0.12)
    assert corr("AAPL", "MSFT") > corr("KO", "NVDA") + 0.2  # same sector co-moves more


def test_quotes_beside_trades():
    feed = Simulator(realtime=False, start_ts=START, max_events=40_000, quotes=True, seed=2)
    batches = list(feed.batches())
    quotes = [b for b in batches if b.kind == "quote"]
    trades = [b for b in batches if b.kind == "trade"]
    assert len(quotes) == len(trades) and all(q.data.schema == QUOTE_SCHEMA for q in quotes)
    q = pa.Table.from_batches([b.data for b in quotes])
    t = pa.Table.from_batches([b.data for b in trades])
    bid, ask = q.column("bid").to_numpy(), q.column("ask").to_numpy()
    mid = (bid + ask) / 2
    assert (ask > bid).all()
    assert np.median((ask - bid) / mid * 1e4) < 10  # a few basis points
    assert (q.column("bid_size").to_numpy() >= 100).all()
    price = t.column("price").to_numpy()
    assert (np.isclose(price, bid) | np.isclose(price, ask)).all()  # buyers lift, sellers hit
    assert q.column("symbol").to_pylist() == t.column("symbol").to_pylist()
    assert sum(b.data.num_rows for b in trades) == 40_000  # max_events counts trades


def test_news_gaps_the_price_and_comes_often_enough():
    options = {"rate": 5000, "max_events": 5000 * 120, "seed": 5, "intraday": False}
    feed = Simulator(realtime=False, start_ts=START, **options)
    data = pa.Table.from_batches([b.data for b in feed.batches()])  # two minutes
    times = np.array([at for at, _, _ in feed.news])
    bound = 1.6 * 10 * 10**9  # one news item in the market every 10 s on average
    assert len(times) >= 6 and np.diff(np.r_[START, times]).max() <= bound
    assert not {feed.tickers[target] for _, target, _ in feed.news} & {"SPY", "QQQ"}
    ts = data.column("ts").to_numpy()
    price = data.column("price").to_numpy()
    for at, target, gap in feed.news:
        mine = rows_of(data, feed.tickers[target])
        before = price[mine & (ts < at) & (ts >= at - 2 * 10**9)]
        after = price[mine & (ts >= at) & (ts < at + 2 * 10**9)]
        if len(before) and len(after):
            assert np.log(after.mean() / before.mean()) == pytest.approx(gap, abs=0.004)
