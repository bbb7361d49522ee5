"""The oscillator kinds against TA-Lib on the shared real data (Kaggle indices, Lean minutes)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.indicators.catalog import KINDS
from marketpulse.indicators.declare import parse, parse_set
from marketpulse.indicators.library import oscillators
from marketpulse.indicators.state import IndicatorState, compute_indicators, update_indicators

talib = pytest.importorskip("talib")

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
INDEX_FILE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"
TRADES_FILE = DATA / "lean-2013-10-07" / "trades.csv.gz"
INDICES = (
    "000001.SS", "399001.SZ", "GDAXI", "GSPTSE", "HSI", "IXIC", "J203.JO",
    "N100", "N225", "NSEI", "NYA", "SSMI", "TWII",
)  # fmt: skip
SYMBOLS = ("AIG", "BAC", "IBM", "SPY")
FIELDS = ("open", "high", "low", "close", "volume")

Series = dict[str, np.ndarray]


def _hl2(s: Series) -> np.ndarray:
    return (s["high"] + s["low"]) / 2.0


def _hlc3(s: Series) -> np.ndarray:
    return (s["high"] + s["low"] + s["close"]) / 3.0


# Each declaration (defaults first, then non-default parameters and sources)
# with the TA-Lib call it must equal; a tuple of outputs in the kind's order.
CASES: tuple[tuple[str, Callable[[Series], object]], ...] = (
    ("stoch", lambda s: talib.STOCH(s["high"], s["low"], s["close"])),
    ("stoch(14, 3, 5)", lambda s: talib.STOCH(s["high"], s["low"], s["close"], 14, 3, 0, 5, 0)),
    ("stoch(1, 1, 1)", lambda s: talib.STOCH(s["high"], s["low"], s["close"], 1, 1, 0, 1, 0)),
    ("stoch(fastk=21, slowk=1, slowd=4)",
     lambda s: talib.STOCH(s["high"], s["low"], s["close"], 21, 1, 0, 4, 0)),
    ("stochf", lambda s: talib.STOCHF(s["high"], s["low"], s["close"])),
    ("stochf(9, 4)", lambda s: talib.STOCHF(s["high"], s["low"], s["close"], 9, 4, 0)),
    ("stochf(1, 1)", lambda s: talib.STOCHF(s["high"], s["low"], s["close"], 1, 1, 0)),
    ("stochrsi", lambda s: talib.STOCHRSI(s["close"])),
    ("stochrsi(7, 10, 2)", lambda s: talib.STOCHRSI(s["close"], 7, 10, 2, 0)),
    ("stochrsi(2, 1, 1)", lambda s: talib.STOCHRSI(s["close"], 2, 1, 1, 0)),
    ("stochrsi(14, 14, 5, source=hl2)", lambda s: talib.STOCHRSI(_hl2(s), 14, 14, 5, 0)),
    ("willr", lambda s: talib.WILLR(s["high"], s["low"], s["close"])),
    ("willr(2)", lambda s: talib.WILLR(s["high"], s["low"], s["close"], 2)),
    ("willr(50)", lambda s: talib.WILLR(s["high"], s["low"], s["close"], 50)),
    ("cci", lambda s: talib.CCI(s["high"], s["low"], s["close"])),
    ("cci(2)", lambda s: talib.CCI(s["high"], s["low"], s["close"], 2)),
    ("cci(40)", lambda s: talib.CCI(s["high"], s["low"], s["close"], 40)),
    ("roc", lambda s: talib.ROC(s["close"])),
    ("roc(1)", lambda s: talib.ROC(s["close"], 1)),
    ("roc(25, source=hlc3)", lambda s: talib.ROC(_hlc3(s), 25)),
    ("mom", lambda s: talib.MOM(s["close"])),
    ("mom(1)", lambda s: talib.MOM(s["close"], 1)),
    ("mom(3, source=high)", lambda s: talib.MOM(s["high"], 3)),
    ("trix", lambda s: talib.TRIX(s["close"])),
    ("trix(1)", lambda s: talib.TRIX(s["close"], 1)),
    ("trix(9, source=low)", lambda s: talib.TRIX(s["low"], 9)),
    ("cmo", lambda s: talib.CMO(s["close"])),
    ("cmo(2)", lambda s: talib.CMO(s["close"], 2)),
    ("cmo(30, source=volume)", lambda s: talib.CMO(s["volume"], 30)),
    ("apo", lambda s: talib.APO(s["close"])),  # TA-Lib's default MA type here: EMA
    ("apo(26, 12)", lambda s: talib.APO(s["close"], 26, 12, 1)),
    ("apo(5, 20, 0)", lambda s: talib.APO(s["close"], 5, 20, 0)),
    ("apo(9, 3, matype=0)", lambda s: talib.APO(s["close"], 9, 3, 0)),
    ("ppo", lambda s: talib.PPO(s["close"])),
    ("ppo(7, 30)", lambda s: talib.PPO(s["close"], 7, 30, 1)),
    ("ppo(5, 20, 0)", lambda s: talib.PPO(s["close"], 5, 20, 0)),
    ("ultosc", lambda s: talib.ULTOSC(s["high"], s["low"], s["close"])),
    ("ultosc(20, 3, 9)", lambda s: talib.ULTOSC(s["high"], s["low"], s["close"], 20, 3, 9)),
    ("ultosc(1, 1, 1)", lambda s: talib.ULTOSC(s["high"], s["low"], s["close"], 1, 1, 1)),
    ("ultosc(5, 5, 40)", lambda s: talib.ULTOSC(s["high"], s["low"], s["close"], 5, 5, 40)),
    ("bop", lambda s: talib.BOP(s["open"], s["high"], s["low"], s["close"])),
)  # fmt: skip
DECLARED = parse_set([f"c{i}={text}" for i, (text, _) in enumerate(CASES)])


@pytest.fixture(scope="module")
def series() -> dict[str, Series]:
    """Daily bars of each world index and 1-minute trade bars of each Lean symbol on 2013-10-07."""
    out: dict[str, Series] = {}
    frame = pd.read_csv(INDEX_FILE)
    frame["Date"] = pd.to_datetime(frame["Date"])
    for name, group in frame.groupby("Index", sort=False):
        group = group.sort_values("Date")
        out[name] = {f: group[f.capitalize()].to_numpy(np.float64) for f in FIELDS}
    trades = pd.read_csv(TRADES_FILE)
    trades["ts"] = pd.to_datetime(trades["timestamp"], utc=True)
    for symbol, group in trades.groupby("symbol"):
        resampled = group.set_index("ts").resample("1min")["price"]
        bars = pd.DataFrame(
            {
                "open": resampled.first(),
                "high": resampled.max(),
                "low": resampled.min(),
                "close": resampled.last(),
                "volume": group.set_index("ts").resample("1min")["size"].sum().astype(np.float64),
            }
        ).dropna(subset=["close"])
        out[symbol] = {f: bars[f].to_numpy(np.float64) for f in FIELDS}
    assert set(out) == {*INDICES, *SYMBOLS}
    return out


def _compute(s: Series, declared=DECLARED) -> np.ndarray:
    n = len(s["close"])
    return compute_indicators(
        s["high"], s["low"], s["close"], s["volume"], s["close"] * s["volume"],
        np.zeros(n, np.int64), s["open"], declared,
    )  # fmt: skip


def _assert_matches_talib(s: Series) -> None:
    ours = _compute(s)
    col = 0
    for text, reference in CASES:
        expected = reference(s)
        expected = expected if isinstance(expected, tuple) else (expected,)
        for j, want in enumerate(expected):
            got = ours[:, col + j]
            warm = ~np.isnan(want)
            assert warm.sum() > 0, text
            np.testing.assert_array_equal(
                np.isnan(got), ~warm, err_msg=f"{text} output {j}: NaN positions"
            )
            # No atol: the kernels repeat TA-Lib's operations, so values near
            # zero (a flat %D, a CMO of balanced moves) agree to the last bits.
            np.testing.assert_allclose(
                got[warm], want[warm], rtol=1e-9, atol=0, err_msg=f"{text} output {j}"
            )
        col += len(expected)
    assert col == ours.shape[1]


@pytest.mark.parametrize("name", INDICES + SYMBOLS)
def test_matches_talib_on_real_series(series, name: str) -> None:
    _assert_matches_talib(series[name])


def test_flat_tiny_and_huge_series_match_talib(series) -> None:
    """A flat stretch (flat windows give 0), prices scaled by 1e-9 and 1e9 (scaled zero tests)."""
    gdaxi = series["GDAXI"]
    flat = {f: np.repeat(v[:3], 40) for f, v in gdaxi.items()}
    _assert_matches_talib(flat)
    out = _compute(flat)
    stoch = DECLARED.columns.index("c0_k")
    assert out[-1, stoch] == 0.0 and out[-1, DECLARED.columns.index("c14")] == 0.0  # %K, CCI
    for scale in (1e-9, 1e9):
        _assert_matches_talib({f: v if f == "volume" else v * scale for f, v in gdaxi.items()})


def test_streaming_in_chunks_and_interleaved_equals_batch(series) -> None:
    names = ("SPY", "IBM", "GDAXI")
    whole = [_compute(series[n]) for n in names]
    keys = np.concatenate([np.full(len(series[n]["close"]), k) for k, n in enumerate(names)])
    rng = np.random.default_rng(22)
    order = np.argsort(rng.random(len(keys)), kind="stable")
    position = np.concatenate([np.arange(len(series[n]["close"])) for n in names])
    # interleave the keys, each key's bars still in time order
    keys_mixed = keys[order]
    rows = np.empty(len(keys), np.int64)
    for k in range(len(names)):
        rows[keys_mixed == k] = np.sort(position[order][keys_mixed == k])
    columns = {f: np.empty(len(keys)) for f in FIELDS}
    for k, n in enumerate(names):
        mask = keys_mixed == k
        for f in FIELDS:
            columns[f][mask] = series[n][f][rows[mask]]
    cuts = np.sort(rng.choice(np.arange(1, len(keys)), size=150, replace=False))
    state = IndicatorState(capacity=1, declared=DECLARED)
    chunks = []
    for a, b in itertools.pairwise([0, *cuts.tolist(), len(keys)]):
        if a == 700:  # a snapshot and restore part-way through
            data = [state.snapshot(k) for k in range(len(names))]
            state = IndicatorState(capacity=1, declared=DECLARED)
            for k, blob in enumerate(data):
                state.restore(k, blob)
        c = {f: v[a:b] for f, v in columns.items()}
        chunks.append(update_indicators(
            state, keys_mixed[a:b], c["high"], c["low"], c["close"], c["volume"],
            c["close"] * c["volume"], np.zeros(b - a, np.int64), c["open"],
        ))  # fmt: skip
    streamed = np.concatenate(chunks)
    for k in range(len(names)):
        np.testing.assert_array_equal(
            streamed[keys_mixed == k].view(np.uint64), whole[k].view(np.uint64), err_msg=names[k]
        )


def test_kinds_are_in_the_catalogue_with_talib_names() -> None:
    names = {kind.name: kind for kind in oscillators.KINDS}
    assert set(names) == {
        "stoch", "stochf", "stochrsi", "willr", "cci", "roc", "mom",
        "cmo", "apo", "ppo", "trix", "ultosc", "bop",
    }  # fmt: skip
    for name, kind in names.items():
        assert KINDS[name] is kind
        assert kind.talib == name.upper() and kind.reference is None


def test_declared_columns_and_defaults() -> None:
    assert parse("stoch").columns == ("stoch_k", "stoch_d")
    assert parse("sr=stochrsi(7, source=hl2)").columns == ("sr_k", "sr_d")
    assert (
        parse("sr=stochrsi(7, source=hl2)").canonical
        == "sr=stochrsi(period=7, fastk=5, fastd=3, source=hl2)"
    )
    assert parse("willr").canonical == "willr=willr(period=14)"
    assert parse("apo").canonical == "apo=apo(fast=12, slow=26, matype=1, source=close)"
    assert parse("ultosc").numbers == (7.0, 14.0, 28.0)
    assert parse("trix").numbers == (30.0,)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("willr(1)", "period must be between 2"),
        ("cci(1)", "period must be between 2"),
        ("cmo(1)", "period must be between 2"),
        ("stochrsi(1)", "period must be between 2"),
        ("stoch(0)", "fastk must be between 1"),
        ("stoch(5, 2.5)", "slowk must be a whole number"),
        ("roc(100001)", "period must be between 1 and 100000"),
        ("apo(12, 26, 2)", "matype must be between 0 and 1"),
        ("bop(3)", "at most 0 arguments"),
        ("mom(source=vwap)", "source"),
        ("stochf(fastk=5, slowd=3)", "no parameter 'slowd'"),
    ],
)
def test_bad_parameters_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(text)


def test_bop_without_opens_is_nan(series) -> None:
    spy = series["SPY"]
    n = len(spy["close"])
    out = compute_indicators(
        spy["high"], spy["low"], spy["close"], spy["volume"], spy["volume"], np.zeros(n, np.int64),
        declared=parse_set("bop"),
    )  # fmt: skip
    assert np.isnan(out).all()
