"""Each rule fires exactly where the constructed series says, and nowhere else."""

from __future__ import annotations

import hashlib

import msgspec
import numpy as np
import pytest

from marketpulse.alerts import (
    AlertEngine,
    BollingerRule,
    MacdCrossRule,
    PctChangeRule,
    PriceCrossRule,
    RsiRule,
    VolumeSpikeRule,
)
from marketpulse.exceptions import RulesError

NAN = np.nan


def all_splits(n):
    """Every single split point, plus one-row-per-batch."""
    yield None
    for k in range(1, n):
        yield [k]
    yield list(range(1, n))


# price_cross: closes around level 100.
#  idx:      0    1    2    3   4    5    6
PRICE = [99, 101, 102, 99, 98, 100, 100]
# up: 1 (99 < 100 <= 101), 5 (98 < 100 <= 100); down: 3 (102 >= 100 > 99)


@pytest.mark.parametrize(
    "direction, expected", [("both", [1, 3, 5]), ("up", [1, 5]), ("down", [3])]
)
def test_price_cross(direction, expected, bars, fired_at, run):
    rows = bars(close=PRICE)
    rule = PriceCrossRule(name="p100", level=100.0, direction=direction, cooldown=0)
    for chunks in all_splits(len(PRICE)):
        alerts = run(rule, rows, chunks)
        assert fired_at(alerts, rows) == expected, chunks
    assert {a.severity for a in alerts} == {"warning"}


def test_price_cross_alert_fields(bars, run):
    rows = bars(close=PRICE)
    alerts = run(PriceCrossRule(name="p100", level=100.0, cooldown=0), rows)
    a = alerts[0]
    start, end = int(rows["bar_start"][1]), int(rows["bar_end"][1])
    assert (a.rule, a.symbol, a.timeframe, a.bar_start, a.bar_end) == (
        "p100", "AAPL", "1m", start, end
    )  # fmt: skip
    assert a.dataset is None  # an engine given no dataset
    assert a.id == hashlib.sha1(f"p100|AAPL|1m|{end}".encode()).hexdigest()[:16]
    assert a.details == {"close": 101.0, "prev_close": 99.0, "level": 100.0}
    assert a.message == "AAPL 1m close 101.00 crossed above 100"
    assert alerts[1].message == "AAPL 1m close 99.00 crossed below 100"
    # A replay through a fresh engine gives the same ids.
    assert [x.id for x in run(PriceCrossRule(name="p100", level=100.0, cooldown=0), rows)] == [
        x.id for x in alerts
    ]


# pct_change, window 3, threshold 5%:
#  idx:    0    1    2    3    4    5    6    7    8    9
PCT = [100, 101, 102, 103, 104, 110, 100, 100, 100, 100]
# 3: 103/100 +3%; 4: 104/101 +2.97%; 5: 110/102 +7.8% (fires); 6: 100/103 -2.9%;
# 7: 100/104 -3.8%; 8: 100/110 -9.1% (fires); 9: 100/100 0%


@pytest.mark.parametrize("direction, expected", [("both", [5, 8]), ("up", [5]), ("down", [8])])
def test_pct_change(direction, expected, bars, fired_at, run):
    rows = bars(close=PCT)
    rule = PctChangeRule(name="move", window=3, threshold=5.0, direction=direction, cooldown=0)
    for chunks in all_splits(len(PCT)):
        assert fired_at(run(rule, rows, chunks), rows) == expected, chunks


def test_pct_change_values_and_message(bars, run):
    rows = bars(close=PCT)
    [up, down] = run(PctChangeRule(name="move", window=3, threshold=5.0, cooldown=0), rows)
    assert up.details["ref_close"] == 102.0 and up.details["close"] == 110.0
    assert up.details["pct_change"] == pytest.approx(100 * (110 / 102 - 1))
    assert up.message == "AAPL 1m close up 7.84% over 3 bars (102.00 -> 110.00)"
    assert down.message.startswith("AAPL 1m close down 9.09% over 3 bars")


