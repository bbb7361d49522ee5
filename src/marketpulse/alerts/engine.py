"""Vectorized evaluation of alert rules over closed bars and their indicators.

Conditions are computed on whole columns with numpy; only the rows where a
condition holds go through Python, for the cooldown and to build the
:class:`~marketpulse.models.Alert` (keyed by its bar: symbol, timeframe,
bar_start; its ``details`` are the values the rule looked at). Values of
earlier bars (previous close, close ``window`` bars ago, ...) come from
per-(symbol, timeframe) rings that
carry the last values across calls, so splitting the rows into any batches
gives the same alerts as one call. The condition and message of each rule type
are in :mod:`marketpulse.alerts.conditions`.

Stale-feed rules read no column: the engine keeps each key's last bar end and
raises one alert per silence of ``gap`` seconds of open market, stamped at the
moment the silence reached ``gap``, either when the key's next bar shows the
silence or, while it lasts, once bars of other symbols of the same interval
end an interval past that moment (each call holds every bar closed so far, as
the processor gives them). Both ways give the same alert, so batch cuts do not
change the alerts; those alerts come after the other rules' in a call's list.

A symbol's state (:meth:`AlertEngine.snapshots`, :meth:`AlertEngine.restore_all`)
travels in the format of :mod:`marketpulse.alerts.snapshot`.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np

from marketpulse.alerts.conditions import Batch, condition, message, needs
from marketpulse.alerts.rings import KERNELS as RING_KERNELS
from marketpulse.alerts.rings import Rings
from marketpulse.alerts.rules import Rule, StaleFeedRule
from marketpulse.alerts.snapshot import (
    NEVER,
    JsonState,
    Loaded,
    PackedState,
    decode_state,
    encode_state,
)
from marketpulse.calendars import market_hours
from marketpulse.exceptions import RulesError
from marketpulse.models import Alert
from marketpulse.timeframes import parse_interval

__all__ = ["AlertEngine"]

logger = logging.getLogger(__name__)


class AlertEngine:
    """Evaluate rules on batches of closed bars, keeping state between batches.

    Args:
        rules: the rules to evaluate (see :mod:`marketpulse.alerts.rules`).
        dataset: the dataset of the bars, stamped on every alert (and part of
            its id, so that the same moment of two datasets gives two alerts).

    Raises:
        RulesError: a rule is invalid or two rules share a name.
    """

    def __init__(self, rules: Sequence[Rule], dataset: str | None = None) -> None:
        self._rules = list(rules)
        self.dataset = dataset
        names = [r.name for r in self._rules]
        for rule in self._rules:
            rule.validate()
            if names.count(rule.name) > 1:
                raise RulesError(f"duplicate rule name {rule.name!r}")
        self._rule_index = {name: i for i, name in enumerate(names)}
        self._rule_names = names
        self._cooldown_ns = [round(r.cooldown * 1e9) for r in self._rules]
        self._needs: dict[str, set[int]] = {}
        for rule in self._rules:
            for col, lags in needs(rule).items():
                self._needs.setdefault(col, set()).update(lags)
        # the earlier bars each column is read at (its ring is as deep as the largest)
        self._lags = {c: lags - {0} for c, lags in self._needs.items() if lags - {0}}
        self._stale = [ri for ri, r in enumerate(self._rules) if isinstance(r, StaleFeedRule)]
        self.reset()

    @property
    def rules(self) -> list[Rule]:
        """Return the rules, in evaluation order."""
        return list(self._rules)

    def reset(self) -> None:
        """Forget all state (previous bars and cooldowns)."""
        self._sym_ids: dict[str, int] = {}
        self._iv_ids: dict[str, int] = {}
        self._table = np.full((0, 0), -1, dtype=np.int32)
        self._keys: list[tuple[str, str]] = []
        self._slots_by_symbol: dict[str, list[int]] = {}
        self._rings = Rings(self._lags)
        self._last_fire = np.full((0, len(self._rules)), NEVER, dtype=np.int64)
        self._applies: list[np.ndarray] = []
        #: per rule, whether it watches every (symbol, interval) seen so far
        self._applies_all = [True] * len(self._rules)
        self._code_slots = np.full(0, -1, np.int64)  # evaluate(codes=...): code -> slot
        self._last_end = np.full(0, NEVER, np.int64)  # per slot, with stale-feed rules

    def kernels(self) -> tuple[object, ...]:
        """Return the numba kernels :meth:`evaluate` calls: the rings' if a rule reads back."""
        return RING_KERNELS if self._rings.columns else ()

    def evaluate(
        self, rows: Mapping[str, np.ndarray], codes: np.ndarray | None = None
    ) -> list[Alert]:
        """Evaluate the rules on closed bars, in time order per (symbol, timeframe).

        Args:
            rows: columns of equal length: ``symbol``, ``timeframe`` (object
                arrays of str), ``bar_start`` and ``bar_end`` (int64 ns),
                ``close``, ``volume`` and the indicator columns the rules read
                (float64, NaN when not warmed up).
            codes: optionally, a small non-negative integer per row naming its
                (symbol, timeframe), the same pair for the same code in every
                call to this engine: rows are then matched to their state
                without a string lookup per row.

        Returns:
            The alerts raised, in row order (then rule order within a row).
        """
        n = len(rows["bar_end"])
        needed = ("symbol", "timeframe", "bar_start", "bar_end", *self._needs)
        for name in needed:
            if name not in rows:
                raise ValueError(f"evaluate(): missing column {name!r}")
            if len(rows[name]) != n:
                raise ValueError(f"evaluate(): column {name!r} has {len(rows[name])} rows, not {n}")
        if n == 0:
            return []
        if codes is None:
            key = self._key_index(rows["symbol"], rows["timeframe"])
        else:
            key = self._coded_index(np.asarray(codes, np.int64), rows["symbol"], rows["timeframe"])
        columns = {c: np.asarray(rows[c], dtype=np.float64) for c in self._needs}
        batch = Batch(columns, self._rings.lag_and_push(columns, key))

        found = np.empty((n, len(self._rules)), bool)  # row by rule
        found_values = []
        for ri, rule in enumerate(self._rules):
            if isinstance(rule, StaleFeedRule):
                found[:, ri] = False
                found_values.append({})
                continue
            watched = None if self._applies_all[ri] else self._applies[ri][key]
            mask, values = condition(rule, batch, watched)
            found[:, ri] = mask if watched is None else mask & watched
            found_values.append(values)
        alerts = []
        if found.any():
            cand_rows, cand_rules = np.nonzero(found)  # in row order, then rule order
            alerts = self._fire(rows, key, cand_rows, cand_rules, found_values)
        if self._stale:
            alerts += self._stale_alerts(rows, key)
        return alerts

    def _stale_alerts(self, rows: Mapping[str, np.ndarray], key: np.ndarray) -> list[Alert]:
        """Raise the stale-feed alerts of a call's rows; advance each key's last bar end."""
        starts = np.asarray(rows["bar_start"], np.int64)
        ends = np.asarray(rows["bar_end"], np.int64)
        order = np.argsort(key, kind="stable")
        k, e = key[order], ends[order]
        first = np.ones(len(k), bool)
        first[1:] = k[1:] != k[:-1]
        prev_sorted = np.empty(len(k), np.int64)
        prev_sorted[1:] = e[:-1]
        prev_sorted[first] = self._last_end[k[first]]
        prev = np.empty_like(prev_sorted)
        prev[order] = prev_sorted
        last = np.roll(first, -1)
        self._last_end[k[last]] = e[last]
        found: list[tuple[int, int, int, int]] = []  # (slot, rule, last bar end, deadline)
        for ri in self._stale:
            rule = self._rules[ri]
            gap = round(rule.gap * 1e9)
            hours = market_hours(rule.calendar)
            seen = (prev != NEVER) & self._applies[ri][key]
            deadline = hours.open_after(prev[seen], gap)
            hit = starts[seen] >= deadline  # no bar began during the silence
            for row, when in zip(
                np.flatnonzero(seen)[hit].tolist(), deadline[hit].tolist(), strict=True
            ):
                found.append((int(key[row]), ri, int(prev[row]), when))
        found += self._silent_now()
        return [alert for alert in map(self._stale_alert, found) if alert is not None]

    def _silent_now(self) -> list[tuple[int, int, int, int]]:
        """The keys whose silence reached its gap an interval before their interval's clock."""
        slots = len(self._keys)
        if not slots:
            return []
        ivs = np.array([self._iv_ids[iv] for _, iv in self._keys], np.int64)
        ends = self._last_end[:slots]
        clock = np.full(len(self._iv_ids), NEVER, np.int64)
        np.maximum.at(clock, ivs, ends)
        length = np.array([_length_ns(iv) for iv in self._iv_ids], np.int64)
        found = []
        for ri in self._stale:
            rule = self._rules[ri]
            candidates = np.flatnonzero(self._applies[ri][:slots] & (ends != NEVER))
            deadline = market_hours(rule.calendar).open_after(
                ends[candidates], round(rule.gap * 1e9)
            )
            iv = ivs[candidates]
            late = deadline <= clock[iv] - length[iv]  # every bar begun before it has closed
            for slot, when in zip(candidates[late].tolist(), deadline[late].tolist(), strict=True):
                found.append((slot, ri, int(ends[slot]), when))
        return found

    def _stale_alert(self, found: tuple[int, int, int, int]) -> Alert | None:
        """The alert of one silence, unless raised already or held back by the cooldown."""
        slot, ri, since, ts = found
        last = int(self._last_fire[slot, ri])
        if last != NEVER and (last >= ts or ts < last + self._cooldown_ns[ri]):
            return None
        self._last_fire[slot, ri] = ts
        rule = self._rules[ri]
        symbol, timeframe = self._keys[slot]
        details: dict[str, float | None] = {"last_bar_end": since / 1e9, "gap": float(rule.gap)}
        key_text = f"{rule.name}|{symbol}|{timeframe}|{ts}"
        if self.dataset is not None:
            key_text += f"|{self.dataset}"
        ident = hashlib.sha1(key_text.encode()).hexdigest()[:16]
        text = message(rule, symbol, timeframe, details)
        return Alert(
            ident, rule.name, symbol, timeframe, since, ts, rule.severity, text, details,
            self.dataset,
        )  # fmt: skip

    def _fire(self, rows, key, cand_rows, cand_rules, found_values) -> list[Alert]:
        """Apply the cooldown to the candidate rows and build their alerts."""
        alerts = []
        symbols, timeframes, dataset = rows["symbol"], rows["timeframe"], self.dataset
        starts = np.asarray(rows["bar_start"])[cand_rows].tolist()
        for row, ri, k, ts, start in zip(
            cand_rows.tolist(),
            cand_rules.tolist(),
            key[cand_rows].tolist(),
            np.asarray(rows["bar_end"])[cand_rows].tolist(),
            starts,
            strict=True,
        ):
            last = int(self._last_fire[k, ri])
            if last != NEVER and ts < last + self._cooldown_ns[ri]:
                continue
            self._last_fire[k, ri] = ts
            rule = self._rules[ri]
            details = {
                name: _float(v[row] if isinstance(v, np.ndarray) else v)
                for name, v in found_values[ri].items()
            }
            symbol, timeframe = str(symbols[row]), str(timeframes[row])
            key_text = f"{rule.name}|{symbol}|{timeframe}|{ts}"
            if dataset is not None:
                key_text += f"|{dataset}"
            ident = hashlib.sha1(key_text.encode()).hexdigest()[:16]
            text = message(rule, symbol, timeframe, details)
            alerts.append(
                Alert(ident, rule.name, symbol, timeframe, start, ts, rule.severity, text,
                      details, dataset)
            )  # fmt: skip
        logger.debug("%d alerts from %d candidate rows", len(alerts), len(cand_rows))
        return alerts

    def _key_index(self, symbols: np.ndarray, intervals: np.ndarray) -> np.ndarray:
        """Map each row to the slot of its (symbol, interval), creating new slots."""
        sid = _ids(symbols, self._sym_ids)
        iid = _ids(intervals, self._iv_ids)
        self._grow_table()
        slot = self._table[sid, iid]
        missing = slot < 0
        if missing.any():
            n_iv = len(self._iv_ids)
            codes = np.unique(sid[missing] * n_iv + iid[missing])
            self._new_slots_of(codes // n_iv, codes % n_iv)
            slot = self._table[sid, iid]
        return slot

    def _coded_index(
        self, codes: np.ndarray, symbols: np.ndarray, intervals: np.ndarray
    ) -> np.ndarray:
        """Map each row to its slot through its code, learning the codes not seen before."""
        top = int(codes.max()) + 1
        if top > len(self._code_slots):
            grown = np.full(max(top, 2 * len(self._code_slots)), -1, np.int64)
            grown[: len(self._code_slots)] = self._code_slots
            self._code_slots = grown
        slot = self._code_slots[codes]
        new = np.flatnonzero(slot < 0)
        if new.size:
            _, first = np.unique(codes[new], return_index=True)
            rows = new[first]
            self._code_slots[codes[rows]] = self._key_index(symbols[rows], intervals[rows])
            slot = self._code_slots[codes]
        return slot

    def _grow_table(self) -> None:
        rows, columns = self._table.shape
        if len(self._sym_ids) > rows or len(self._iv_ids) > columns:
            # symbols double the rows: one new symbol at a time must not copy the table
            shape = (max(len(self._sym_ids), 2 * rows), len(self._iv_ids))
            table = np.full(shape, -1, dtype=np.int32)
            table[: self._table.shape[0], : self._table.shape[1]] = self._table
            self._table = table

    def _slot(self, symbol: str, interval: str) -> int:
        """Return the slot of (symbol, interval), creating it if new."""
        slot = self._find(symbol, interval)
        if slot >= 0:
            return slot
        self._new_slots([(symbol, interval)])
        return len(self._keys) - 1

    def _new_slots(self, pairs: Sequence[tuple[str, str]]) -> None:
        """Create the slots of new (symbol, interval) pairs, in order."""
        sids = [self._sym_ids.setdefault(symbol, len(self._sym_ids)) for symbol, _ in pairs]
        iids = [self._iv_ids.setdefault(interval, len(self._iv_ids)) for _, interval in pairs]
        self._new_slots_of(np.array(sids, np.int64), np.array(iids, np.int64))

    def _new_slots_of(self, sids: np.ndarray, iids: np.ndarray) -> None:
        """Create the slots of new (symbol id, interval id) pairs, in order, growing arrays once.

        A catch-up over 100,000 symbols meets 300,000 of them: which rules
        watch each is decided per distinct interval and symbol, with arrays,
        not with a Python call per (pair, rule).
        """
        n = len(sids)
        first, top = len(self._keys), len(self._keys) + n
        capacity = self._last_fire.shape[0]
        if top > capacity:  # grow the state arrays by doubling at least
            extra = max(top - capacity, capacity, 16)
            self._last_fire = np.vstack(
                [self._last_fire, np.full((extra, len(self._rules)), NEVER, dtype=np.int64)]
            )
            self._rings.grow(extra)
            self._last_end = np.concatenate([self._last_end, np.full(extra, NEVER, np.int64)])
            capacity += extra
        self._grow_table()
        self._table[sids, iids] = np.arange(first, top, dtype=np.int32)
        sym_names, iv_names = list(self._sym_ids), list(self._iv_ids)
        symbols = [sym_names[i] for i in sids.tolist()]
        self._keys.extend(zip(symbols, [iv_names[i] for i in iids.tolist()], strict=True))
        by_symbol = self._slots_by_symbol
        for slot, symbol in enumerate(symbols, first):
            by_symbol.setdefault(symbol, []).append(slot)
        distinct: tuple[np.ndarray, np.ndarray] | None = None  # the pairs' symbols, once
        for ri, rule in enumerate(self._rules):
            if ri == len(self._applies):
                self._applies.append(np.zeros(0, dtype=bool))
            if self._applies[ri].size < capacity:
                grown = np.zeros(capacity, dtype=bool)
                grown[: self._applies[ri].size] = self._applies[ri]
                self._applies[ri] = grown
            if rule.intervals is None and rule.symbols is None:  # watches every key
                self._applies[ri][first:top] = True
                continue
            watched = np.ones(n, bool)
            if rule.intervals is not None:
                watched &= np.array([iv in rule.intervals for iv in iv_names], bool)[iids]
            if rule.symbols is not None:
                if distinct is None:
                    distinct = np.unique(sids, return_inverse=True)
                known, where = distinct
                watched &= np.array([sym_names[i] in rule.symbols for i in known.tolist()],
                                    bool)[where]  # fmt: skip
            self._applies[ri][first:top] = watched
            self._applies_all[ri] = self._applies_all[ri] and bool(watched.all())

    def snapshot(self, symbol: str) -> bytes:
        """Return all state for ``symbol`` as bytes (for the ``state`` topic)."""
        return self.snapshots([symbol])[0]

    def snapshots(self, symbols: Sequence[str]) -> list[bytes]:
        """:meth:`snapshot` of each of ``symbols``, their arrays gathered in one pass."""
        per = [self._slots_by_symbol.get(symbol, ()) for symbol in symbols]
        counts = [len(slots) for slots in per]
        slots = np.fromiter(itertools.chain.from_iterable(per), np.int64, sum(counts))
        rings = self._rings.rows(slots)
        ring_size, fire_size = 8 * rings.shape[1], 8 * len(self._rules)
        ring_bytes = rings.astype("<f8").tobytes()
        fired = self._last_fire[slots].astype("<i8").tobytes()
        ends = self._last_end[slots] if self._stale else np.full(len(slots), NEVER, np.int64)
        end_bytes = ends.astype("<i8").tobytes()
        intervals = [self._keys[slot][1] for slot in slots.tolist()]
        columns, depths, rules = self._rings.columns, self._rings.depths, self._rule_names
        out, at = [], 0
        for symbol, n in zip(symbols, counts, strict=True):
            to = at + n
            state = PackedState(
                symbol, intervals[at:to], columns, depths, rules,
                ring_bytes[at * ring_size : to * ring_size],
                fired[at * fire_size : to * fire_size], end_bytes[at * 8 : to * 8],
            )  # fmt: skip
            out.append(encode_state(state))
            at = to
        return out

    def restore(self, symbol: str, data: bytes) -> None:
        """Replace the state of ``symbol`` with a :meth:`snapshot` of it.

        Snapshots written before :class:`PackedState` (JSON) restore too.

        Raises:
            ValueError: ``data`` is not a snapshot of ``symbol``.
        """
        self.restore_all([self.load(symbol, data)])

    def load(self, symbol: str, data: bytes) -> JsonState | Loaded:
        """Decode and check a :meth:`snapshot` of ``symbol``, for :meth:`restore_all`.

        Raises:
            ValueError: ``data`` is not a snapshot of ``symbol``.
        """
        return decode_state(symbol, data)

    def restore_all(self, states: Sequence[JsonState | Loaded]) -> None:
        """Replace the state of each symbol :meth:`load` read, in one pass per layout.

        A partition's restore sets up to 100,000 symbols; one slot and one
        value at a time, that took seconds.
        """
        symbols = [s.state.symbol if isinstance(s, Loaded) else s.symbol for s in states]
        old = [slot for symbol in symbols for slot in self._slots_by_symbol.get(symbol, ())]
        if old:
            at = np.array(old, np.int64)
            self._last_fire[at] = NEVER
            self._last_end[at] = NEVER
            for ring in self._rings.views.values():
                ring[at] = np.nan
        for state in states:
            if isinstance(state, JsonState):
                self._restore_json(state)
        packed = [s for s in states if isinstance(s, Loaded)]
        pairs = [(s.state.symbol, interval) for s in packed for interval in s.state.intervals]
        slots = self._key_index(
            np.array([symbol for symbol, _ in pairs], object),
            np.array([interval for _, interval in pairs], object),
        )
        layouts: dict[tuple, list[tuple[Loaded, np.ndarray]]] = {}
        at = 0
        for loaded in packed:
            state, n = loaded.state, len(loaded.state.intervals)
            layout = (tuple(state.columns), tuple(state.depths), tuple(state.rules))
            layouts.setdefault(layout, []).append((loaded, slots[at : at + n]))
            at += n
        for (columns, depths, rules), group in layouts.items():
            where = np.concatenate([keys for _, keys in group])
            rings = np.concatenate([loaded.rings for loaded, _ in group])
            fired = np.concatenate([loaded.fired for loaded, _ in group])
            ends = np.concatenate([loaded.ends for loaded, _ in group])
            starts = np.cumsum([0, *depths]).tolist()
            for column, start, depth in zip(columns, starts[:-1], depths, strict=True):
                ring = self._rings.views.get(column)
                if ring is not None:  # a column no rule reads now is ignored
                    kept, end = min(depth, ring.shape[1]), start + depth
                    ring[where, ring.shape[1] - kept :] = rings[:, end - kept : end]
            known = ends != NEVER
            self._last_end[where[known]] = ends[known]
            for r, name in enumerate(rules):
                ri = self._rule_index.get(name)  # a rule removed since is ignored
                if ri is not None:
                    known = fired[:, r] != NEVER
                    self._last_fire[where[known], ri] = fired[known, r]

    def _restore_json(self, state: JsonState) -> None:
        """Restore a symbol's state written as JSON (before :class:`PackedState`)."""
        for ks in state.keys:
            slot = self._slot(state.symbol, ks.interval)
            for col, ring in self._rings.views.items():
                kept = [np.nan if v is None else v for v in ks.history.get(col, [])]
                kept = kept[-ring.shape[1] :]
                if kept:
                    ring[slot, ring.shape[1] - len(kept) :] = kept
            if ks.last_end is not None:
                self._last_end[slot] = ks.last_end
            for name, ts in ks.last_fire.items():
                if name in self._rule_index:  # a rule removed since is ignored
                    self._last_fire[slot, self._rule_index[name]] = ts

    def _find(self, symbol: str, interval: str) -> int:
        """The slot of (symbol, interval), ``-1`` if it has none yet."""
        sid, iid = self._sym_ids.get(symbol), self._iv_ids.get(interval)
        if sid is None or iid is None:
            return -1
        return int(self._table[sid, iid])  # the table always covers the ids (_grow_table)


def _ids(values: np.ndarray, ids: dict[str, int]) -> np.ndarray:
    """Map strings to dense ids, adding unseen strings to ``ids``."""
    try:
        return np.fromiter(map(ids.__getitem__, values), dtype=np.int64, count=len(values))
    except KeyError:
        for value in dict.fromkeys(np.asarray(values).tolist()):  # first-seen order
            ids.setdefault(value, len(ids))
        return np.fromiter(map(ids.__getitem__, values), dtype=np.int64, count=len(values))


def _float(value: float) -> float | None:
    value = float(value)
    return None if value != value else value


def _length_ns(interval: str) -> int:
    """An interval's length; a day or a week for session intervals."""
    parsed = parse_interval(interval)
    if parsed.length:
        return parsed.length
    return 86_400 * 10**9 * (7 if parsed.unit == "w" else 1)
