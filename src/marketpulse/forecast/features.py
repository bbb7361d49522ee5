"""The features a forecast is made from: what MarketPulse computes of each bar, made scale-free.

Each feature is a number a model can compare across symbols and prices:

- ``ret_1``: the bar's return, close over the previous bar's close, minus 1;
- ``trend``: close over its 20-bar simple moving average, minus 1;
- ``ema_gap``: the 12-bar EMA over the 26-bar EMA, minus 1;
- ``rsi``: the 14-bar RSI, centred (``rsi / 100 - 0.5``);
- ``macd_hist``: the MACD histogram over the close;
- ``bb_position``: where the close is in its Bollinger band, -0.5 (lower) to 0.5 (upper);
- ``atr``: the 14-bar ATR over the close;
- ``range``: high minus low, over the close;
- ``body``: close minus open, over the close;
- ``vwap_gap``: close over the session VWAP, minus 1;
- ``volume``: log of the volume over its 20-bar mean (both plus one);
- ``order_flow``: the order-flow imbalance, and ``spread``: the time-weighted
  spread over the close, when the bars have quotes' columns.

The indicators come from the stream's own kernels
(:func:`marketpulse.indicators.compute`, :data:`INDICATORS`), so a feature is
the same number the stream computes. A feature not yet defined (an
indicator's warm-up, a flat band) is left out of the bar's features.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

__all__ = ["FEATURES", "INDICATORS", "feature_columns", "feature_rows", "previous_closes"]

#: The indicators the features read, as declarations.
INDICATORS = (
    "sma_20=sma(20), ema_12=ema(12), ema_26=ema(26), rsi_14=rsi(14), macd=macd, "
    "bb=bbands(20, 2), atr_14=atr(14), vwap=vwap, volume_sma_20=sma(20, source=volume)"
)

#: The features, in order.
FEATURES = ("ret_1", "trend", "ema_gap", "rsi", "macd_hist", "bb_position", "atr", "range",
            "body", "vwap_gap", "volume", "order_flow", "spread")  # fmt: skip


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.float64()).fill_null(np.nan).to_numpy()


def previous_closes(close: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Each bar's previous close in its series (``NaN`` for a series' first bar).

    Args:
        close: the closes, each series' bars together and oldest first.
        starts: the row where each series begins.
    """
    previous = np.concatenate(([np.nan], close[:-1]))
    previous[starts] = np.nan
    return previous


def feature_columns(bars: pa.Table, previous: np.ndarray) -> dict[str, np.ndarray]:
    """The features of every bar, as columns (``NaN`` where undefined).

    Args:
        bars: bars with the columns of :data:`INDICATORS` added.
        previous: each bar's previous close in its series (``NaN``: none;
            :func:`previous_closes`), so that ``ret_1`` never reads another
            series' close.
    """
    close = _column(bars, "close")
    with np.errstate(divide="ignore", invalid="ignore"):
        lower, upper = _column(bars, "bb_lower"), _column(bars, "bb_upper")
        width = upper - lower
        columns = {
            "ret_1": close / previous - 1.0,
            "trend": close / _column(bars, "sma_20") - 1.0,
            "ema_gap": _column(bars, "ema_12") / _column(bars, "ema_26") - 1.0,
            "rsi": _column(bars, "rsi_14") / 100.0 - 0.5,
            "macd_hist": _column(bars, "macd_hist") / close,
            "bb_position": np.where(width > 0, (close - lower) / width - 0.5, np.nan),
            "atr": _column(bars, "atr_14") / close,
            "range": (_column(bars, "high") - _column(bars, "low")) / close,
            "body": (close - _column(bars, "open")) / close,
            "vwap_gap": close / _column(bars, "vwap") - 1.0,
            "volume": np.log(
                (_column(bars, "volume") + 1.0) / (_column(bars, "volume_sma_20") + 1.0)
            ),  # fmt: skip
        }
        names = set(bars.column_names)
        if "order_flow_imbalance" in names:
            columns["order_flow"] = _column(bars, "order_flow_imbalance")
        if "spread_twa" in names:
            columns["spread"] = _column(bars, "spread_twa") / close
    return {name: np.where(np.isfinite(c), c, np.nan) for name, c in columns.items()}


def feature_rows(features: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """Each bar's defined features, as the models take them (an undefined one left out)."""
    names = list(features)
    if not names:
        return []
    matrix = np.column_stack([features[name] for name in names])
    return [
        {name: v for name, v in zip(names, row, strict=True) if v == v}  # NaN != NaN
        for row in matrix.tolist()
    ]
