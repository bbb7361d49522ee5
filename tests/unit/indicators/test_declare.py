"""Declared indicators: parsing, naming, and the errors a user sees."""

from __future__ import annotations

import pytest

from marketpulse.indicators import DEFAULT, KINDS, parse, parse_set
from marketpulse.models import INDICATOR_COLUMNS


def test_the_default_set_is_the_thirteen_classic_columns() -> None:
    assert DEFAULT.columns == INDICATOR_COLUMNS
    assert parse_set(DEFAULT.text) == DEFAULT  # the canonical text parses back


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("ema(50)", ("ema_50",)),
        ("EMA(200)", ("ema_200",)),
        ("rsi(7)", ("rsi_7",)),
        ("bbands(20, 2.5)", ("bbands_20_2_5_upper", "bbands_20_2_5_middle", "bbands_20_2_5_lower")),
        ("bb=bbands(20, 2.5)", ("bb_upper", "bb_middle", "bb_lower")),
        ("fast = ema(period=9, source=hl2)", ("fast",)),
        ("macd", ("macd", "macd_signal", "macd_hist")),
        ("vwap()", ("vwap",)),
    ],
)
def test_names_of_declared_columns(text: str, columns: tuple[str, ...]) -> None:
    assert parse(text).columns == columns


def test_parameters_positional_named_and_defaults() -> None:
    item = parse("bbands(20, 2.5)")
    assert item.numbers == (20.0, 2.5, 2.5)  # down defaults to up
    assert parse("bbands(20, up=3, down=1)").numbers == (20.0, 3.0, 1.0)
    assert parse("sma(20, source=volume)").source == "volume"
    assert parse("ema(50)").canonical == "ema_50=ema(period=50, source=close)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("foo(1)", "unknown kind 'foo'"),
        ("ema(1.5)", "period must be a whole number"),
        ("ema(0)", "period must be between 2 and 100000"),
        ("bbands(20, x)", "'x' is not a number"),
        ("ema(2, close, 3)", "ema takes at most 2 arguments"),
        ("ema(period=2, 3)", "positional argument '3' after a named one"),
        ("ema(length=3)", "ema has no parameter 'length' (it takes period, source)"),
        ("ema(3, source=vol)", "source 'vol' is not one of"),
        ("Ema=ema(2)", "name 'Ema' must be lower case"),
        ("ema(2", "expected kind(arguments)"),
        ("close=ema(3)", "column 'close' is a reserved name"),
        ("ema(50), ema(50)", "column 'ema_50' is declared twice"),
        ("", "no indicators declared"),
    ],
)
def test_bad_declarations_name_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_set(text)


def test_a_set_from_a_list_and_its_fingerprint() -> None:
    a = parse_set(["ema(50)", "bb=bbands(20, 2.5), rsi(7)"])
    assert a.columns == ("ema_50", "bb_upper", "bb_middle", "bb_lower", "rsi_7")
    assert a.fingerprint == parse_set("ema(50), bb=bbands(20, 2.5), rsi(7)").fingerprint
    assert a.fingerprint != parse_set("ema(50), bb=bbands(20, 2.5), rsi(8)").fingerprint


def test_the_catalogue() -> None:
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.talib or kind.reference, f"{name} cites neither TA-Lib nor a reference"
        assert len(set(kind.outputs)) == len(kind.outputs)


def test_a_parameter_without_a_maximum_says_at_least() -> None:
    with pytest.raises(ValueError, match=r"acceleration must be at least 0, not -0.01$"):
        parse_set("sar(-0.01)")


def test_a_kind_without_parameters_is_what_the_default_set_computes() -> None:
    """One source of defaults: the kinds' parameters, which the default set uses as they are."""
    default = {item.name: item for item in DEFAULT.items}
    for kind, name in (("sma", "sma_20"), ("bbands", "bb"), ("rsi", "rsi_14"), ("atr", "atr_14"),
                       ("macd", "macd")):  # fmt: skip
        assert parse(kind).numbers == default[name].numbers, kind
    assert parse("sma").numbers == (20.0,) and parse("bbands").numbers == (20.0, 2.0, 2.0)
    assert parse("sma(source=volume)").canonical.split("=", 1)[1] == (
        default["volume_sma_20"].canonical.split("=", 1)[1])  # fmt: skip
    # a name that states a period states the one it computes
    for item in DEFAULT.items:
        number = item.name.rsplit("_", 1)[-1]
        if number.isdigit():
            assert item.numbers[0] == int(number), item.canonical