# rsi above 70 / below 30, edge-triggered:
#  idx:   0   1   2   3   4   5   6   7   8   9  10  11
RSI = [NAN, 50, 69, 71, 75, 69, 72, 50, 29, 25, 31, 30]
# above: 3 (69 -> 71), 6 (69 -> 72); below: 8 (50 -> 29), 11 (31 -> 30)


@pytest.mark.parametrize(
    "above, below, expected", [(70, 30, [3, 6, 8, 11]), (70, None, [3, 6]), (None, 30, [8, 11])]
)
def test_rsi(above, below, expected, bars, fired_at, run):
    rows = bars(rsi_14=RSI)
    rule = RsiRule(name="rsi", above=above, below=below, cooldown=0)
    for chunks in all_splits(len(RSI)):
        assert fired_at(run(rule, rows, chunks), rows) == expected, chunks


def test_rsi_message(bars, run):
    rows = bars(rsi_14=[69.0, 71.3, 29.0, 25.0])
    alerts = run(RsiRule(name="rsi", above=70, below=30, cooldown=0), rows)
    assert [a.message for a in alerts] == [
        "AAPL 1m RSI 71.3 crossed above 70",
        "AAPL 1m RSI 29.0 crossed below 30",
    ]
    assert alerts[0].severity == "info"


# macd_cross: signal 0, macd = macd - signal
#  idx:   0     1    2  3   4   5  6   7
MACD = [-1, -0.5, 0.5, 1, -1, -2, 0, 0.5]
# bullish: 2 (-0.5 -> 0.5), 6 (-2 -> 0); bearish: 4 (1 -> -1)


@pytest.mark.parametrize(
    "direction, expected", [("both", [2, 4, 6]), ("up", [2, 6]), ("down", [4])]
)
def test_macd_cross(direction, expected, bars, fired_at, run):
    rows = bars(macd=MACD, macd_signal=np.zeros(len(MACD)))
    rule = MacdCrossRule(name="macd", direction=direction, cooldown=0)
    for chunks in all_splits(len(MACD)):
        alerts = run(rule, rows, chunks)
        assert fired_at(alerts, rows) == expected, chunks
    if direction == "both":
        assert ["bullish" in a.message for a in alerts] == [True, False, True]
        assert ["bearish" in a.message for a in alerts] == [False, True, False]


# bollinger: bands 90..110
#  idx:    0    1    2    3   4   5    6    7    8
BB = [100, 111, 112, 100, 89, 88, 100, 110, 111]
# up: 1 (100 -> 111), 8 (110 -> 111; 110 is on the band, not outside); down: 4 (100 -> 89)


@pytest.mark.parametrize(
    "direction, expected", [("both", [1, 4, 8]), ("up", [1, 8]), ("down", [4])]
)
def test_bollinger(direction, expected, bars, fired_at, run):
    n = len(BB)
    rows = bars(close=BB, bb_upper=np.full(n, 110.0), bb_lower=np.full(n, 90.0))
    rule = BollingerRule(name="bb", direction=direction, cooldown=0)
    for chunks in all_splits(n):
        alerts = run(rule, rows, chunks)
        assert fired_at(alerts, rows) == expected, chunks
    if direction == "both":
        assert [a.message for a in alerts] == [
            "AAPL 1m close 111.00 broke above the upper Bollinger band 110.00",
            "AAPL 1m close 89.00 broke below the lower Bollinger band 90.00",
            "AAPL 1m close 111.00 broke above the upper Bollinger band 110.00",
        ]


# volume_spike k=3 over an average of 100: level-triggered
#  idx:     0    1    2    3    4    5
VOL = [100, 301, 500, 300, 400, 250]
# volume > 300: 1, 2, 4 (300 is not above 3 * 100)


def test_volume_spike_level_triggered(bars, fired_at, run):
    n = len(VOL)
    rows = bars(volume=VOL, volume_sma_20=np.full(n, 100.0))
    for chunks in all_splits(n):
        assert fired_at(run(VolumeSpikeRule(name="vol", cooldown=0), rows, chunks), rows) == [
            1,
            2,
            4,
        ]
    [a, *_] = run(VolumeSpikeRule(name="vol", cooldown=0), rows)
    assert a.message == "AAPL 1m volume 301 is 3.0x its 20-bar average 100"
    assert a.details == {"volume": 301.0, "volume_sma_20": 100.0, "k": 3.0}


