"""An alert engine's state of one symbol as the ``state`` topic carries it.

:class:`PackedState` is what is written: msgpack of arrays, one row per key
(interval), so that the snapshots of every changed symbol are gathered at once
(:meth:`~marketpulse.alerts.engine.AlertEngine.snapshots`). Each ring column
and rule is named, so a snapshot restores under other rules too. Snapshots
written by earlier releases, JSON of :class:`JsonState`, are read as well:
their first byte is ``{``, which no msgpack array starts with.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import msgspec
import numpy as np

__all__ = [
    "NEVER",
    "JsonState",
    "KeyState",
    "Loaded",
    "PackedState",
    "decode_state",
    "encode_state",
]

#: A time that never was: no alert fired, no bar end kept.
NEVER = np.iinfo(np.int64).min


class KeyState(msgspec.Struct, frozen=True, omit_defaults=True):
    """One key's state in a JSON snapshot."""

    interval: str  # the timeframe (the name of the state records written so far)
    history: dict[str, list[float | None]]
    last_fire: dict[str, int]
    last_end: int | None = None  # end of the key's last bar (kept with stale-feed rules)


class JsonState(msgspec.Struct, frozen=True):
    """A symbol's state as JSON, key by key: what releases before :class:`PackedState` wrote."""

    symbol: str
    keys: list[KeyState]
    version: int = 1


class PackedState(msgspec.Struct, frozen=True, array_like=True):
    """A symbol's alert state as arrays, one row per key (interval): what is written now.

    Gathered for every changed symbol at once (the JSON of :class:`JsonState`,
    built key by key, cost a third of a commit at 100,000 symbols); still named
    column by column and rule by rule, so it restores under other rules too.
    """

    symbol: str
    intervals: list[str]
    columns: list[str]  # the rings' columns
    depths: list[int]  # the values each column keeps
    rules: list[str]
    rings: bytes  # little-endian float64 (keys, sum of depths): each column's ring, oldest
    # first, one after the other; NaN: no bar
    fired: bytes  # little-endian int64 (keys, rules): each rule's last alert; NEVER: none
    ends: bytes  # little-endian int64 (keys,): the key's last bar end; NEVER: not kept


class Loaded(NamedTuple):
    """A packed snapshot decoded and checked, with its arrays."""

    state: PackedState
    rings: np.ndarray
    fired: np.ndarray
    ends: np.ndarray


_json = msgspec.json.Decoder(JsonState)
_packer = msgspec.msgpack.Encoder()
_unpacker = msgspec.msgpack.Decoder(PackedState)


def encode_state(state: PackedState) -> bytes:
    """The bytes of a snapshot."""
    return _packer.encode(state)


def decode_state(symbol: str, data: bytes) -> JsonState | Loaded:
    """Decode and check a snapshot of ``symbol`` (packed, or JSON as written before).

    Raises:
        ValueError: ``data`` is not a snapshot of ``symbol``.
    """
    try:
        state = _json.decode(data) if data[:1] == b"{" else _unpacker.decode(data)
    except msgspec.MsgspecError as exc:
        raise ValueError(f"invalid alert state for {symbol!r}: {exc}") from exc
    if state.symbol != symbol:
        raise ValueError(f"alert state is for {state.symbol!r}, not {symbol!r}")
    if isinstance(state, PackedState):
        return Loaded(state, *_unpack(state))
    return state


def _unpack(state: PackedState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings, last alerts and last bar ends of a packed state, as arrays.

    Raises:
        ValueError: their sizes do not match its keys, columns, depth and rules.
    """
    keys = len(state.intervals)
    if len(state.depths) != len(state.columns) or min(state.depths, default=1) < 1:
        raise ValueError(f"alert state of {state.symbol!r}: depths {state.depths} do not fit "
                         f"columns {state.columns}")  # fmt: skip
    shapes = {"rings": (keys, sum(state.depths)), "fired": (keys, len(state.rules)),
              "ends": (keys,)}  # fmt: skip
    out = []
    for name, dtype in (("rings", "<f8"), ("fired", "<i8"), ("ends", "<i8")):
        data, shape = getattr(state, name), shapes[name]
        if len(data) != 8 * math.prod(shape):
            raise ValueError(f"alert state of {state.symbol!r}: {name} holds {len(data)} bytes, "
                             f"not {8 * math.prod(shape)}")  # fmt: skip
        out.append(np.frombuffer(data, dtype).reshape(shape))
    return out[0], out[1], out[2]
