"""The bars each column needs before its first value, read off the kernels, are TA-Lib's."""

import talib.abstract

from marketpulse.indicators import DEFAULT, bars_needed, parse_set


def _talib(name, **parameters):
    function = talib.abstract.Function(name)
    function.parameters = parameters
    return function.lookback + 1  # the lookback bars come before the first value


def test_the_default_set_needs_what_talib_needs():
    needed = bars_needed(DEFAULT, DEFAULT.columns)
    assert needed["macd_hist"] == needed["macd"] == _talib("MACD")  # 34 for (12, 26, 9)
    assert needed["rsi_14"] == _talib("RSI", timeperiod=14)
    assert needed["sma_20"] == _talib("SMA", timeperiod=20)
    assert needed["ema_26"] == _talib("EMA", timeperiod=26)
    assert needed["atr_14"] == _talib("ATR", timeperiod=14)
    assert needed["bb_upper"] == _talib("BBANDS", timeperiod=20)


def test_declared_parameters_and_unknown_columns():
    declared = parse_set("rsi(7), fast=macd(5, 13, 4)")
    needed = bars_needed(declared, ("rsi_7", "fast_hist", "macd_hist", "sma(5000)"))
    assert needed["rsi_7"] == _talib("RSI", timeperiod=7)
    assert needed["fast_hist"] == _talib("MACD", fastperiod=5, slowperiod=13, signalperiod=4)
    assert needed["macd_hist"] is None and needed["sma(5000)"] is None  # not declared
    assert bars_needed(parse_set("sma(5000)"), ("sma_5000",)) == {"sma_5000": None}  # longer
