"""The processor: ticks in; bars, indicators, alerts and dead letters out.

It is driven batch by batch (one topic partition per batch) and keeps its
state per partition, so the same code runs on the embedded bus and on Kafka,
where a partition's state moves with the partition.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace

import msgspec
import numpy as np
import pyarrow as pa

from marketpulse import kernel_progress
from marketpulse.alerts import AlertEngine, Rule
from marketpulse.bus import json_rows
from marketpulse.bus.base import Batch, Message
from marketpulse.bus.json_rows import KERNELS as WRITER_KERNELS
from marketpulse.config import (
    BAR_INTERVALS,
    IDLE_TIMEOUT,
    LATENESS,
    MAX_SYMBOLS,
    MAX_TIME_JUMP,
    SESSION_TZ,
)
from marketpulse.forecast.stage import ForecastSettings, ForecastStage
from marketpulse.indicators import (
    DEFAULT,
    DeclaredSet,
    IndicatorState,
    compile_aside,
    update_indicators,
)
from marketpulse.indicators.state import kernels as indicator_kernels
from marketpulse.models import (
    BAR_QUOTE_COLUMNS,
    BAR_SCHEMA,
    DeadLetter,
    Quote,
    Trade,
    is_dataset_name,
)
from marketpulse.plugins import Plugin, run_plugins
from marketpulse.stream.checkpoint import restore_partition, snapshot_partition
from marketpulse.stream.dead_letters import dead_letters, iso_time
from marketpulse.stream.decode import decode_batch, decode_plain_ticks, tick_columns
from marketpulse.stream.emit import N_INTERVALS, Emitter, alert_rows
from marketpulse.stream.json_scan import KERNELS as JSON_KERNELS
from marketpulse.stream.output import Output, indicators_table, stamp
from marketpulse.stream.partition import PartitionState
from marketpulse.stream.quote_windows import KERNELS as QUOTE_KERNELS
from marketpulse.stream.quote_windows import QUOTE_BAR_COLUMNS, QuoteBars, QuoteState
from marketpulse.stream.sessions import SessionWindows, session_windows
from marketpulse.stream.tape import LEAN_CALENDAR, check_conditions, lean_roles
from marketpulse.stream.validate import REASONS, TRADE_KERNELS, check_bars, check_trades
from marketpulse.stream.windows import _CLOCK_FLOOR, FUTURE, LATE, ClosedBars, WindowState
from marketpulse.stream.windows import KERNELS as WINDOW_KERNELS
from marketpulse.timeframes import interval_keys, parse_intervals

__all__ = ["Processor", "ProcessorSettings"]

logger = logging.getLogger(__name__)

_DAY_NS = 86_400 * 10**9
#: The columns of input bars the processor reads (their dataset is the processor's).
_BAR_INPUT = [name for name in BAR_SCHEMA.names if name != "dataset"]
#: Records of one poll decoded together at most: beyond, the fixed cost per
#: batch is small, and joining more bytes at once costs more than it saves.
_MERGED_RECORDS = 4096
#: When the warm-up's synthetic trades start (2023-11-14, 22:13 UTC).
_WARM_UP_START = 1_700_000_000 * 10**9


@dataclass(frozen=True, slots=True)
class ProcessorSettings:
    """How the processor builds bars.

    Attributes:
        intervals: bar intervals built from trades (:mod:`marketpulse.timeframes`):
            fixed ones ascending, each a multiple of the first, then ``1d``
            and ``1w`` (session-aligned, :mod:`marketpulse.stream.sessions`).
        lateness: allowed lateness in seconds: a window closes when the
            watermark (max event time minus this) passes its end.
        idle_timeout: seconds without input after which a partition's
            watermark advances by processing time; ``None``: never (bars
            close by input alone, so outputs depend on input alone).
        session_tz: exchange time zone; the session VWAP resets at each local date
            (and, without a calendar, daily bars span local dates).
        session_calendar: exchange calendar (``XNYS``, ``24/7``, ...): when set, the
            session VWAP resets with the calendar's sessions instead, and daily
            and weekly bars span its sessions.
        max_time_jump: seconds a trade may be ahead of the newest event time of
            its partition; further ahead it goes to the DLQ as ``future`` and
            moves no watermark, unless the partition's next trade confirms the
            jump (see :mod:`marketpulse.stream.windows`). 0: no limit.
        fill_gaps: close the intervals in which a symbol had no trade (after its
            first bar, up to the partition's newest trade) as bars of the previous
            close, no volume, no trades (:mod:`marketpulse.stream.windows`).
        wall_clock: the source is live: trades and bars more than
            ``validate.MAX_CLOCK_SKEW`` ahead of the wall clock are ``future``.
        dataset: the dataset stamped on every output: bars, indicators, alerts,
            the trades kept (and, where they are stored, dead letters).
        plugins: users' functions called on each batch of closed bars with
            their indicators (:mod:`marketpulse.plugins`): their values go to
            :attr:`.Output.custom`, their alerts with the rules'.
        indicators: the declared indicators (their columns, in order, are the
            ``indicators`` rows' after the bar's key and close).
        conditions: the sale-condition rules (:mod:`marketpulse.stream.tape`):
            ``none`` (every trade sets prices) or ``lean``; not with ``fill_gaps``.
        max_symbols: most symbols one input partition holds; the trades and bars
            of further symbols go to the DLQ as ``max_symbols`` (their quotes
            are left out), so input cannot size the process.
        forecast: the forecasting models run on each closed bar
            (:mod:`marketpulse.forecast.stage`): their predictions go to
            :attr:`.Output.predictions`; without models, none.
    """

    intervals: tuple[str, ...] = BAR_INTERVALS
    lateness: float = LATENESS
    idle_timeout: float | None = IDLE_TIMEOUT
    session_tz: str = SESSION_TZ
    session_calendar: str = ""
    max_time_jump: float = MAX_TIME_JUMP
    wall_clock: bool = False
    fill_gaps: bool = field(default=False, repr=False)  # out of the repr: see indicators
    dataset: str = "live"
    plugins: tuple[Plugin, ...] = ()
    # out of the repr: a replay's identity (runtime.segments) names a declared set by its text
    indicators: DeclaredSet = field(default=DEFAULT, repr=False)
    conditions: str = field(default="none", repr=False)  # out of the repr: see indicators
    # out of the repr: it shapes no row of a replay that stays within it
    max_symbols: int = field(default=MAX_SYMBOLS, repr=False)
    # out of the repr: the bars, indicators and alerts of a replay do not depend on it
    forecast: ForecastSettings = field(default=ForecastSettings(), repr=False)

    def __post_init__(self) -> None:
        if not is_dataset_name(self.dataset):
            raise ValueError(f"{self.dataset!r} is not a dataset name")
        parsed = parse_intervals(self.intervals)
        if tuple(i.name for i in parsed) != tuple(self.intervals):
            canonical = ",".join(i.name for i in parsed)
            raise ValueError(f"intervals {','.join(self.intervals)}: write them {canonical}")
        if self.lateness < 0:
            raise ValueError("lateness must not be negative")
        if self.idle_timeout is not None and not self.idle_timeout > 0:
            raise ValueError("idle_timeout must be positive (None: never)")
        if not self.max_time_jump >= 0:
            raise ValueError("max_time_jump must not be negative")
        if self.max_symbols < 1:
            raise ValueError("max_symbols must be at least 1")
        check_conditions(self.conditions)
        if self.conditions != "none" and self.fill_gaps:
            raise ValueError("--fill-gaps and --conditions lean do not go together yet")


class Processor:
    """Turns batches of ticks into bars, indicators, alerts and dead letters.

    Args:
        settings: windowing settings.
        rules: alert rules (none: no alerts).
    """

    def __init__(self, settings: ProcessorSettings | None = None, rules: list[Rule] | None = None):
        self.settings = settings or ProcessorSettings()
        self._rules = list(rules or [])
        parsed = parse_intervals(self.settings.intervals)
        self._lengths = [i.length for i in parsed]
        self._sessions: list[SessionWindows] = [
            session_windows(i.unit, self.settings.session_calendar, self.settings.session_tz)
            for i in parsed
            if not i.fixed
        ]
        self._emitter = Emitter(self.settings)
        forecast = self.settings.forecast
        self._forecast = ForecastStage(forecast) if forecast.models else None
        self._lateness = int(self.settings.lateness * 1e9)
        self._max_jump = int(min(self.settings.max_time_jump, 2e9) * 1e9)
        self._lean = self.settings.conditions == "lean"
        if self._lean:  # the sessions whose auction prints the tape rules place
            days = session_windows(
                "d", self.settings.session_calendar or LEAN_CALENDAR, self.settings.session_tz
            )
            self._auction_sessions = (days.opens, days.closes, self._lengths[0])
        self._states: dict[tuple[str, int], PartitionState] = {}
        self._warm = False

    def state(self, topic: str, partition: int) -> PartitionState:
        """Return (creating it) the state of one input partition."""
        key = (topic, partition)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = self._new_state()
        return state

    def _new_state(self) -> PartitionState:
        return PartitionState(
            windows=WindowState(
                self._lengths,
                self._lateness,
                max_jump=self._max_jump,
                sessions=self._sessions,
                fill=self.settings.fill_gaps,
                hold=self._lean,
            ),
            indicators=IndicatorState(declared=self.settings.indicators),
            alerts=AlertEngine(self._rules, dataset=self.settings.dataset),
            last_input=time.monotonic(),
            max_symbols=self.settings.max_symbols,
        )

    def drop(self, topic: str, partition: int) -> None:
        """Forget a partition's state (it was revoked)."""
        self._states.pop((topic, partition), None)

    def checkpoint(self, topic: str, partition: int) -> list[tuple[bytes, bytes]]:
        """Return the ``state`` records of what changed in a partition since the last call.

        The records are the partition's clock and symbol order, and each symbol
        whose windows, indicators or alerts changed; the next call returns only
        later changes.
        """
        state = self._states.get((topic, partition))
        if state is None:
            return []
        settings = self.settings
        records = snapshot_partition(
            state, settings.intervals, state.dirty, settings.dataset, settings.indicators.text,
            state.names_written,
        )  # fmt: skip
        state.dirty.clear()
        state.names_written = len(state.names)
        return records

    def restore(
        self,
        topic: str,
        partition: int,
        records: dict[bytes, bytes],
        quiet_since: float | None = None,
    ) -> int:
        """Replace a partition's state by the latest ``state`` records of each key.

        Args:
            topic: the input topic.
            partition: the input partition.
            records: the latest value of each key of its ``state`` partition.
            quiet_since: processing time (``time.monotonic()``) the partition
                counts as idle from, for :meth:`idle_each` (default: now).

        Returns:
            the number of symbols restored.

        Raises:
            CheckpointError: a record is corrupt or was written with other settings
                (or for another dataset).
        """
        state = self._new_state()
        state.max_symbols = None  # what was taken stays, under a lower limit too
        restored = restore_partition(
            state, self.settings.intervals, records, self.settings.dataset,
            self.settings.indicators.text,
        )  # fmt: skip
        state.max_symbols = self.settings.max_symbols
        state.names_written = len(state.names)  # the records hold them
        if quiet_since is not None:
            state.last_input = quiet_since
        self._states[(topic, partition)] = state
        return restored

    def quiet_since(self, topic: str, partition: int, since: float) -> None:
        """Count a partition as idle from ``since`` (``time.monotonic()``), for :meth:`idle_each`.

        The service sets it once every partition it was given is restored, so a
        long restore never reads as idleness that closes windows by the clock.
        """
        state = self._states.get((topic, partition))
        if state is not None:
            state.last_input = since

    def warm_up(self, columns: bool = False) -> None:
        """Run synthetic trades through a throwaway processor with these settings.

        The first batch of a run otherwise compiles or loads the numba kernels
        (seconds on a cold cache, tenths on a warm one) while input waits, and
        a feed on the wall clock sees its ticks turn late. Nothing of this
        processor's state changes; a second call does nothing.

        Args:
            columns: the ticks will come as Arrow columns (the in-memory bus),
                not as JSON messages (Kafka): the JSON scanner's kernels, which
                only messages need, are left out.
        """
        if self._warm:
            return
        self._warm = True
        started = time.monotonic()
        logger.info("processor: loading the kernels (compiled on a first run, then cached)")
        with kernel_progress.compiling(self.kernels(columns)) as progress:
            if progress.total:
                logger.info("processor: %d kernels to compile (first run only)", progress.total)
            # the indicators' kernels come last: a second process compiles them meanwhile
            declared = indicator_kernels(self.settings.indicators)
            aside = None
            if kernel_progress.uncached(kernel_progress.needed(declared)):
                aside = compile_aside.start(self.settings.indicators)
            try:
                self._warm_up(columns)
            finally:
                if aside is not None:
                    compile_aside.finish(aside)
        logger.info("processor: kernels ready in %.1f s", time.monotonic() - started)

    def kernels(self, columns: bool = False) -> tuple[object, ...]:
        """Return the kernels this processor calls from Python for trades and quotes.

        Only those its settings use: the JSON scanner's and the output
        writer's (:mod:`marketpulse.bus.json_rows`) unless the ticks come as
        ``columns``, the declared indicators' kinds, the quote windows unless
        the conditions are Lean's, the alert rings when a rule reads earlier
        bars. Their callees are read off them
        (:func:`marketpulse.kernel_progress.needed`).
        """
        scan = () if columns else (*JSON_KERNELS, *WRITER_KERNELS)
        quotes = () if self._lean else QUOTE_KERNELS
        return (
            *scan, *TRADE_KERNELS, *WINDOW_KERNELS, *quotes,
            *indicator_kernels(self.settings.indicators), *AlertEngine(self._rules).kernels(),
        )  # fmt: skip

    def _warm_up(self, columns: bool) -> None:
        scratch = Processor(replace(self.settings, plugins=()), self._rules)
        step = 20 * 10**9  # 20 s between trades: bars of every interval close
        start = _WARM_UP_START - _WARM_UP_START % (max(self._lengths) or _DAY_NS)
        ticks = [  # quotes too: their kernel is loaded with the bars' (quote_windows)
            tick
            for i in range(64)
            for tick in (
                Quote("WARMUP", start + i * step, 99.9, 1.0, 100.1 + i % 5, 1.0),
                Trade("WARMUP", start + i * step, 100.0 + i % 7, 10.0),
            )
        ]
        if columns:  # as the in-memory bus delivers them, quotes apart (ProcessService)
            offset = 0
            for kind, data in tick_columns(ticks):
                batch = Batch("warm-up", 0, offset, offset + data.num_rows - 1, kind, data)
                offset += data.num_rows
                if kind == "quote":
                    scratch.add_quotes(batch)
                else:
                    scratch.process(batch)
        else:
            values = [msgspec.json.encode(tick) for tick in ticks]
            messages = [Message(b"WARMUP", value, i) for i, value in enumerate(values)]
            scratch.process(Batch("warm-up", 0, 0, len(messages) - 1, messages=messages))
            json_rows.warm_up()  # the services write their outputs as JSON records too
        scratch.finish()
        scratch.checkpoint("warm-up", 0)

    def process(self, batch: Batch) -> Output:
        """Process one batch of the ticks topic."""
        state = self.state(batch.topic, batch.partition)
        state.last_input = time.monotonic()
        out = Output()
        parts, dead = decode_batch(batch)
        out.dead.extend(dead)
        for kind, data in parts:
            if data is None or data.num_rows == 0:
                continue
            if kind == "trade":
                out.extend(self._trades(state, batch, data))
            elif kind == "bar":
                out.extend(self._bars(state, batch, data))
            elif kind == "quote" and data.num_rows:
                self._quotes(state, data)
                out.quotes.append(stamp(data, self._emitter.dataset))
        return out

    def add_quotes(self, batch: Batch) -> None:
        """Take a batch of quotes (columns, ``models.QUOTE_SCHEMA``) for the per-bar quote columns.

        Quotes that cannot be used (a bid or ask not a positive number) are left out.
        """
        if batch.columns is not None and batch.columns.num_rows:
            self._quotes(self.state(batch.topic, batch.partition), batch.columns)

    def _quotes(self, state: PartitionState, data: pa.RecordBatch | pa.Table) -> None:
        """Queue quotes for the as-of join and the bars' quote columns (quote_windows).

        Not with ``conditions="lean"``: its bars leave the windows an interval
        late (held for the volume of the next), when the quotes in force at
        their end have moved on; their quote columns stay null.
        """
        if self._lean:
            return
        bid, ask = (np.asarray(data.column(n).to_numpy(zero_copy_only=False), np.float64)
                    for n in ("bid", "ask"))  # fmt: skip
        usable = np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0)
        symbol = data.column("symbol")
        if isinstance(symbol, pa.ChunkedArray):
            symbol = symbol.combine_chunks()
        if pa.types.is_dictionary(symbol.type):
            codes = symbol.indices.to_numpy(zero_copy_only=False)
            sid = state.lookup(symbol.dictionary.to_pylist())[codes]
        else:  # names as decoded (Kafka): ids in the order of first use, as a dictionary's
            sid = state.lookup(symbol.to_pylist())
        usable &= sid >= 0  # a symbol beyond max_symbols: no state for its quotes
        if state.quotes is None:
            state.quotes = QuoteState(state.windows)
        ts = np.asarray(data.column("ts").to_numpy(zero_copy_only=False), np.int64)
        applied = state.quotes.add_quotes(sid[usable], ts[usable], bid[usable], ask[usable])
        state.dirty.update(np.unique(sid[usable]).tolist())
        state.dirty.update(applied.tolist())

    def process_each(self, batches: Sequence[Batch]) -> list[Output]:
        """Process the batches of one poll (a partition each): the outputs of :meth:`process`.

        Raw trade records, the common case, are decoded and checked once for
        all the batches: a consumer keeping up gets a few records per partition
        per poll, and the fixed cost of each decoding and check would
        otherwise be paid per partition. Quotes among the trades (the
        simulator's) are decoded with them, each batch's taken before its
        trades. Large batches (catching up), and anything else (bars,
        malformed or invalid records, a batch of quotes alone), are processed
        batch by batch.
        """
        if (
            len(batches) < 2
            or any(b.columns is not None for b in batches)
            or sum(len(b.messages) for b in batches) > _MERGED_RECORDS
        ):
            return [self.process(b) for b in batches]
        decoded = decode_plain_ticks(batches)
        if decoded is None:
            return [self.process(b) for b in batches]
        trades, quotes, counts = decoded
        if 0 in counts or check_trades(trades, self._now()).any():
            return [self.process(b) for b in batches]
        symbol = trades.column("symbol")
        names, codes = symbol.dictionary.to_pylist(), symbol.indices.to_numpy()
        ts, price, size = (trades.column(name).to_numpy() for name in ("ts", "price", "size"))
        outputs, closes, lo, now = [], [], 0, time.monotonic()
        flows: list[QuoteBars | None] = []
        for batch, count, quoted_in in zip(batches, counts, quotes, strict=True):
            hi = lo + count
            state = self.state(batch.topic, batch.partition)
            state.last_input = now
            if quoted_in is not None:  # a batch's quotes before its trades, as process() takes them
                self._quotes(state, quoted_in)
            sid = state.lookup_codes(names, codes[lo:hi])
            out, closed, quoted = self._add(state, batch, trades.slice(lo, hi - lo), None, sid,
                                            ts[lo:hi], price[lo:hi], size[lo:hi])  # fmt: skip
            if quoted_in is not None:
                out.quotes.append(stamp(quoted_in, self._emitter.dataset))
            outputs.append(out)
            closes.append((state, closed))
            flows.append(quoted)
            lo = hi
        # the closes of all the partitions are turned into rows together
        emitted_all = self._emitter.emit(closes)
        for out, emitted, quoted, (state, _) in zip(outputs, emitted_all, flows, closes,
                                                    strict=True):  # fmt: skip
            out.extend(self._plug(_with_quotes(emitted, quoted), state))
        return outputs

    def idle(self, now: float | None = None) -> Output:
        """Advance the watermark of partitions idle for longer than the idle timeout."""
        out = Output()
        for each in self.idle_each(now).values():
            out.extend(each)
        return out

    def idle_each(
        self, now: float | None = None, behind: Collection[tuple[str, int]] = ()
    ) -> dict[tuple[str, int], Output]:
        """Like :meth:`idle`, with the output of each (topic, partition) apart.

        Args:
            now: the processing time (``time.monotonic()``).
            behind: partitions with records still to read: not idle, however
                long since their last batch (a consumer catching up on another
                partition's backlog must not close their windows by the clock).
        """
        now = time.monotonic() if now is None else now
        outputs: dict[tuple[str, int], Output] = {}
        if self.settings.idle_timeout is None:  # bars close by input alone
            return outputs
        for key, state in self._states.items():
            if key in behind:
                continue
            quiet = now - state.last_input
            if state.windows.max_ts > -(2**61) and quiet > self.settings.idle_timeout:
                floor = state.windows.max_ts - self._lateness + int(quiet * 1e9)
                out = self._advance(state, floor)
                if out.bars.num_rows:
                    outputs[key] = out
        return outputs

    def closing(self, end: int, now: float, recent: float = 1.0) -> bool:
        """Whether a partition with input in the last ``recent`` s has bars ending at ``end`` open.

        Such a partition's watermark has not reached ``end`` (ns). The partitions
        of one market cross a bar boundary within milliseconds of each other;
        once all of them have, no more bars of that moment are due.
        """
        return any(
            now - state.last_input < recent and state.windows.watermark < end
            for state in self._states.values()
        )

    def finish(self) -> Output:
        """Close every open window: the input is exhausted."""
        out = Output()
        for each in self.finish_each().values():
            out.extend(each)
        return out

    def finish_each(self) -> dict[tuple[str, int], Output]:
        """Like :meth:`finish`, with the output of each (topic, partition) apart."""
        return {key: self.finish_partition(*key) for key in list(self._states)}

    def finish_partition(self, topic: str, partition: int) -> Output:
        """Close the open windows of one partition: its input is exhausted."""
        state = self._states.get((topic, partition))
        return Output() if state is None else self._advance(state, 2**62)

    def _now(self) -> int | None:
        """The wall clock (ns) that times are checked against, for a live source."""
        return time.time_ns() if self.settings.wall_clock else None

    def _trades(self, state: PartitionState, batch: Batch, data: pa.RecordBatch) -> Output:
        out = Output()
        codes = check_trades(data, self._now())
        if codes.any():
            bad = np.flatnonzero(codes)
            out.dead.extend(dead_letters(data, bad, [REASONS[c] for c in codes[bad]], batch))
            good = np.flatnonzero(codes == 0)
            data = data.take(pa.array(good))
            offsets = good
        else:
            offsets = None
        if data.num_rows == 0:
            return out
        symbol = data.column("symbol")
        sid = state.lookup(symbol.dictionary.to_pylist())[symbol.indices.to_numpy()]
        columns = (data.column(name).to_numpy() for name in ("ts", "price", "size"))
        added, closed, quoted = self._add(state, batch, data, offsets, sid, *columns)
        out.extend(added)
        out.extend(self._emit(state, closed, quoted))
        return out

    def _add(
        self,
        state: PartitionState,
        batch: Batch,
        data: pa.RecordBatch,
        offsets: np.ndarray | None,
        sid: np.ndarray,
        ts: np.ndarray,
        price: np.ndarray,
        size: np.ndarray,
    ) -> tuple[Output, ClosedBars, QuoteBars | None]:
        """Add valid trades (rows of ``data``, at ``offsets`` of the batch) to the windows.

        Returns the output so far (dead letters, the count accepted, the trades
        kept), the bars the trades closed, not yet made into rows, and their
        quote columns (``None``: the partition has had no quote).
        """
        out = Output()
        if len(sid) and sid.min() < 0:
            data, offsets, sid, ts, price, size = self._over_limit(
                out, batch, data, offsets, sid, ts, price, size
            )
        state.dirty.update(np.flatnonzero(np.bincount(sid)).tolist())
        newest = state.windows.max_ts
        roles = None
        if self._lean:
            roles, ts = lean_roles(data.column("condition"), sid, ts, state.windows.auctions,
                                   *self._auction_sessions)  # fmt: skip
        flags, closed = state.windows.add(sid, ts, price, size, roles)
        quoted = None
        if state.quotes is not None:
            floor = int(state.windows.clock[_CLOCK_FLOOR])
            quoted, applied = state.quotes.trades(sid, ts, price, size, flags, closed, newest,
                                                  floor)  # fmt: skip
            state.dirty.update(applied.tolist())
        if flags.any():
            rows = np.flatnonzero(flags)
            where = rows if offsets is None else offsets[rows]
            reasons = ["late" if f == LATE else "future" for f in flags[rows].tolist()]
            letters = dead_letters(data, rows, reasons, batch, where)
            watermark = state.windows.watermark
            if (flags == FUTURE).any():
                # the newest trade before each row: what a future one was measured against
                accepted = np.where(flags == 0, ts, newest)
                before = np.maximum.accumulate(np.concatenate([[newest], accepted[:-1]]))
                newest_before = before[rows].tolist()
            else:
                newest_before = [newest] * len(rows)
            out.dead.extend(
                self._explain(d, watermark, reference)
                for d, reference in zip(letters, newest_before, strict=True)
            )
        out.accepted = int(np.count_nonzero(flags == 0))
        refused = flags == FUTURE
        kept = data.filter(pa.array(~refused)) if refused.any() else data
        out.trades.append(stamp(kept, self._emitter.dataset))
        return out, closed, quoted

    def _over_limit(
        self,
        out: Output,
        batch: Batch,
        data: pa.RecordBatch,
        offsets: np.ndarray | None,
        sid: np.ndarray,
        *columns: np.ndarray,
    ) -> tuple[pa.RecordBatch, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Send the rows of symbols beyond ``max_symbols`` (id -1) to the DLQ; the others."""
        refused = sid < 0
        rows = np.flatnonzero(refused)
        where = rows if offsets is None else offsets[rows]
        letters = dead_letters(data, rows, ["max_symbols"] * len(rows), batch, where)
        out.dead.extend(self._limited(letter) for letter in letters)
        kept = np.flatnonzero(~refused)
        offsets = kept if offsets is None else offsets[kept]
        ts, price, size = (column[kept] for column in columns)
        return data.take(pa.array(kept)), offsets, sid[kept], ts, price, size

    def _limited(self, letter: DeadLetter) -> DeadLetter:
        limit = self.settings.max_symbols
        error = (
            f"field symbol: {letter.key!r} is beyond the {limit:,} symbols a partition holds "
            "(max_symbols; raise --max-symbols, or spread the symbols over more partitions)"
        )
        return msgspec.structs.replace(letter, error=error)

    def _explain(self, letter: DeadLetter, watermark: int, newest: int) -> DeadLetter:
        """Say what a late or future trade was measured against."""
        if letter.reason == "late":
            error = f"{letter.error} (watermark {watermark})"
        else:
            jump = _seconds(self.settings.max_time_jump)
            error = (
                f"field ts: {iso_time(letter.ts)} is more than {jump} s (max_time_jump) "
                f"ahead of its partition's newest trade, {iso_time(newest)}"
            )
        return msgspec.structs.replace(letter, error=error)

    def _bars(self, state: PartitionState, batch: Batch, data: pa.RecordBatch) -> Output:
        out = Output()
        codes = check_bars(data, self._now())
        good = None  # rows of the batch left, when some were refused
        if codes.any():
            bad = np.flatnonzero(codes)
            out.dead.extend(dead_letters(data, bad, [REASONS[c] for c in codes[bad]], batch))
            good = np.flatnonzero(codes == 0)
            data = data.take(pa.array(good))
        if data.num_rows == 0:
            return out
        sid = state.lookup(data.column("symbol").to_pylist())
        if sid.min() < 0:  # symbols beyond max_symbols
            rows = np.flatnonzero(sid < 0)
            where = rows if good is None else good[rows]
            letters = dead_letters(data, rows, ["max_symbols"] * len(rows), batch, where)
            out.dead.extend(self._limited(letter) for letter in letters)
            data, sid = data.take(pa.array(np.flatnonzero(sid >= 0))), sid[sid >= 0]
            if data.num_rows == 0:
                return out
        table = pa.Table.from_batches([data]).select(_BAR_INPUT)
        table = stamp(table, self._emitter.dataset).cast(BAR_SCHEMA)
        names = table.column("symbol").to_pylist()
        state.dirty.update(sid.tolist())
        timeframes = table.column("timeframe").to_pylist()
        configured = self.settings.intervals
        keys = sid * N_INTERVALS + np.array(interval_keys(timeframes, configured), np.int64)
        start = table.column("bar_start").to_numpy()
        high, low, close, volume = (
            table.column(n).to_numpy() for n in ("high", "low", "close", "volume")
        )
        vwap = table.column("vwap").to_numpy(zero_copy_only=False)
        typical = (high + low + close) / 3.0
        pv = np.where(np.isnan(vwap), typical, vwap) * volume
        daily = np.array([i == "1d" for i in timeframes])
        session = np.where(daily, start // _DAY_NS, self._emitter.sessions(start))
        opens = table.column("open").to_numpy()
        values = update_indicators(
            state.indicators, keys, high, low, close, volume, pv, session, opens
        )
        end = table.column("bar_end").to_numpy()
        symbols = np.array(names, object)
        labels = np.array(timeframes, object)
        out.bars = table if state.quotes is None else _with_quotes_table(table, None)
        out.indicators = indicators_table(
            symbols, labels, start, end, close, values, self._emitter.dataset,
            self.settings.indicators.columns,
        )  # fmt: skip
        prices = {n: table.column(n).to_numpy() for n in ("open", "high", "low", "close", "volume")}
        rows = alert_rows(
            symbols, labels, start, end, prices, values, self.settings.indicators.columns
        )
        out.alerts = state.alerts.evaluate(rows)
        out.accepted = table.num_rows
        return self._plug(out, state)

    def _emit(
        self, state: PartitionState, closed: ClosedBars, quoted: QuoteBars | None = None
    ) -> Output:
        return self._plug(_with_quotes(self._emitter.emit([(state, closed)])[0], quoted), state)

    def _advance(self, state: PartitionState, floor: int) -> Output:
        """Raise a partition's watermark to at least ``floor``; the rows of the bars it closes."""
        windows = state.windows
        before = int(windows.clock[_CLOCK_FLOOR])
        closed = windows.advance(floor)
        quoted = None
        if state.quotes is not None:
            quoted, applied = state.quotes.advance(closed, windows.max_ts, before,
                                                   windows.watermark)  # fmt: skip
            state.dirty.update(applied.tolist())
        return self._emit(state, closed, quoted)

    def _plug(self, out: Output, state: PartitionState) -> Output:
        """Add the forecasts on the output's bars, and what the plugins make of them."""
        if self._forecast is not None and out.bars.num_rows:
            out.predictions = self._forecast.step(state.forecasts, out.bars, out.indicators)
        plugins = self.settings.plugins
        if plugins and out.bars.num_rows:
            made = run_plugins(plugins, out.bars, out.indicators, self.settings.dataset)
            out.custom = made.custom
            out.alerts.extend(made.alerts)
            out.dead.extend(made.dead)
        return out


def _with_quotes(out: Output, quoted: QuoteBars | None) -> Output:
    """Give the output's bars their quote columns (those of a partition that has had quotes)."""
    if quoted is not None:
        out.bars = _with_quotes_table(out.bars, quoted)
    return out


def _with_quotes_table(bars: pa.Table, quoted: QuoteBars | None) -> pa.Table:
    """``bars`` with the columns of :data:`BAR_QUOTE_COLUMNS` (all null without ``quoted``)."""
    n = bars.num_rows
    if n == 0:  # most partitions of most polls close nothing: no columns to build
        # the metadata in the key too: schemas that differ only there compare equal
        return _no_quoted_bars(bars.schema, tuple(sorted((bars.schema.metadata or {}).items())))
    if quoted is None:
        quoted = QuoteBars(np.full((n, len(QUOTE_BAR_COLUMNS)), np.nan))
    buy, sell = quoted.buy_volume, quoted.sell_volume  # type: ignore[attr-defined]
    with np.errstate(invalid="ignore", divide="ignore"):
        imbalance = (buy - sell) / (buy + sell)  # NaN (null) without classified volume
    values = [getattr(quoted, name) for name in QUOTE_BAR_COLUMNS] + [imbalance]
    for name, value in zip(BAR_QUOTE_COLUMNS, values, strict=True):
        bars = bars.append_column(name, pa.array(value, pa.float64(), from_pandas=True))
    return bars


@functools.lru_cache(maxsize=16)
def _no_quoted_bars(schema: pa.Schema, metadata: tuple[tuple[bytes, bytes], ...]) -> pa.Table:
    """No bars, with the columns of :data:`BAR_QUOTE_COLUMNS` after those of ``schema``.

    ``metadata``: the schema's, as the cache's key holds it.
    """
    for name in BAR_QUOTE_COLUMNS:
        schema = schema.append(pa.field(name, pa.float64()))
    return schema.empty_table()


def _seconds(value: float) -> str:
    """Seconds as text: whole ones with thousands separators (``1,209,600``)."""
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"
