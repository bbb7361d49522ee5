"""The processor's state of one partition as records of the compacted ``state`` topic.

One record per symbol (key: the symbol) holds its open windows, the
indicator state of each of its intervals and its alert state; one record per
partition (key :data:`META_KEY`) holds the partition's clock (watermark), how
many symbols it has named, and the dataset its outputs carry (records written
before datasets hold none, and restore under any). The symbols' names, in the
order they were first seen (which fixes the order of bars closed together), are
in records of :data:`NAMES_PER_RECORD` names each (keys ``__names__:0``,
``__names__:1``, ...): a transaction writes again only the one whose names
grew, never the whole list (at 100,000 symbols the partition record with every
name was about 130 kB in every transaction of every partition). Records of the
first version hold the names in the partition record, and restore as before.
Only the symbols a batch changed are written again, in the same transaction as
the outputs and the consumed offsets, so the latest record of every key is
always the state at the committed offset.

With forecasting models (:mod:`marketpulse.forecast.stage`), each symbol record
also holds its series' models and last bars, pickled.

A partition that has had quotes (:mod:`marketpulse.stream.quote_windows`) says
so in its partition record, and each symbol record holds the symbol's quote
in force, tick-test state, windows' quote sums and pending quotes; records
written before quotes have neither, and restore as a partition without quotes.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping

import msgspec
import numpy as np

from marketpulse.indicators import DEFAULT
from marketpulse.indicators.declare import split_declarations
from marketpulse.stream.partition import PartitionState
from marketpulse.stream.quote_windows import QuoteState
from marketpulse.timeframes import N_INTERVAL_KEYS

__all__ = [
    "META_KEY",
    "NAMES_KEY",
    "NAMES_PER_RECORD",
    "CheckpointError",
    "restore_partition",
    "snapshot_partition",
]

#: Key of the partition record; never a valid symbol (symbols are upper case).
META_KEY = b"__partition__"
#: Prefix of the keys of the names records (``__names__:0``, ...); never a valid symbol.
NAMES_KEY = b"__names__:"
#: Symbols' names in one names record: a record is written again while its names grow.
NAMES_PER_RECORD = 1024
_VERSION = 2  # 2: the names in records of their own (1: in the partition record)
_N_INTERVAL_KEYS = N_INTERVAL_KEYS  # indicator keys of a symbol: sid * n + interval key


class _PartitionMeta(msgspec.Struct, frozen=True):
    version: int
    intervals: list[str]
    lateness: int
    clock: list[int]
    closed: list[int]
    names: list[str]  # version 1: every name; version 2: none (the names records hold them)
    dataset: str | None = None
    indicators: str | None = None  # the declared set's text; None: written before declarations
    fill_gaps: bool = False
    conditions: str = "none"  # the sale-condition rules (stream.tape)
    quotes: bool = False  # the partition has had quotes: its symbols' records hold their state
    count: int = -1  # version 2: the symbols named, in the names records; -1: version 1


class _SymbolState(msgspec.Struct, frozen=True):
    version: int
    symbol: str
    sid: int
    windows: bytes
    indicators: dict[int, bytes]
    alerts: bytes
    quotes: bytes = b""  # the quote state (a partition with quotes); empty: none
    forecasts: bytes = b""  # the forecasting models' state of its series, pickled; empty: none


_encoder = msgspec.msgpack.Encoder()
_meta_decoder = msgspec.msgpack.Decoder(_PartitionMeta)
_names_decoder = msgspec.msgpack.Decoder(list[str])
_symbol_decoder = msgspec.msgpack.Decoder(_SymbolState)


class CheckpointError(ValueError):
    """A state record cannot be restored (corrupt, or written with other settings)."""


def snapshot_partition(
    state: PartitionState,
    intervals: Iterable[str],
    sids: Iterable[int],
    dataset: str | None = None,
    indicators: str = DEFAULT.text,
    names_from: int = 0,
) -> list[tuple[bytes, bytes]]:
    """Return the partition record, the names records due, and the records of ``sids``.

    ``names_from``: the symbols whose names the ``state`` topic already holds (the
    names records written before hold the first ``names_from``); the records of the
    names from there on are written, each with every name of its record.
    """
    windows = state.windows
    count = len(state.names)
    meta = _PartitionMeta(
        _VERSION, list(intervals), windows.lateness, windows.clock.tolist(),
        windows.closed.tolist(), [], dataset, indicators, windows.fill,
        "lean" if windows.hold else "none",
        state.quotes is not None, count,
    )  # fmt: skip
    records = [(META_KEY, _encoder.encode(meta))]
    start = names_from - names_from % NAMES_PER_RECORD if names_from < count else count
    for first in range(start, count, NAMES_PER_RECORD):
        names = state.names[first : first + NAMES_PER_RECORD].tolist()
        records.append((b"%s%d" % (NAMES_KEY, first // NAMES_PER_RECORD), _encoder.encode(names)))
    order = np.array(sorted(sids), np.int64)
    if not len(order):
        return records
    # the arrays of all the symbols are cut into bytes together, then shared out
    keys = order[:, None] * _N_INTERVAL_KEYS + np.arange(_N_INTERVAL_KEYS)
    used = state.indicators.bar_counts(keys) > 0
    snapshots = state.indicators.snapshots(keys[used])
    # each symbol's interval keys with state, row by row as keys[used] holds them
    rows, indices = np.nonzero(used)
    bounds = np.searchsorted(rows, np.arange(len(order) + 1)).tolist()
    indices = indices.tolist()
    quotes = (
        state.quotes.snapshot_symbols(order) if state.quotes is not None else [b""] * len(order)
    )
    symbols = state.names[order].tolist()
    for sid, symbol, window, start, end, quote, alerts in zip(
        order.tolist(), symbols, windows.snapshot_symbols(order), bounds[:-1], bounds[1:], quotes,
        state.alerts.snapshots(symbols), strict=True,
    ):  # fmt: skip
        indicators = dict(zip(indices[start:end], snapshots[start:end], strict=True))
        series = state.forecasts.get(symbol)
        # the models are River's Python objects: pickled (the state topic is the
        # processor's own, never a user's input)
        forecasts = pickle.dumps(series, protocol=5) if series else b""
        value = _SymbolState(_VERSION, symbol, sid, window, indicators, alerts, quote, forecasts)
        records.append((symbol.encode(), _encoder.encode(value)))
    return records


def restore_partition(
    state: PartitionState,
    intervals: Iterable[str],
    records: Mapping[bytes, bytes],
    dataset: str | None = None,
    indicators: str = DEFAULT.text,
) -> int:
    """Set a fresh partition state from its records; return the symbols restored.

    Raises:
        CheckpointError: a record is corrupt or the state was built with other
            intervals or lateness, for another dataset (its indicators would
            run on into this one's), or with other declared indicators (their
            state would not fit: refused rather than silently wrong).
    """
    raw = records.get(META_KEY)
    if raw is None:
        if records:
            raise CheckpointError("state records without a partition record")
        return 0
    try:
        meta = _meta_decoder.decode(raw)
    except msgspec.MsgspecError as exc:
        raise CheckpointError(f"corrupt partition record: {exc}") from None
    windows = state.windows
    if meta.intervals != list(intervals) or meta.lateness != windows.lateness:
        raise CheckpointError(
            f"state was written with intervals {','.join(meta.intervals)} and lateness "
            f"{meta.lateness / 1e9:g} s, not {','.join(intervals)} and "
            f"{windows.lateness / 1e9:g} s: keep the settings, or start over on new topics"
        )
    if meta.fill_gaps != windows.fill:
        said = "with" if meta.fill_gaps else "without"
        raise CheckpointError(
            f"state was written {said} --fill-gaps: keep the setting, or start over on new topics"
        )
    if meta.conditions != ("lean" if windows.hold else "none"):
        raise CheckpointError(
            f"state was written with --conditions {meta.conditions}: keep the setting, or "
            "start over on new topics"
        )
    if meta.dataset is not None and dataset is not None and meta.dataset != dataset:
        raise CheckpointError(
            f"state was written for dataset {meta.dataset}, not {dataset}: one ticks topic "
            f"carries one dataset (keep --dataset {meta.dataset}, or use a topic prefix per "
            "dataset)"
        )
    written = meta.indicators or DEFAULT.text  # older records: the default set
    if written != indicators:
        raise CheckpointError(
            "state was written with other declared indicators "
            f"({_difference(written, indicators)}): "
            "keep the declared indicators, or start the new set on new topics (a new "
            "topic prefix) and fill its history with `marketpulse backfill`"
        )
    state.lookup(meta.names if meta.count < 0 else _names(records, meta.count))
    windows.clock[: len(meta.clock)] = np.asarray(meta.clock, np.int64)  # older: 3 values
    windows.closed[:] = np.asarray(meta.closed, np.int64)
    if meta.quotes:
        state.quotes = QuoteState(windows)
    restored = 0
    keys: list[int] = []  # indicator keys and their snapshots, restored in one pass
    snapshots: list[bytes] = []
    alerts = []  # the symbols' alert states, checked here and restored in one pass
    for key, value in records.items():
        if key == META_KEY or key.startswith(NAMES_KEY):
            continue
        try:
            symbol = _symbol_decoder.decode(value)
            if state.sids.get(symbol.symbol) != symbol.sid:
                raise CheckpointError(f"symbol {symbol.symbol} has no id {symbol.sid}")
            windows.restore_symbol(symbol.sid, symbol.windows)
            for index, data in symbol.indicators.items():
                state.indicators.check_snapshot(data)
                keys.append(symbol.sid * _N_INTERVAL_KEYS + index)
                snapshots.append(data)
            alerts.append(state.alerts.load(symbol.symbol, symbol.alerts))
            if symbol.quotes and state.quotes is not None:
                state.quotes.restore_symbol(symbol.sid, symbol.quotes)
            if symbol.forecasts:
                state.forecasts[symbol.symbol] = pickle.loads(symbol.forecasts)  # noqa: S301
        except (msgspec.MsgspecError, ValueError, pickle.UnpicklingError) as exc:
            raise CheckpointError(f"state of {key.decode(errors='replace')}: {exc}") from None
        restored += 1
    state.indicators.restore_many(np.array(keys, np.int64), snapshots)
    state.alerts.restore_all(alerts)
    return restored


def _names(records: Mapping[bytes, bytes], count: int) -> list[str]:
    """The first ``count`` symbols' names, from the names records.

    Raises:
        CheckpointError: a names record is missing, corrupt or short.
    """
    names: list[str] = []
    for index in range(-(-count // NAMES_PER_RECORD)):
        key = b"%s%d" % (NAMES_KEY, index)
        raw = records.get(key)
        if raw is None:
            raise CheckpointError(
                f"the partition names {count} symbols, and {key.decode()} is missing"
            )
        try:
            part = _names_decoder.decode(raw)
        except msgspec.MsgspecError as exc:
            raise CheckpointError(f"corrupt names record {key.decode()}: {exc}") from None
        names += part
    if len(names) < count:
        raise CheckpointError(
            f"the partition names {count} symbols, its names records {len(names)}"
        )
    return names[:count]


def _difference(written: str, declared: str, limit: int = 200) -> str:
    """What a declared set adds and drops against the one state was written with."""
    old, new = split_declarations(written), split_declarations(declared)
    dropped = [p for p in old if p not in new]
    added = [p for p in new if p not in old]
    # names alone, unless a name stays with other parameters: then the whole declaration
    changed = {_name(p) for p in dropped} & {_name(p) for p in added}
    dropped = [p if _name(p) in changed else _name(p) for p in dropped]
    added = [p if _name(p) in changed else _name(p) for p in added]
    parts = [f"not declared now: {', '.join(dropped)}"] if dropped else []
    parts += [f"new: {', '.join(added)}"] if added else []
    text = "; ".join(parts) or "the same indicators in another order"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _name(declaration: str) -> str:
    return declaration.split("=", 1)[0]