@pytest.mark.parametrize(
    "cooldown, expected",
    [
        (0, [1, 2, 4]),
        (60, [1, 2, 4]),  # bars are 60 s apart: ts >= last + cooldown holds
        (61, [1, 4]),  # 2 is 60 s after 1: held back; 4 is 180 s after 1
        (180, [1, 4]),
        (181, [1]),
    ],
)
def test_cooldown(cooldown, expected, bars, fired_at, run):
    n = len(VOL)
    rows = bars(volume=VOL, volume_sma_20=np.full(n, 100.0))
    rule = VolumeSpikeRule(name="vol", cooldown=cooldown)
    for chunks in all_splits(n):
        assert fired_at(run(rule, rows, chunks), rows) == expected, chunks


def test_per_symbol_and_interval_independence(bars, merge, run):
    # Rows interleave: a naive "previous row" would pair AAPL with MSFT.
    aapl = bars("AAPL", close=[99, 101, 99])  # up at 1, down at 2
    msft = bars("MSFT", close=[105, 95, 95])  # down at 1
    aapl5 = bars("AAPL", "5m", close=[101, 99, 101])  # down at 1, up at 2
    rows = merge(aapl, msft, aapl5)
    rule = PriceCrossRule(name="p100", level=100, cooldown=3600)  # cooldown per symbol+interval
    for chunks in all_splits(len(rows["bar_end"])):
        got = [(a.symbol, a.timeframe, a.bar_end) for a in run(rule, rows, chunks)]
        assert got == [
            ("AAPL", "1m", int(aapl["bar_end"][1])),
            ("MSFT", "1m", int(msft["bar_end"][1])),
            ("AAPL", "5m", int(aapl5["bar_end"][1])),
        ], chunks


def test_symbols_and_intervals_filters(bars, merge, run):
    rows = merge(
        bars("AAPL", close=[99, 101]),
        bars("MSFT", close=[99, 101]),
        bars("MSFT", "5m", close=[99, 101]),
    )
    only_msft_5m = PriceCrossRule(name="p", level=100, symbols=("MSFT",), intervals=("5m",))
    assert [(a.symbol, a.timeframe) for a in run(only_msft_5m, rows)] == [("MSFT", "5m")]


def test_nan_never_fires(bars, run):
    # Each series would fire at 2 if the NaN at 1 were a number on the right side.
    n = 4
    nan_rules = [
        (PriceCrossRule(name="p", level=100, cooldown=0), {"close": [99, NAN, 101, NAN]}),
        (
            PctChangeRule(name="c", window=1, threshold=1, cooldown=0),
            {"close": [100, NAN, 120, NAN]},
        ),
        (RsiRule(name="r", above=70, below=30, cooldown=0), {"rsi_14": [50, NAN, 80, NAN]}),
        (
            MacdCrossRule(name="m", cooldown=0),
            {"macd": [-1, NAN, 1, NAN], "macd_signal": np.zeros(n)},
        ),
        (
            MacdCrossRule(name="m", cooldown=0),
            {"macd": [-1, -1, 1, 1], "macd_signal": [0, NAN, 0, 0]},
        ),
        (
            BollingerRule(name="b", cooldown=0),
            {
                "close": [100, 100, 120, 120],
                "bb_upper": [110, NAN, 110, NAN],
                "bb_lower": np.full(n, 90),
            },
        ),
        (
            VolumeSpikeRule(name="v", cooldown=0),
            {"volume": [NAN, 1e6, 1e6, NAN], "volume_sma_20": [1, NAN, NAN, 1]},
        ),
    ]
    for rule, cols in nan_rules:
        assert run(rule, bars(n=n, **cols)) == [], rule


