"""Message types of MarketPulse and their wire codecs.

In flight (these structs, the Arrow tables between stages, the Kafka wire)
every timestamp is an integer count of nanoseconds since the Unix epoch, UTC:
``ts`` is event time (from the exchange), ``ts_ingest`` the time MarketPulse
first saw the event, ``bar_start`` and ``bar_end`` bound a bar. Where people
and their tools read them (the lake, SQL, PostgreSQL, JSON/CSV output, the
REST API) they are real timestamp types: :data:`STORED_TIME` in Arrow and
Parquet. Prices are float64 and never rounded.

Bars, indicators and alerts share one key: (dataset, symbol, timeframe,
bar_start). Column names need no quoting in DuckDB, PostgreSQL or Trino
(``timeframe``, not ``interval``; ``bar_start``/``bar_end``, not
``start``/``end``; an alert's ``details``, not ``values``). Every output
carries the ``dataset`` its input came from.

The ``ticks`` topic carries one tagged union, :data:`Tick`, of :class:`Trade`,
:class:`Quote` and :class:`Bar` (feeds that deliver bars, such as daily OHLCV
files). The tag lives in the ``type`` field of the JSON object.

Besides the per-message structs, the hot path moves columns: Arrow schemas for
each table are defined here too (``TRADE_SCHEMA``, ``BAR_SCHEMA``, ...), so a
feed, the processor and the sinks agree on column names and types.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import msgspec
import pyarrow as pa

__all__ = [
    "ALERT_SCHEMA",
    "BAR_QUOTE_COLUMNS",
    "BAR_SCHEMA",
    "BAR_TABLE_SCHEMA",
    "CUSTOM_SCHEMA",
    "DATASET_NAME",
    "DLQ_SCHEMA",
    "INDICATOR_COLUMNS",
    "INDICATOR_KEY_COLUMNS",
    "INDICATOR_SCHEMA",
    "INTERVALS",
    "NEWS_SCHEMA",
    "PREDICTION_SCHEMA",
    "QUOTE_SCHEMA",
    "STORED_TIME",
    "TRADE_SCHEMA",
    "Alert",
    "Bar",
    "CustomValue",
    "DeadLetter",
    "Indicators",
    "NewsItem",
    "Prediction",
    "Quote",
    "QuotedBar",
    "Tick",
    "Trade",
    "decode_tick",
    "decode_tick_json",
    "encode",
    "indicator_schema",
    "indicators_struct",
    "interval_ns",
    "is_dataset_name",
    "watchlist_columns",
]

NS_PER_S = 1_000_000_000

#: Well-known bar intervals, with their nominal length in nanoseconds (for
#: guessing the interval of bar files). Any whole number of seconds, minutes or
#: hours is an interval (:mod:`marketpulse.timeframes`); ``1d`` is the exchange
#: session, not 24 hours of UTC (built from ticks by sessions, not fixed windows).
INTERVALS: dict[str, int] = {
    "1s": NS_PER_S,
    "5s": 5 * NS_PER_S,
    "15s": 15 * NS_PER_S,
    "1m": 60 * NS_PER_S,
    "5m": 300 * NS_PER_S,
    "15m": 900 * NS_PER_S,
    "1h": 3600 * NS_PER_S,
    "1d": 86400 * NS_PER_S,
}

#: The indicator columns, in the order they appear everywhere.
INDICATOR_COLUMNS: tuple[str, ...] = (
    "sma_20",
    "ema_12",
    "ema_26",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "atr_14",
    "vwap",
    "volume_sma_20",
)


#: A dataset's name: a letter or digit, then up to 63 letters, digits, ``.``,
#: ``_`` or ``-``; safe in a folder name (``dataset=NAME``), a URL and SQL literals.
DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def is_dataset_name(name: str) -> bool:
    """Tell whether ``name`` is a valid dataset name (:data:`DATASET_NAME`)."""
    return DATASET_NAME.fullmatch(name) is not None


def interval_ns(interval: str) -> int:
    """Return the nominal length of ``interval`` (``"1m"``, ``"4h"``) in nanoseconds.

    ``1d`` counts 24 hours and ``1w`` 7 days (a delivered bar's nominal end).

    Raises:
        ValueError: if the interval is not one (:func:`marketpulse.timeframes.parse_interval`).
    """
    if interval in INTERVALS:
        return INTERVALS[interval]
    from marketpulse.timeframes import parse_interval

    parsed = parse_interval(interval)
    return parsed.length or (86_400 if parsed.unit == "d" else 7 * 86_400) * NS_PER_S


class Trade(msgspec.Struct, frozen=True, omit_defaults=True, tag="trade", tag_field="type"):
    """One trade print."""

    symbol: str
    ts: int
    price: float
    size: float
    exchange: str | None = None
    condition: str | None = None
    ts_ingest: int | None = None
    extra: dict[str, Any] | None = None


class Quote(msgspec.Struct, frozen=True, omit_defaults=True, tag="quote", tag_field="type"):
    """A top-of-book quote."""

    symbol: str
    ts: int
    bid: float
    bid_size: float | None  # None: not given (a file's quotes without sizes)
    ask: float
    ask_size: float | None
    ts_ingest: int | None = None
    extra: dict[str, Any] | None = None


class Bar(msgspec.Struct, frozen=True, tag="bar", tag_field="type"):
    """An OHLCV bar covering ``[bar_start, bar_end)``.

    ``dataset`` is set on the processor's output; bars a feed delivers on the
    ``ticks`` topic leave it out.
    """

    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float | None = None
    trades: int = 0
    dataset: str | None = None


#: The columns a bar gains from its symbol's quotes, after ``dataset`` (float64, null
#: where unknown; :mod:`marketpulse.stream.quote_windows`): time-weighted average
#: spread and mid, the bid and ask in force at the bar's end, the volume of trades
#: classified buy and sell (Lee and Ready 1991), and the order-flow imbalance
#: ``(buy_volume - sell_volume) / (buy_volume + sell_volume)``, in [-1, 1] (null
#: without classified volume). Bars of a partition without quotes have none of them.
BAR_QUOTE_COLUMNS: tuple[str, ...] = (
    "spread_twa",
    "mid_twa",
    "last_bid",
    "last_ask",
    "buy_volume",
    "sell_volume",
    "order_flow_imbalance",
)


class QuotedBar(Bar, frozen=True, tag="bar", tag_field="type"):
    """A :class:`Bar` with the columns of :data:`BAR_QUOTE_COLUMNS`.

    On the ``bars`` topic, bars of a partition with quotes are written with
    these fields and the others as before (a plain :class:`Bar`: its wire
    format is unchanged); readers decode both as this.
    """

    spread_twa: float | None = None
    mid_twa: float | None = None
    last_bid: float | None = None
    last_ask: float | None = None
    buy_volume: float | None = None
    sell_volume: float | None = None
    order_flow_imbalance: float | None = None


#: What the ``ticks`` topic carries.
Tick = Trade | Quote | Bar


class Indicators(msgspec.Struct, frozen=True):
    """Indicator values on one closed bar; ``None`` until warmed up.

    Keyed like the bar: (dataset, symbol, timeframe, bar_start).
    """

    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    close: float
    sma_20: float | None = None
    ema_12: float | None = None
    ema_26: float | None = None
    rsi_14: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None
    bb_upper: float | None = None
    bb_middle: float | None = None
    bb_lower: float | None = None
    atr_14: float | None = None
    vwap: float | None = None
    volume_sma_20: float | None = None
    dataset: str | None = None


class Alert(msgspec.Struct, frozen=True):
    """An alert raised by a rule on one closed bar (the bar's key, its end).

    ``details`` holds the values the rule looked at.
    """

    id: str
    rule: str
    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    severity: str
    message: str
    details: dict[str, float | None] = {}
    dataset: str | None = None


class CustomValue(msgspec.Struct, frozen=True):
    """One value a plugin computed on one closed bar (a row of the ``custom`` table).

    Keyed like the bar, plus the value's ``name``: (dataset, symbol,
    timeframe, bar_start, name). ``value`` is ``None`` where the plugin gave none.
    """

    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    name: str
    value: float | None = None
    dataset: str | None = None


class Prediction(msgspec.Struct, frozen=True):
    """One forecast of the stream: a row of ``predictions`` (:data:`PREDICTION_SCHEMA`)."""

    symbol: str
    timeframe: str
    bar_start: int
    bar_end: int
    model: str
    horizon: int
    direction: int
    probability: float | None = None
    value: float | None = None
    dataset: str | None = None


class NewsItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One headline about one symbol: a row of ``news`` (:data:`NEWS_SCHEMA`).

    An article about three symbols is three items with the same ``id``. Keyed by
    (dataset, symbol, id): a vendor's article seen again (a poll overlapping the last
    one, a reconnect) replaces itself.

    Attributes:
        id: the vendor and its article id (``finnhub:7364412``), or a file's own id.
        symbol: the symbol the article is about.
        ts: when it was published (UTC ns).
        headline: the headline as the vendor gave it.
        source: the publisher (``Reuters``, ``Benzinga``), when given.
        url: the article's address, when given.
        sentiment: the headline's score from -1 (negative) to 1 (positive), set by
            the scorer as the item arrives; ``None`` before.
        dataset: the dataset it belongs to.
    """

    id: str
    symbol: str
    ts: int
    headline: str
    source: str | None = None
    url: str | None = None
    sentiment: float | None = None
    dataset: str | None = None


class DeadLetter(msgspec.Struct, frozen=True):
    """A record that could not be processed, with where it came from and why.

    ``reason`` is a short machine-readable code (``schema``, ``nan``,
    ``price``, ``size``, ``symbol``, ``late``, ``parse``, ``plugin``); ``error`` is the
    human-readable message. File sources fill ``file`` and ``line``; topic
    sources fill ``topic``, ``partition`` and ``offset``; live feeds fill
    ``vendor`` (``value`` is then the vendor's own message).
    """

    reason: str
    error: str
    value: bytes
    key: str | None = None
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    file: str | None = None
    line: int | None = None
    ts: int | None = None
    vendor: str | None = None


_json_encoder = msgspec.json.Encoder()
_tick_decoder = msgspec.json.Decoder(Tick)

#: Decode one JSON ``ticks`` record (the decoder's own method: ``map`` over
#: many records then runs at C speed). Raises as :func:`decode_tick` does.
decode_tick_json = _tick_decoder.decode


def encode(message: msgspec.Struct) -> bytes:
    """Encode a message as a JSON record (the Kafka wire: readable by any Kafka tool)."""
    return _json_encoder.encode(message)


def decode_tick(data: bytes) -> Trade | Quote | Bar:
    """Decode one JSON ``ticks`` record.

    Raises:
        msgspec.ValidationError: well formed, but not a tick.
        msgspec.DecodeError: the bytes are not JSON.
    """
    return _tick_decoder.decode(data)


# Columnar schemas: the tables that flow between stages and into the lake.

_SYMBOL = pa.dictionary(pa.int32(), pa.string())

#: The type of every time column where people and tools read it (lake, SQL):
#: UTC timestamps with nanosecond precision. In flight, times are int64 of
#: the same unit, so a cast between the two copies nothing.
STORED_TIME = pa.timestamp("ns", tz="UTC")

#: Trades as columns. ``dataset`` is filled where trades are stored.
TRADE_SCHEMA = pa.schema(
    [
        ("symbol", _SYMBOL),
        ("ts", pa.int64()),
        ("price", pa.float64()),
        ("size", pa.float64()),
        ("exchange", pa.string()),
        ("condition", pa.string()),
        ("dataset", pa.string()),
    ]
)

#: Quotes as columns (the processor does not aggregate them).
QUOTE_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("ts", pa.int64()),
        ("bid", pa.float64()),
        ("bid_size", pa.float64()),
        ("ask", pa.float64()),
        ("ask_size", pa.float64()),
        ("dataset", pa.string()),
    ]
)

