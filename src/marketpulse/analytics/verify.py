"""Conservation check of stored outputs: every kept trade is in a bar or an open window.

Per dataset, symbol and interval, the trades the bars count (``sum(bars.trades)``)
equal the kept trades that belong in bars of that interval
(:mod:`.verify_rules`) and whose window has closed. A window has closed when
its end is at or before the symbol's newest closed bar's end (any interval's:
one watermark closes them all; under tape rules, which hold a bar until the
next window closes, the interval's own). Trades past it are in open windows.
Dead letters are not kept trades (``late`` ones are both: a trade that missed
its bar). Keys stored twice: bars and indicators by (dataset, symbol,
interval, bar start), alerts by (dataset, id), trades as the reader tells
(:class:`TradeCopy`).

The readers of a lake (:mod:`.verify_lake`) and of Kafka topics
(:mod:`.verify_kafka`) fill a :class:`Stored`; :func:`verify` checks it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketpulse.analytics.exceptions import AnalyticsError
from marketpulse.analytics.verify_rules import NO_WINDOW, BarRules, bar_windows
from marketpulse.timeframes import is_interval, sort_key

__all__ = ["Report", "Stored", "TimeframeRow", "TradeCopy", "only_dataset", "verify"]

#: Keys named per line of a violation about keys stored twice.
_EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class TradeCopy:
    """Trades a store holds twice, as its reader found them.

    Attributes:
        dataset: their dataset.
        rows: how many rows are the second copy.
        what: which rows (files, input lines or offsets), for the violation line.
    """

    dataset: str
    rows: int
    what: str


@dataclass(frozen=True)
class Stored:
    """What a store holds, as far as the check needs it.

    Attributes:
        where: the store, as users name it (``lake data/lake``).
        trades: kept trades: ``dataset``, ``symbol``, ``ts`` (int64 ns),
            ``condition``, per symbol in the order they were processed; the
            second copies of :attr:`trade_copies` left out.
        bars: ``dataset``, ``symbol``, ``timeframe``, ``bar_start``, ``bar_end``
            (int64 ns) and ``trades``.
        indicators: ``dataset``, ``symbol``, ``timeframe``, ``bar_start``.
        alerts: ``dataset``, ``timeframe``, ``id``.
        dlq: ``dataset``, ``reason``, ``symbol``, ``ts`` (int64 ns, or null).
        trade_copies: trades found stored twice.
        notes: what the reader could not tell.
    """

    where: str
    trades: pa.Table
    bars: pa.Table
    indicators: pa.Table
    alerts: pa.Table
    dlq: pa.Table
    trade_copies: list[TradeCopy] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TimeframeRow:
    """One line of the report: a dataset's trades against its bars of one interval."""

    dataset: str
    timeframe: str
    trades: int  # kept trades of the dataset
    in_bars: int  # sum(bars.trades)
    open: int  # trades of windows not closed yet
    not_for_bars: int  # late, left out by tape rules, outside every session
    missing: int  # in a closed window, yet in no bar
    extra: int  # counted by bars beyond the kept trades
    duplicates: int  # keys of bars, indicators and alerts stored twice or more