def test_mixed_rules_order_and_no_rows(bars, take, run):
    rows = bars(close=[99, 101], volume=[100, 1000], volume_sma_20=[100, 100])
    rules = [VolumeSpikeRule(name="vol"), PriceCrossRule(name="p", level=100)]
    assert [a.rule for a in run(rules, rows)] == ["vol", "p"]  # rule order within a row
    assert AlertEngine(rules).evaluate(take(rows, slice(0, 0))) == []


def test_missing_column_and_bad_rules(bars):
    rows = bars(close=[1.0])
    del rows["rsi_14"]
    with pytest.raises(ValueError, match="rsi_14"):
        AlertEngine([RsiRule(name="r", above=70)]).evaluate(rows)
    with pytest.raises(RulesError, match="duplicate"):
        AlertEngine([RsiRule(name="r", above=70), RsiRule(name="r", below=30)])
    with pytest.raises(RulesError, match="severity"):
        AlertEngine([RsiRule(name="r", above=70, severity="urgent")])


def test_snapshot_restore_and_reset(bars, merge, take):
    rows = merge(bars("AAPL", close=[99, 101, 99]), bars("MSFT", close=[99, 99, 101]))
    rule = PriceCrossRule(name="p", level=100, cooldown=3600)
    first, rest = take(rows, slice(0, 2)), take(rows, slice(2, None))  # one bar each
    expected = AlertEngine([rule]).evaluate(rows)
    assert len(expected) == 2

    a = AlertEngine([rule])
    a.evaluate(first)
    b = AlertEngine([rule])
    for symbol in ("AAPL", "MSFT"):
        b.restore(symbol, a.snapshot(symbol))
    assert b.evaluate(rest) == expected

    # rest = AAPL 101, MSFT 99, AAPL 99, MSFT 101. After reset, no bar before AAPL 101
    # and no cooldown: AAPL fires on its cross down at 99 instead, MSFT as before.
    b.reset()
    got = [(x.symbol, x.bar_end, x.message.split()[-2]) for x in b.evaluate(rest)]
    assert got == [
        ("AAPL", int(rest["bar_end"][2]), "below"), ("MSFT", int(rest["bar_end"][3]), "above")
    ]  # fmt: skip
    with pytest.raises(ValueError):
        b.restore("AAPL", a.snapshot("MSFT"))
    # a symbol never seen, of an engine that has seen none: no state, restored as none
    nothing = AlertEngine([rule]).snapshot("NOPE")
    b.restore("NOPE", nothing)
    assert msgspec.msgpack.decode(nothing)[1] == []  # no interval


def test_a_snapshot_restores_under_other_rules_by_their_names(bars, take):
    rows = bars(close=[99, 101], volume=[1000, 1000], volume_sma_20=[100, 100])
    spike = VolumeSpikeRule(name="spike", cooldown=3600)
    a = AlertEngine([PriceCrossRule(name="cross", level=100, cooldown=0), spike])
    assert [x.rule for x in a.evaluate(take(rows, slice(0, 1)))] == ["spike"]
    saved = a.snapshot("AAPL")
    # "cross" gone, "spike" at another place, "other" new: spike still cools down
    b = AlertEngine([VolumeSpikeRule(name="other", cooldown=3600), spike])
    b.restore("AAPL", saved)
    assert [x.rule for x in b.evaluate(take(rows, slice(1, 2)))] == ["other"]
    # the previous close came back too: a rule reading it sees the cross
    c = AlertEngine([PriceCrossRule(name="cross", level=100, cooldown=0)])
    c.restore("AAPL", saved)
    assert [x.rule for x in c.evaluate(take(rows, slice(1, 2)))] == ["cross"]