BAR_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("bar_start", pa.int64()),
        ("bar_end", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("vwap", pa.float64()),
        ("trades", pa.int64()),
        ("dataset", pa.string()),
    ]
)


def watchlist_columns(columns: Sequence[str]) -> tuple[str | None, str | None]:
    """The indicator ``columns`` a watchlist shows as its RSI and MACD histogram.

    ``rsi_14`` and ``macd_hist`` where declared, else the first column named
    ``rsi...`` (a declared ``rsi(7)`` is ``rsi_7``) and the first ``..._hist``
    (a named MACD's histogram); ``None`` for one the set lacks.
    """
    rsi = "rsi_14" if "rsi_14" in columns else None
    hist = "macd_hist" if "macd_hist" in columns else None
    rsi = rsi or next((c for c in columns if c.startswith("rsi")), None)
    hist = hist or next((c for c in columns if c.endswith("_hist")), None)
    return rsi, hist


#: The ``bars`` table as stored: :data:`BAR_SCHEMA`, then :data:`BAR_QUOTE_COLUMNS`.
BAR_TABLE_SCHEMA = pa.schema(
    list(BAR_SCHEMA) + [pa.field(name, pa.float64()) for name in BAR_QUOTE_COLUMNS]
)


@functools.lru_cache(maxsize=64)
def indicator_schema(columns: tuple[str, ...] = INDICATOR_COLUMNS) -> pa.Schema:
    """The ``indicators`` table's schema for the declared ``columns`` (in order)."""
    return pa.schema(
        [
            ("symbol", pa.string()),
            ("timeframe", pa.string()),
            ("bar_start", pa.int64()),
            ("bar_end", pa.int64()),
            ("close", pa.float64()),
        ]
        + [(name, pa.float64()) for name in columns]
        + [("dataset", pa.string())]
    )