@dataclass
class Report:
    """The outcome of :func:`verify`."""

    where: str
    rows: list[TimeframeRow] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    dlq: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> reason -> rows
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether everything holds."""
        return not self.violations


def only_dataset(stored: Stored, dataset: str) -> Stored:
    """The rows of one dataset of ``stored``.

    Raises:
        AnalyticsError: the store has no row of that dataset.
    """
    tables = [_of(t, dataset) for t in (stored.trades, stored.bars, stored.indicators,
                                        stored.alerts, stored.dlq)]  # fmt: skip
    if not any(t.num_rows for t in tables):
        raise AnalyticsError(f"{stored.where} holds no rows of dataset {dataset!r}")
    copies = [c for c in stored.trade_copies if c.dataset == dataset]
    return Stored(stored.where, *tables, trade_copies=copies, notes=stored.notes)


def verify(stored: Stored, rules: BarRules, intervals: list[str] | None = None) -> Report:
    """Check that every kept trade is in a bar or an open window and no key is stored twice.

    Args:
        stored: what the store holds.
        rules: the settings that decided which trades go into bars.
        intervals: the intervals the bars should have (``None``: those stored).
    """
    report = Report(stored.where, notes=list(stored.notes))
    report.totals = {
        "trades": stored.trades.num_rows + sum(c.rows for c in stored.trade_copies),
        "bars": stored.bars.num_rows,
        "indicators": stored.indicators.num_rows,
        "alerts": stored.alerts.num_rows,
        "dlq": stored.dlq.num_rows,
    }
    for dataset, reason, n in _counts(stored.dlq, ["dataset", "reason"]):
        report.dlq.setdefault(dataset, {})[reason] = n
    twice = _twice(stored, report)
    for copy in stored.trade_copies:
        report.violations.append(f"{copy.dataset}: {copy.rows:,} trades stored twice: {copy.what}")
    datasets = sorted(set(_values(stored.trades, "dataset")) | set(_values(stored.bars, "dataset")))
    for dataset in datasets:
        _check_dataset(stored, dataset, rules, intervals, twice, report)
    return report


def _check_dataset(
    stored: Stored,
    dataset: str,
    rules: BarRules,
    intervals: list[str] | None,
    twice: Counter[tuple[str, str]],
    report: Report,
) -> None:
    trades = _of(stored.trades, dataset)
    bars = _first_of_each_key(_of(stored.bars, dataset))
    stored_tfs = set(_values(bars, "timeframe"))
    timeframes = sorted(intervals or [t for t in stored_tfs if is_interval(t)], key=sort_key)
    if trades.num_rows == 0:
        report.notes.append(
            f"{dataset}: no kept trades stored (bars of the input itself, or trades not "
            "stored): its bars are not checked against trades"
        )
        return
    symbols = trades.column("symbol").combine_chunks().dictionary_encode()
    names = symbols.dictionary
    sid = symbols.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    late = _late(trades, _of(stored.dlq, dataset), report, dataset)
    windows = bar_windows(trades, late, timeframes, rules)
    per_tf = {tf: _bar_sums(bars, tf, names) for tf in timeframes}
    newest = np.max([ends for _, ends, _ in per_tf.values()], axis=0, initial=NO_WINDOW)
    for tf in timeframes:
        in_bars, last_end, unknown = per_tf[tf]
        # tape rules hold a bar until the next window closes: only its own bars tell
        cutoff = (last_end if rules.hold else newest)[sid]
        end = windows.ends[tf]
        counted = end != NO_WINDOW
        closed = np.bincount(sid[counted & (end <= cutoff)], minlength=len(names))
        pending = counted & (end > cutoff)
        opened = np.bincount(sid[pending], minlength=len(names))
        # volume-only trades right after a held bar add to it: bars may count them
        slack = np.bincount(sid[pending & windows.volume_only], minlength=len(names))
        diff = in_bars - closed
        short = np.maximum(-diff, 0)
        over = np.where(diff > slack, diff, 0) if rules.hold else np.maximum(diff, 0)
        for i in np.flatnonzero(short | over):
            report.violations.append(_conservation_line(dataset, names[i].as_py(), tf, in_bars[i],
                                                        closed[i], short[i], over[i]))  # fmt: skip
        for symbol, n in unknown:
            report.violations.append(f"{dataset} {symbol} {tf}: bars count {n:,} trades of a "
                                     "symbol with no kept trade")  # fmt: skip
        report.rows.append(TimeframeRow(
            dataset, tf, trades.num_rows, int(in_bars.sum()) + sum(n for _, n in unknown),
            int(opened.sum() - np.clip(diff, 0, slack).sum()), int((~counted).sum()),
            int(short.sum()), int(over.sum()) + sum(n for _, n in unknown), twice[(dataset, tf)],
        ))  # fmt: skip
    for tf in sorted(stored_tfs - set(timeframes)):
        report.notes.append(f"{dataset} {tf}: not an interval built from trades: not checked")


def _conservation_line(dataset: str, symbol: str, tf: str, in_bars: int, closed: int,
                       short: int, over: int) -> str:  # fmt: skip
    if short:
        what = f"{short:,} trades missing (in a closed window, in no bar)"
    else:
        what = f"{over:,} trades extra (bars count more than the kept trades)"
    return f"{dataset} {symbol} {tf}: {what}: bars hold {in_bars:,}, closed windows {closed:,}"


def _bar_sums(
    bars: pa.Table, tf: str, names: pa.Array
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int]]]:
    """Per symbol of ``names``: trades in the interval's bars, the newest bar's end; others."""
    own = bars.filter(pc.equal(bars.column("timeframe"), tf))
    index = pc.index_in(own.column("symbol"), value_set=names).to_numpy(zero_copy_only=False)
    known = ~np.isnan(index.astype(float))
    at = index[known].astype(np.int64)
    counts = own.column("trades").fill_null(0).to_numpy()
    in_bars = np.bincount(at, weights=counts[known], minlength=len(names)).astype(np.int64)
    last_end = np.full(len(names), NO_WINDOW, np.int64)
    np.maximum.at(last_end, at, own.column("bar_end").to_numpy()[known])
    strangers = own.filter(pa.array(~known))
    unknown = [(s, n) for s, n in _sums(strangers, "symbol", "trades") if n]
    return in_bars, last_end, unknown


def _late(trades: pa.Table, dlq: pa.Table, report: Report, dataset: str) -> np.ndarray:
    """Mark the kept trades that went to ``dlq`` as ``late`` too (by symbol and time)."""
    late = np.zeros(trades.num_rows, bool)
    rows = dlq.filter(pc.equal(dlq.column("reason"), "late"))
    wanted = Counter(zip(_values(rows, "symbol"), _values(rows, "ts"), strict=True))
    if not wanted:
        return late
    ts = trades.column("ts").to_numpy()
    symbols = trades.column("symbol").to_pylist()
    for i in np.flatnonzero(np.isin(ts, [t for _, t in wanted if t is not None])).tolist():
        key = (symbols[i], int(ts[i]))
        if wanted[key] > 0:
            wanted[key] -= 1
            late[i] = True
    unmatched = sum(wanted.values())
    if unmatched:
        report.notes.append(f"{dataset}: {unmatched:,} late dead letters match no kept trade")
    return late


def _twice(stored: Stored, report: Report) -> Counter[tuple[str, str]]:
    """Report the keys stored twice; return how many per (dataset, timeframe)."""
    found: Counter[tuple[str, str]] = Counter()
    keyed = (("bars", stored.bars, ["symbol", "bar_start"]),
             ("indicators", stored.indicators, ["symbol", "bar_start"]),
             ("alerts", stored.alerts, ["id"]))  # fmt: skip
    for name, table, key in keyed:
        if table.num_rows == 0:
            continue
        counted = table.group_by(["dataset", "timeframe", *key]).aggregate([([], "count_all")])
        many = counted.filter(pc.greater(counted.column("count_all"), 1))
        for (dataset, tf), group in _groups(many, ["dataset", "timeframe"]):
            found[(dataset, tf)] += group.num_rows
            first = group.slice(0, _EXAMPLES).to_pylist()
            examples = ", ".join(_key_text(row, key) for row in first)
            more = f", ... ({group.num_rows:,} keys)" if group.num_rows > _EXAMPLES else ""
            report.violations.append(f"{dataset} {tf}: {name} stored twice or more: "
                                     f"{examples}{more}")  # fmt: skip
    return found


def _key_text(row: dict, key: list[str]) -> str:
    parts = [row[k] if k != "bar_start" else _iso(row[k]) for k in key]
    return f"{' '.join(str(p) for p in parts)} x{row['count_all']}"


def _iso(ns: int | datetime) -> str:
    if isinstance(ns, datetime):
        return ns.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return datetime.fromtimestamp(ns // 10**9, UTC).isoformat().replace("+00:00", "Z")


def _first_of_each_key(bars: pa.Table) -> pa.Table:
    """Bars without their second copies (reported apart): the counts compare the rest."""
    if bars.num_rows == 0:
        return bars
    indexed = bars.append_column("_row", pa.array(np.arange(bars.num_rows)))
    first = indexed.group_by(["symbol", "timeframe", "bar_start"]).aggregate([("_row", "min")])
    return bars.take(first.column("_row_min"))


def _of(table: pa.Table, dataset: str) -> pa.Table:
    return table.filter(pc.equal(table.column("dataset"), dataset))


def _values(table: pa.Table, column: str) -> list:
    return table.column(column).to_pylist()


def _counts(table: pa.Table, keys: list[str]) -> list[tuple]:
    if table.num_rows == 0:
        return []
    counted = table.group_by(keys).aggregate([([], "count_all")]).to_pylist()
    return sorted(tuple(row[k] for k in [*keys, "count_all"]) for row in counted)


def _sums(table: pa.Table, key: str, column: str) -> list[tuple[str, int]]:
    if table.num_rows == 0:
        return []
    summed = table.group_by([key]).aggregate([(column, "sum")]).to_pylist()
    return sorted((row[key], int(row[f"{column}_sum"] or 0)) for row in summed)


def _groups(table: pa.Table, keys: list[str]) -> list[tuple[tuple, pa.Table]]:
    if table.num_rows == 0:
        return []
    pairs = sorted({tuple(row[k] for k in keys) for row in table.select(keys).to_pylist()})
    out = []
    for pair in pairs:
        mask = None
        for k, v in zip(keys, pair, strict=True):
            m = pc.equal(table.column(k), v)
            mask = m if mask is None else pc.and_(mask, m)
        out.append((pair, table.filter(mask)))
    return out
