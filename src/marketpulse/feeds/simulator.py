"""A synthetic trade feed with the texture of a US equity tape.

Each symbol has its own price level and volatility; prices follow geometric
Brownian motion in event time with occasional jumps, and print on the
exchange's price grid. Activity follows a U-shaped intraday curve (busy open,
quiet lunch, busy close) that repeats every 6.5 h session from 09:30 New York;
now and then a symbol bursts, trading many times faster for a while. Trade
sizes mix odd lots, round lots and the occasional block.

Everything is drawn with numpy, one batch at a time, from one seeded generator:
with ``realtime=False`` a seed and ``start_ts`` fix the whole stream.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from marketpulse.feeds.base import FeedBatch
from marketpulse.models import NS_PER_S, TRADE_SCHEMA

__all__ = ["Simulator"]

logger = logging.getLogger(__name__)

#: Real US tickers, busiest first; more symbols get synthetic 3-4 letter names.
TICKERS = (
    "SPY QQQ AAPL TSLA NVDA AMD AMZN MSFT META GOOGL IWM BAC F PLTR INTC T XLF SOFI AAL CCL "
    "PFE C WFC JPM GE UBER DIS NFLX BABA KO XOM CVX VZ CSCO ORCL WMT BA MU SNAP PYPL "
    "SHOP COIN GM NKE SBUX MRNA JNJ PG V MA HD UNH GS MS IBM AIG KR TGT COST LLY "
    "ABBV MRK PEP MCD ADBE CRM QCOM TXN AVGO"
).split()
#: Venue codes (FINRA TRF, Nasdaq, NYSE Arca, NYSE, Cboe BZX/BYX/EDGX/EDGA, IEX, ...)
#: with rough shares of consolidated volume.
_VENUES = ("D", "Q", "P", "N", "Z", "K", "Y", "J", "V", "B", "X", "A", "M")
_VENUE_SHARE = np.array([34, 16, 10, 9, 7, 7, 3, 3, 3, 2, 2, 2, 2]) / 100
_CONDITIONS = pa.array(["I", "F"])  # odd lot; intermarket sweep

_SESSION_NS = 23_400 * NS_PER_S  # 09:30-16:00
_SECONDS_PER_YEAR = 252 * 23_400.0
_JUMPS_PER_S = 1 / 7_200  # per symbol
_JUMP_SIGMA = 0.015
_BURSTS_PER_S = 1 / 1_800  # per symbol
_BURST_SECONDS = 30.0
_TICK_S = 0.025  # realtime: one batch every 25 ms
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


def _tickers(count: int, rng: np.random.Generator) -> list[str]:
    names = list(TICKERS[:count])
    seen = set(TICKERS)
    letters = np.array(list("ABCDEFGHIJKLMNOPRSTUVWXYZ"))
    while len(names) < count:
        name = "".join(letters[rng.integers(0, len(letters), rng.choice([3, 4]))])
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


class Simulator:
    """An endless (or ``max_events`` long) stream of synthetic trades.

    Args:
        symbols: how many symbols trade.
        rate: mean trades per second over a session, all symbols together.
        seed: seed of the random generator.
        start_ts: time of the first event (UTC ns). Default: now when
            ``realtime``, else today's 09:30 New York open.
        realtime: pace the stream to the wall clock, stamping events with it;
            ``False`` runs a virtual clock from ``start_ts`` as fast as possible.
        batch_size: most events per batch.
        max_events: stop after this many events (``None``: never stop).
        intraday: shape activity over the session; ``False`` keeps it flat.
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
        intraday: bool = True,
    ) -> None:
        if symbols < 1 or rate <= 0 or batch_size < 1:
            raise ValueError("symbols, rate and batch_size must be positive")
        self.rate, self.realtime, self.intraday = float(rate), realtime, intraday
        self.batch_size, self.max_events = batch_size, max_events
        self.start_ts, self.seed = start_ts, seed
        self._symbols = symbols
        self._closed = False
        self._reset()

    def _reset(self) -> None:
        """Draw the symbols and their starting state afresh from the seed."""
        symbols = self._symbols
        self._rng = rng = np.random.default_rng(self.seed)
        self.tickers = _tickers(symbols, rng)
        self._dictionary = pa.array(self.tickers, pa.string())
        weight = (np.arange(symbols) + 1.0) ** -0.7 * rng.lognormal(0.0, 0.3, symbols)
        self._weight = weight / weight.sum()
        self._log_price = np.log(np.clip(rng.lognormal(np.log(60.0), 1.0, symbols), 5.0, 800.0))
        annual = np.clip(rng.lognormal(np.log(0.3), 0.35, symbols), 0.1, 1.2)
        self._sigma = annual / np.sqrt(_SECONDS_PER_YEAR)  # per second
        self._burst_until = np.zeros(symbols, dtype=np.int64)
        self._burst_speed = np.ones(symbols)

    def __repr__(self) -> str:
        return f"Simulator(symbols={len(self.tickers)}, rate={self.rate}, realtime={self.realtime})"

    def close(self) -> None:
        """Stop the stream at the next batch."""
        self._closed = True

    def batches(self) -> Iterator[FeedBatch]:
        """Yield batches of trades (``models.TRADE_SCHEMA``) until closed or ``max_events``."""
        self._closed = False
        self._reset()
        if self.realtime:
            start = self.start_ts if self.start_ts is not None else time.time_ns()
        else:
            start = self.start_ts if self.start_ts is not None else _session_open(time.time_ns())
        self._open_ns = _session_open(start)
        self._last_ts = np.full(len(self.tickers), start, dtype=np.int64)
        self._clock = start
        stamps = self._realtime_stamps(start) if self.realtime else self._virtual_stamps(start)
        done = 0
        for ts in stamps:
            if self._closed:
                return
            if self.max_events is not None:
                ts = ts[: self.max_events - done]
            if len(ts):
                done += len(ts)
                yield FeedBatch("trade", self._trades(ts), done=done, total=self.max_events)
            if self.max_events is not None and done >= self.max_events:
                return

    def _activity(self, ts: int) -> float:
        if not self.intraday:
            return 1.0
        phase = ((ts - self._open_ns) % _SESSION_NS) / _SESSION_NS
        return float(np.interp(phase, _PHASE, _ACTIVITY))

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
        """Poisson arrivals on the wall clock, one batch per tick of ``_TICK_S``."""
        rng, last, beat = self._rng, start, time.monotonic()
        while True:
            beat += _TICK_S
            pause = beat - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                beat = time.monotonic()  # fell behind: do not try to catch up in bursts
            now = time.time_ns()
            if now <= last:
                continue
            last = max(last, now - _MAX_LAG_NS)
            count = rng.poisson(self.rate * self._activity(last) * (now - last) / NS_PER_S)
            ts = np.sort(rng.integers(last + 1, now + 1, size=count, dtype=np.int64))
            last = now
            for offset in range(0, count, self.batch_size):
                yield ts[offset : offset + self.batch_size]

    def _trades(self, ts: np.ndarray) -> pa.RecordBatch:
        rng, n = self._rng, len(ts)
        symbol = rng.choice(len(self.tickers), size=n, p=self._symbol_share(ts)).astype(np.int32)
        price = self._prices(symbol, ts)
        size = self._sizes(n)
        venue = rng.choice(len(_VENUES), size=n, p=_VENUE_SHARE).astype(np.int8)
        sweep = rng.random(n) < 0.1
        condition = np.where(size < 100, 0, 1).astype(np.int8)
        columns = [
            pa.DictionaryArray.from_arrays(pa.array(symbol), self._dictionary),
            pa.array(ts, pa.int64()),
            pa.array(price),
            pa.array(size),
            pa.DictionaryArray.from_arrays(pa.array(venue), pa.array(_VENUES)).cast(pa.string()),
            pa.DictionaryArray.from_arrays(
                pa.array(condition, mask=(size >= 100) & ~sweep), _CONDITIONS
            ).cast(pa.string()),
        ]
        return pa.RecordBatch.from_arrays(columns, schema=TRADE_SCHEMA)

    def _symbol_share(self, ts: np.ndarray) -> np.ndarray:
        """Each symbol's share of this batch's trades, bursts included."""
        first, final = int(ts[0]), int(ts[-1])
        span_s = max(final - self._clock, 0) / NS_PER_S
        self._clock = final
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

    def _prices(self, symbol: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Advance each symbol's log price along its own ticks (GBM with jumps)."""
        rng, n = self._rng, len(ts)
        order = np.argsort(symbol, kind="stable")  # by symbol, in time within a symbol
        sym, t = symbol[order], ts[order]
        first = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]])
        last = np.r_[first[1:], n] - 1
        previous = np.empty_like(t)
        previous[1:] = t[:-1]
        previous[first] = self._last_ts[sym[first]]
        gap_s = (t - previous) / NS_PER_S
        sigma = self._sigma[sym]
        step = sigma * np.sqrt(gap_s) * rng.standard_normal(n) - 0.5 * sigma**2 * gap_s
        jumps = rng.random(n) < -np.expm1(-_JUMPS_PER_S * gap_s)
        step += np.where(jumps, rng.normal(0.0, _JUMP_SIGMA, n), 0.0)
        path = np.cumsum(step)
        path -= np.repeat(path[first] - step[first], last - first + 1)
        log_price = self._log_price[sym] + path
        self._log_price[sym[last]] = log_price[last]
        self._last_ts[sym[last]] = t[last]
        price = np.empty(n)
        price[order] = np.exp(log_price)
        # Trades print on the exchange grid (Reg NMS rule 612): cents, 1/100 cent below $1.
        tick = np.where(price < 1.0, 1e-4, 1e-2)
        return np.maximum(np.round(price / tick) * tick, 1e-4)

    def _sizes(self, n: int) -> np.ndarray:
        """Odd lots (30 %), round lots, and blocks (1.5 %), in shares."""
        rng = self._rng
        kind = rng.random(n)
        spread = np.exp(rng.standard_normal(n) * 0.85)
        odd = np.clip(np.rint(20.0 * spread), 1, 99)
        lots = 100 * np.ceil(0.75 * spread)
        block = 100 * np.rint(20.0 * spread + 10)
        return np.where(kind < 0.30, odd, np.where(kind > 0.985, block, lots))