@functools.lru_cache(maxsize=64)
def indicators_struct(columns: tuple[str, ...] = INDICATOR_COLUMNS) -> type[msgspec.Struct]:
    """The wire struct of an ``indicators`` record with the declared ``columns``."""
    if columns == INDICATOR_COLUMNS:
        return Indicators
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [
        ("symbol", str), ("timeframe", str), ("bar_start", int), ("bar_end", int), ("close", float),
    ]  # fmt: skip
    fields += [(name, float | None, None) for name in columns]
    fields.append(("dataset", str | None, None))
    return msgspec.defstruct("Indicators", fields, frozen=True)


#: Key and bar columns of every ``indicators`` row; the rest are declared indicator columns.
INDICATOR_KEY_COLUMNS: tuple[str, ...] = ("symbol", "timeframe", "bar_start", "bar_end", "close")

INDICATOR_SCHEMA = indicator_schema(INDICATOR_COLUMNS)

ALERT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("rule", pa.string()),
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("bar_start", pa.int64()),
        ("bar_end", pa.int64()),
        ("severity", pa.string()),
        ("message", pa.string()),
        ("details", pa.map_(pa.string(), pa.float64())),  # the values the rule looked at
        ("dataset", pa.string()),
    ]
)

#: Plugins' values, long form: one row per bar and value name (:class:`CustomValue`).
CUSTOM_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("bar_start", pa.int64()),
        ("bar_end", pa.int64()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("dataset", pa.string()),
    ]
)