def test_a_damaged_snapshot_is_refused_and_changes_nothing(bars, take):
    rows = bars(volume=[1000, 1000], volume_sma_20=[100, 100])
    rules = [VolumeSpikeRule(name="v", cooldown=3600), PriceCrossRule(name="p", level=100)]
    a = AlertEngine(rules)  # the price cross keeps the previous close
    a.evaluate(take(rows, slice(0, 1)))
    saved = a.snapshot("AAPL")
    b = AlertEngine(rules)
    b.restore("AAPL", saved)
    fields = msgspec.msgpack.decode(saved)  # its fields in order; rings: the 6th
    fields[5] = fields[5][:-8]  # one value short
    short = msgspec.msgpack.encode(fields)
    for damaged in (short, saved[:-9], saved[:5], b"\x93\x01"):
        with pytest.raises(ValueError, match="AAPL"):
            b.restore("AAPL", damaged)
    assert b.evaluate(take(rows, slice(1, 2))) == []  # still cooling down: unchanged


def test_restore_replaces_state_and_keeps_cooldown(bars, take):
    rows = bars(volume=[1000, 1000], volume_sma_20=[100, 100])
    rule = VolumeSpikeRule(name="v", cooldown=3600)
    a = AlertEngine([rule])
    assert len(a.evaluate(take(rows, slice(0, 1)))) == 1
    saved = a.snapshot("AAPL")
    b = AlertEngine([rule])
    b.restore("AAPL", saved)
    assert b.evaluate(take(rows, slice(1, 2))) == []  # still cooling down
    b.restore("AAPL", AlertEngine([rule]).snapshot("AAPL"))  # empty state replaces it
    assert len(b.evaluate(take(rows, slice(1, 2)))) == 1


def test_a_snapshot_keeps_each_column_as_deep_as_its_own_ring(bars, take):
    rules = [PctChangeRule(name="pct", window=50, threshold=5), MacdCrossRule(name="macd")]
    engine = AlertEngine(rules)
    engine.evaluate(take(bars(close=[100, 101], macd=[1, 2], macd_signal=[2, 1]), slice(0, 2)))
    fields = msgspec.msgpack.decode(engine.snapshot("AAPL"))
    columns, depths, rings = fields[2], fields[3], fields[5]
    assert dict(zip(columns, depths, strict=True))["close"] == 50
    assert sorted(depths) == [1, 1, 50]
    assert len(rings) == 8 * 52  # one key: the shallow columns do not take the deep one's
    restored = AlertEngine(rules)
    restored.restore("AAPL", engine.snapshot("AAPL"))
    for column, ring in engine._rings.views.items():
        np.testing.assert_array_equal(restored._rings.views[column], ring)


@pytest.mark.parametrize("coded", [False, True])
def test_filters_of_many_new_keys_at_once_and_later(bars, merge, coded):
    # 40 symbols on 3 intervals: the slots of the first 30 are made in one call, then
    # those of the other 10 with the first 30's next bars; each key crosses 100 once
    names = [f"S{i:02d}" for i in range(40)]
    intervals = ("1s", "1m", "5m")
    rules = [
        PriceCrossRule(name="every", level=100, cooldown=0),
        PriceCrossRule(name="some", level=100, cooldown=0, symbols=tuple(names[::3])),
        PriceCrossRule(name="slow", level=100, cooldown=0, intervals=("1m", "5m")),
        PriceCrossRule(
            name="both", level=100, cooldown=0, symbols=("S01", "S35"), intervals=("5m",)
        ),
    ]
    engine = AlertEngine(rules)
    code = {(s, iv): i for i, (s, iv) in enumerate((s, iv) for s in names for iv in intervals)}

    def evaluate(symbols, close):
        rows = merge(*(bars(s, iv, close=close) for s in symbols for iv in intervals))
        pairs = zip(rows["symbol"], rows["timeframe"], strict=True)
        keys = np.array([code[pair] for pair in pairs])
        return engine.evaluate(rows, codes=keys if coded else None)

    fired = evaluate(names[:30], [99, 99]) + evaluate(names, [101, 101])
    got = sorted((a.rule, a.symbol, a.timeframe) for a in fired)
    expected = sorted(
        (rule.name, s, iv)
        for rule in rules
        for s in names[:30]  # the other 10 start above 100: no cross
        for iv in intervals
        if (rule.symbols is None or s in rule.symbols)
        and (rule.intervals is None or iv in rule.intervals)
    )
    assert got == expected
