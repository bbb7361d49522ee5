"""A synthetic trade (and quote) feed with the texture of a US equity tape.

Symbols are real tickers at their levels of a stated date, with their sectors
and volatilities (:mod:`marketpulse.feeds.universe`): the first 50 are SPY,
QQQ, AAPL, TSLA, NVDA, ... and KO starts near 62.26 whatever the seed or the
number of symbols. Log prices follow a factor model in continuous time: a
market factor, one factor per sector and an idiosyncratic part, each a
Brownian motion sampled at the symbol's trades, so symbols co-move (AAPL with
MSFT more than with KO). Every symbol has a bid and an ask a few basis points
apart around its price; buyers trade at the ask, sellers at the bid, on the
exchange's price grid.

News now and then: a company's price gaps by about a day's volatility (0.8 %
to 3 %) and it trades many times faster for a while. News items reach the
market at bounded intervals (0.4 to 1.6 times their mean gap apart, index funds
get none): by default one about every 10 s (4 to 16 s apart) whatever the number
of symbols, so a run of half a minute sees some with 20 symbols as with 50: a
lively market, livelier than most real days. Symbols also burst without news
(trading many times faster for a while).

Activity: in real time (``realtime=True``) the stream delivers ``rate`` trades
a second on average, on a schedule of absolute deadlines (no drift however
late a wake-up is). On the virtual clock (``realtime=False``) activity follows
a U-shaped intraday curve (busy open, quiet lunch, busy close) that repeats
every 6.5 h session from 09:30 New York, and the mean over a session is
``rate``. Trade sizes mix odd lots, round lots and the occasional block.

Everything is drawn with numpy, one batch at a time, from generators seeded
by ``seed``: with ``realtime=False`` a seed and ``start_ts`` fix the whole stream.

Labelled anomalies (``anomalies=``, :mod:`marketpulse.feeds.anomalies`) are
injected on top: price jumps, volume bursts, stale periods, halts that reopen
with a gap, spells of high volatility; without them the stream is unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from marketpulse.feeds.anomalies import Anomaly
from marketpulse.feeds.base import FeedBatch
from marketpulse.feeds.universe import MARKET_VOL, SECTOR_VOL, SECTORS, universe
from marketpulse.models import NS_PER_S, QUOTE_SCHEMA, TRADE_SCHEMA

__all__ = ["Simulator"]

logger = logging.getLogger(__name__)

#: Venue codes (FINRA TRF, Nasdaq, NYSE Arca, NYSE, Cboe BZX/BYX/EDGX/EDGA, IEX, ...)
#: with rough shares of consolidated volume.
_VENUES = ("D", "Q", "P", "N", "Z", "K", "Y", "J", "V", "B", "X", "A", "M")
_VENUE_SHARE = np.array([34, 16, 10, 9, 7, 7, 3, 3, 3, 2, 2, 2, 2]) / 100
_VENUE_NAMES = pa.array(_VENUES)
_CONDITIONS = pa.array(["I", "F"])  # odd lot; intermarket sweep

_SESSION_NS = 23_400 * NS_PER_S  # 09:30-16:00
_SECONDS_PER_YEAR = 252 * 23_400.0
_TRADING_DAYS = 252
_BURSTS_PER_S = 1 / 1_800  # per symbol, without news
_BURST_SECONDS = 30.0
_NEWS_MIN, _NEWS_MAX = 0.008, 0.03  # size of a news gap in log price
# Default mean gap between two news items in the whole market, whatever its size: a
# per-company pace left a small market silent (20 symbols: one item every 31 s, the
# first after 46 s with seed 0), and a first run of half a minute raised no alert.
_MARKET_NEWS_S = 10.0
_TICK_S = 0.025  # realtime: one batch every 25 ms by default (``delivery_s``)
_MAX_LAG_NS = 60 * NS_PER_S  # realtime: a consumer stalled longer loses the excess

# Intraday activity over the session, mean 1, and its cumulative share M(phase).
_PHASE = np.linspace(0.0, 1.0, 4097)
_ACTIVITY = 1 + 2.0 * np.exp(-_PHASE / 0.05) + 1.0 * np.exp(-(1 - _PHASE) / 0.07)
_CUMULATIVE = np.concatenate(([0.0], np.cumsum((_ACTIVITY[1:] + _ACTIVITY[:-1]) / 2)))
_ACTIVITY = _ACTIVITY / _CUMULATIVE[-1] * (len(_PHASE) - 1)
_CUMULATIVE /= _CUMULATIVE[-1]


def _session_open(ts: int) -> int:
    """Return 09:30 New York on the UTC date of ``ts``, in ns."""
    day = dt.datetime.fromtimestamp(ts // NS_PER_S, dt.UTC).date()
    try:
        tz: dt.tzinfo = ZoneInfo("America/New_York")
    except ZoneInfoNotFoundError:  # no time zone database: Eastern Standard Time
        tz = dt.timezone(dt.timedelta(hours=-5))
    return int(dt.datetime(day.year, day.month, day.day, 9, 30, tzinfo=tz).timestamp()) * NS_PER_S


class _Walks:
    """Independent Brownian motions, one per group, sampled at events' times."""

    def __init__(self, groups: int, vol_per_s: np.ndarray, start: int) -> None:
        self.level = np.zeros(groups)
        self.last = np.full(groups, start, dtype=np.int64)
        self.vol = vol_per_s

    def at(self, group: np.ndarray | None, ts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return each walk's value at each event (``ts`` ascending), advancing the walks.

        ``group=None``: every event reads walk 0 (one walk, no sorting).
        """
        n = len(ts)
        if group is None:
            gap_s = np.diff(ts, prepend=self.last[0]) / NS_PER_S
            value = self.level[0] + np.cumsum(self.vol[0] * np.sqrt(gap_s) * rng.standard_normal(n))
            self.level[0], self.last[0] = value[-1], ts[-1]
            return value
        order = np.argsort(group, kind="stable")  # by group, in time within a group
        g, t = group[order], ts[order]
        starts = np.empty(n, dtype=bool)
        starts[0], starts[1:] = True, g[1:] != g[:-1]
        first = np.flatnonzero(starts)
        last = np.append(first[1:], n) - 1
        previous = np.empty_like(t)
        previous[1:] = t[:-1]
        previous[first] = self.last[g[first]]
        gap_s = np.maximum(t - previous, 0) / NS_PER_S
        step = self.vol[g] * np.sqrt(gap_s) * rng.standard_normal(n)
        path = np.cumsum(step)
        path -= np.repeat(path[first] - step[first], last - first + 1)
        value = self.level[g] + path
        self.level[g[last]] = value[last]
        self.last[g[last]] = t[last]
        out = np.empty(n)
        out[order] = value
        return out


class Simulator:
    """An endless (or ``max_events`` long) stream of synthetic trades, and quotes.

    Args:
        symbols: how many symbols trade (the reference universe first).
        rate: mean trades per second, all symbols together.
        seed: seed of the random generators (not of the symbols or their levels).
        start_ts: time of the first event (UTC ns). Default: now when
            ``realtime``, else today's 09:30 New York open.
        realtime: pace the stream to ``clock``, stamping events with their
            scheduled times; ``False`` runs a virtual clock from ``start_ts``
            as fast as possible.
        batch_size: most events per batch.
        max_events: stop after this many trades (``None``: never stop).
        intraday: shape activity over the session (default: on the virtual
            clock only, so a real-time run delivers ``rate`` from its start).
        quotes: also yield the bid and ask in force at each trade, as
            ``"quote"`` batches (``models.QUOTE_SCHEMA``) before the trades.
        news_every: mean seconds between two news items of one company
            (index funds get none; ``0``: no news at all). Default: the
            whole market hears one every 10 s on average, whatever its size.
        clock: real-time clock, UTC ns (tests pass a simulated one).
        sleep: how to wait that many seconds (tests pass one that moves ``clock``).
        anomalies: labelled anomalies to inject (see :mod:`marketpulse.feeds.anomalies`);
            their symbols must be among the simulated ones.
        delivery_s: real time: the seconds between two deliveries (the grid the
            arrivals due go out on). A trade waits up to this long after its
            stamp before it is delivered; a finer grid costs CPU per delivery
            (the pipeline handles each as a batch).
    """

    name = "simulator"

    def __init__(
        self,
        symbols: int = 50,
        rate: float = 5000.0,
        seed: int = 0,
        start_ts: int | None = None,
        realtime: bool = True,
        batch_size: int = 16384,
        max_events: int | None = None,
        intraday: bool | None = None,
        quotes: bool = False,
        news_every: float | None = None,
        clock: Callable[[], int] = time.time_ns,
        sleep: Callable[[float], None] = time.sleep,
        anomalies: Sequence[Anomaly] = (),
        delivery_s: float = _TICK_S,
    ) -> None:
        if (
            symbols < 1
            or rate <= 0
            or batch_size < 1
            or not delivery_s > 0
            or (news_every is not None and news_every < 0)
        ):
            raise ValueError(
                "symbols, rate, batch_size and delivery_s must be positive, news_every >= 0"
            )
        self.delivery_s = delivery_s
        self.rate, self.realtime = float(rate), realtime
        self.intraday = (not realtime) if intraday is None else intraday
        self.batch_size, self.max_events = batch_size, max_events
        self.start_ts, self.seed, self.quotes = start_ts, seed, quotes
        self.news_every = news_every
        self._clock, self._sleep = clock, sleep
        self.universe = universe(symbols)
        self.tickers = self.universe.tickers
        self._dictionary = pa.array(self.tickers, pa.string())
        weight = (np.arange(symbols) + 1.0) ** -0.7
        self._weight = weight / weight.sum()
        self._log_ref = np.log(self.universe.price)
        # spread in basis points: tighter for the busier symbols
        self._spread = (1.0 + 3.0 * np.arange(symbols) / max(symbols - 1, 1)) * 1e-4
        self._closed = False
        #: news items of the last run: (ts, symbol index, log-price gap)
        self.news: list[tuple[int, int, float]] = []
        index = {t: i for i, t in enumerate(self.tickers)}
        unknown = sorted({a.symbol for a in anomalies} - set(index))
        if unknown:
            raise ValueError(f"anomalies on symbols not simulated: {', '.join(unknown)}")
        #: the labelled anomalies injected
        self.anomalies = tuple(anomalies)
        self._injected = [(index[a.symbol], a) for a in self.anomalies]
        self._reset(0)

    def _reset(self, start: int) -> None:
        """Draw the starting state afresh from the seed."""
        n = len(self.tickers)
        self._rng = np.random.default_rng(self.seed)
        self._news_rng = np.random.default_rng([self.seed, 1])
        per_s = np.sqrt(_SECONDS_PER_YEAR)
        self._market = _Walks(1, np.array([MARKET_VOL / per_s]), start)
        self._sectors = _Walks(len(SECTORS), np.full(len(SECTORS), SECTOR_VOL / per_s), start)
        self._idio = _Walks(n, self.universe.idio_vol / per_s, start)
        self._jump = np.zeros(n)
        self._burst_until = np.zeros(n, dtype=np.int64)
        self._burst_speed = np.ones(n)
        self._clock_ts = start
        candidates = np.flatnonzero(~self.universe.index_fund)
        self._news_targets = candidates if len(candidates) else np.arange(n)
        if self.news_every is None:
            self._news_gap_s = _MARKET_NEWS_S
        else:
            self._news_gap_s = self.news_every / len(self._news_targets) if self.news_every else 0.0
        self._next_news = start + self._news_gap()
        self.news = []
        self._applied = 0  # news items already in ``_jump``
        self._noise_rng = np.random.default_rng([self.seed, 2])
        self._moved: set[int] = set()  # injected jumps and halts already in ``_jump``

    def _news_gap(self) -> int:
        if not self._news_gap_s:
            return 2**62
        return int(self._news_rng.uniform(0.4, 1.6) * self._news_gap_s * NS_PER_S)

    def __repr__(self) -> str:
        return f"Simulator(symbols={len(self.tickers)}, rate={self.rate}, realtime={self.realtime})"

    def close(self) -> None:
        """Stop the stream at the next batch."""
        self._closed = True

    def batches(self) -> Iterator[FeedBatch]:
        """Yield batches of trades (``models.TRADE_SCHEMA``), and quotes, until closed.

        Each replay starts over from the seed. The ``dataset`` column is null:
        the pipeline stamps the run's dataset where it stores rows.
        """
        self._closed = False
        if self.realtime:
            start = self.start_ts if self.start_ts is not None else self._clock()
        else:
            start = self.start_ts if self.start_ts is not None else _session_open(time.time_ns())
        self._reset(start)
        self._open_ns = _session_open(start)
        stamps = self._realtime_stamps(start) if self.realtime else self._virtual_stamps(start)
        done = 0
        for ts in stamps:
            if self._closed:
                return
            if self.max_events is not None:
                ts = ts[: self.max_events - done]
            if len(ts):
                done += len(ts)
                trades, quotes = self._events(ts)
                if quotes is not None:
                    yield FeedBatch("quote", quotes, done=done, total=self.max_events)
                yield FeedBatch("trade", trades, done=done, total=self.max_events)
            if self.max_events is not None and done >= self.max_events:
                return

    def _virtual_stamps(self, start: int) -> Iterator[np.ndarray]:
        """Poisson arrivals at ``rate``, on operational time warped by the intraday curve."""
        rng, mean_gap_ns = self._rng, NS_PER_S / self.rate
        cycle = start
        phase0 = 0.0
        if self.intraday:
            phase0 = ((start - self._open_ns) % _SESSION_NS) / _SESSION_NS
            cycle = start - int(phase0 * _SESSION_NS)
        op = int(round(float(np.interp(phase0, _PHASE, _CUMULATIVE)) * _SESSION_NS))
        last = start
        while True:
            gaps = np.rint(rng.exponential(mean_gap_ns, self.batch_size)).astype(np.int64)
            ops = op + np.cumsum(gaps)
            op = int(ops[-1])
            if self.intraday:
                cycles, rest = np.divmod(ops, _SESSION_NS)
                phase = np.interp(rest / _SESSION_NS, _CUMULATIVE, _PHASE)
                ts = cycle + cycles * _SESSION_NS + np.rint(phase * _SESSION_NS).astype(np.int64)
            else:
                ts = cycle + ops  # flat activity: operational time is real time
            ts = np.maximum.accumulate(np.maximum(ts, last))
            last = int(ts[-1])
            yield ts

    def _realtime_stamps(self, start: int) -> Iterator[np.ndarray]:
        """Poisson arrivals at ``rate`` on ``clock``, let through when their time has come.

        Arrival times are drawn ahead (a schedule); every ``delivery_s`` of an
        absolute grid the arrivals due by then go out, stamped with their
        scheduled times. A late wake-up delivers more at once, never fewer in
        all: after ``T`` seconds about ``rate * T`` trades have gone out. A
        consumer stalled for more than ``_MAX_LAG_NS`` loses the excess.
        """
        arrivals = self._virtual_stamps(start)
        pending = np.empty(0, dtype=np.int64)
        drawn = start  # arrivals are drawn up to this time
        tick, beat = int(self.delivery_s * NS_PER_S), start
        while True:
            now = self._clock()
            if drawn < now - _MAX_LAG_NS:  # a long stall: draw from the lag's limit on
                arrivals = self._virtual_stamps(now - _MAX_LAG_NS)
                pending, drawn = pending[:0], now - _MAX_LAG_NS
            while drawn <= now:
                chunk = next(arrivals)
                pending, drawn = np.concatenate((pending, chunk)), int(chunk[-1])
            if len(pending) and pending[0] < now - _MAX_LAG_NS:
                pending = pending[np.searchsorted(pending, now - _MAX_LAG_NS) :]
            due = int(np.searchsorted(pending, now, side="right"))
            for offset in range(0, due, self.batch_size):
                yield pending[offset : min(offset + self.batch_size, due)]
            pending = pending[due:]
            now = self._clock()
            beat += tick
            if beat <= now:  # a late wake-up: on to the grid's next beat
                beat += ((now - beat) // tick + 1) * tick
            self._sleep((beat - now) / NS_PER_S)

    def _events(self, ts: np.ndarray) -> tuple[pa.RecordBatch, pa.RecordBatch | None]:
        """Trades at ``ts`` (and the quotes in force at them)."""
        rng, n = self._rng, len(ts)
        self._apply_news(int(ts[-1]))
        symbol = rng.choice(len(self.tickers), size=n, p=self._symbol_share(ts)).astype(np.int32)
        log_mid = self._log_mid(symbol, ts)
        keep = None
        if self._injected:
            log_mid, keep = self._inject(symbol, ts, log_mid)
        mid = np.exp(log_mid)
        half = np.maximum(mid * self._spread[symbol], 0.01) / 2
        tick = np.where(mid < 1.0, 1e-4, 1e-2)  # Reg NMS rule 612: cents, 1/100 cent below $1
        bid = np.maximum(np.floor((mid - half) / tick) * tick, 1e-4)
        ask = np.maximum(np.ceil((mid + half) / tick) * tick, bid + tick)
        buy = rng.random(n) < 0.5
        price = np.round(np.where(buy, ask, bid), 4)
        size = self._sizes(n)
        if self._injected:
            for target, a in self._injected:
                if a.kind == "volume":
                    size = np.where((symbol == target) & (ts >= a.start) & (ts < a.end),
                                    np.rint(size * a.size), size)  # fmt: skip
        venue = rng.choice(len(_VENUES), size=n, p=_VENUE_SHARE).astype(np.int8)
        sweep = rng.random(n) < 0.1
        condition = np.where(size < 100, 0, 1).astype(np.int8)
        symbols = pa.DictionaryArray.from_arrays(pa.array(symbol), self._dictionary)
        stamps = pa.array(ts, pa.int64())
        no_dataset = pa.nulls(n, pa.string())
        trades = pa.RecordBatch.from_arrays(
            [
                symbols,
                stamps,
                pa.array(price),
                pa.array(size),
                _VENUE_NAMES.take(pa.array(venue)),
                _CONDITIONS.take(pa.array(condition, mask=(size >= 100) & ~sweep)),
                no_dataset,
            ],
            schema=TRADE_SCHEMA,
        )
        if keep is not None:
            trades = trades.filter(pa.array(keep))
        if not self.quotes:
            return trades, None
        lots = 100.0 * np.ceil(rng.lognormal(np.log(3.0), 0.8, (2, n)))
        quotes = pa.RecordBatch.from_arrays(
            [symbols.cast(pa.string()), stamps, pa.array(np.round(bid, 4)), pa.array(lots[0]),
             pa.array(np.round(ask, 4)), pa.array(lots[1]), no_dataset],
            schema=QUOTE_SCHEMA,
        )  # fmt: skip
        if keep is not None:
            quotes = quotes.filter(pa.array(keep))
        return trades, quotes

    def _inject(
        self, symbol: np.ndarray, ts: np.ndarray, log_mid: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Apply the labelled anomalies to a batch: moved prices, and the trades kept."""
        keep = None
        for k, (target, a) in enumerate(self._injected):
            moves = a.kind in ("jump", "halt")
            if ts[-1] < a.start or (ts[0] >= a.end and (k in self._moved or not moves)):
                continue
            mine = symbol == target
            if moves and k not in self._moved:
                at = a.start if a.kind == "jump" else a.end
                if ts[-1] >= at:  # from its time on, and in every later batch
                    log_mid = log_mid + np.where(mine & (ts >= at), a.size, 0.0)
                    self._jump[target] += a.size
                    self._moved.add(k)
            inside = mine & (ts >= a.start) & (ts < a.end)
            if a.kind in ("stale", "halt") and inside.any():
                keep = ~inside if keep is None else keep & ~inside
            elif a.kind == "vol" and inside.any():
                noise = self._noise_rng.standard_normal(len(ts)) * a.size
                log_mid = log_mid + np.where(inside, noise, 0.0)
        return log_mid, keep

    def _apply_news(self, until: int) -> None:
        """Start the news items due by ``until``: a burst of trading and a price gap."""
        while self._next_news <= until:
            at, rng = self._next_news, self._news_rng
            target = int(rng.choice(self._news_targets))
            daily = self.universe.vol[target] / np.sqrt(_TRADING_DAYS)
            gap = float(np.clip(daily * rng.uniform(0.8, 1.6), _NEWS_MIN, _NEWS_MAX))
            gap *= rng.choice([-1.0, 1.0])
            self.news.append((at, target, gap))
            self._burst_until[target] = at + int(rng.exponential(_BURST_SECONDS) * NS_PER_S)
            self._burst_speed[target] = rng.lognormal(np.log(10.0), 0.3)
            logger.debug("news: %s %+.2f%%", self.tickers[target], 100 * gap)
            self._next_news = at + self._news_gap()

    def _symbol_share(self, ts: np.ndarray) -> np.ndarray:
        """Each symbol's share of this batch's trades, bursts included."""
        first, final = int(ts[0]), int(ts[-1])
        span_s = max(final - self._clock_ts, 0) / NS_PER_S
        self._clock_ts = final
        draw = self._rng.random(len(self.tickers))
        starts = (draw < -np.expm1(-_BURSTS_PER_S * span_s)) & (self._burst_until <= first)
        if starts.any():
            length = self._rng.exponential(_BURST_SECONDS, len(self.tickers)) * NS_PER_S
            speed = self._rng.lognormal(np.log(15.0), 0.5, len(self.tickers))
            self._burst_until = np.where(starts, first + length.astype(np.int64), self._burst_until)
            self._burst_speed = np.where(starts, speed, self._burst_speed)
            logger.debug("burst: %s", [self.tickers[i] for i in np.flatnonzero(starts)])
        share = self._weight * np.where(self._burst_until > first, self._burst_speed, 1.0)
        return share / share.sum()

    def _log_mid(self, symbol: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Each trade's log mid price: reference + market + sector + own walk + news gaps."""
        rng, u = self._rng, self.universe
        market = self._market.at(None, ts, rng)
        sector = self._sectors.at(u.sector[symbol], ts, rng)
        own = self._idio.at(symbol.astype(np.int64), ts, rng)
        log_mid = self._log_ref[symbol] + u.beta[symbol] * market + u.loading[symbol] * sector
        log_mid += own + self._jump[symbol]
        for at, target, gap in self.news[self._applied :]:  # news of this batch, from its time on
            log_mid += np.where((symbol == target) & (ts >= at), gap, 0.0)
            self._jump[target] += gap
        self._applied = len(self.news)
        return log_mid

    def _sizes(self, n: int) -> np.ndarray:
        """Odd lots (30 %), round lots, and blocks (1.5 %), in shares."""
        rng = self._rng
        kind = rng.random(n)
        spread = np.exp(rng.standard_normal(n) * 0.85)
        odd = np.clip(np.rint(20.0 * spread), 1, 99)
        lots = 100 * np.ceil(0.75 * spread)
        block = 100 * np.rint(20.0 * spread + 10)
        return np.where(kind < 0.30, odd, np.where(kind > 0.985, block, lots))