#: The stream's forecasts (:mod:`marketpulse.forecast.stage`), keyed by the bar each is
#: made at, the model and the horizon: (dataset, symbol, timeframe, bar_start, model,
#: horizon). A row predicts the return from that bar's close to the close ``horizon``
#: bars of its series later: its ``direction`` (1 up, -1 down, 0 no call), the
#: ``probability`` of an up move and the return itself as a fraction (``value``);
#: null where the model gives none.
PREDICTION_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("timeframe", pa.string()),
        ("bar_start", pa.int64()),
        ("bar_end", pa.int64()),
        ("model", pa.string()),
        ("horizon", pa.int64()),
        ("direction", pa.int64()),
        ("probability", pa.float64()),
        ("value", pa.float64()),
        ("dataset", pa.string()),
    ]
)

#: Headlines (:class:`NewsItem`), keyed by (dataset, symbol, id).
NEWS_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("symbol", pa.string()),
        ("ts", pa.int64()),
        ("headline", pa.string()),
        ("source", pa.string()),
        ("url", pa.string()),
        ("sentiment", pa.float64()),
        ("dataset", pa.string()),
    ]
)

#: Dead letters as stored: where the record came from in ``source_*`` columns.
DLQ_SCHEMA = pa.schema(
    [
        ("ts", pa.int64()),
        ("reason", pa.string()),
        ("error", pa.string()),
        ("key", pa.string()),
        ("value", pa.binary()),
        ("source_topic", pa.string()),
        ("source_partition", pa.int32()),
        ("source_offset", pa.int64()),
        ("source_file", pa.string()),
        ("source_line", pa.int64()),
        ("dataset", pa.string()),
    ]
)
