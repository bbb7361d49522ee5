"""Anomaly detectors (robust_z, gap, vol_regime, stale_feed) against references on real data.

Each reference is computed here independently with pandas (rolling medians,
rolling means) or from the exchange calendar's schedule, over the Lean day's
minute bars and Kaggle's daily index series.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketpulse.alerts import AlertEngine, load_rules
from marketpulse.alerts.rules import GapRule, RobustZRule, StaleFeedRule, VolRegimeRule
from marketpulse.exceptions import RulesError

DATA = "/work/shared/data"
LEAN = f"{DATA}/lean-2013-10-07/minute_bars.csv.gz"
KAGGLE = f"{DATA}/kaggle-stock-exchange/indexProcessed.csv"
MINUTE = 60 * 10**9
DAY = 86_400 * 10**9


def _rows(frame: pd.DataFrame, timeframe: str, length: int) -> dict[str, np.ndarray]:
    """Engine columns of bars (symbol, start, open, close, volume), in bar-end order."""
    frame = frame.sort_values(["start", "symbol"], kind="stable")
    start = frame["start"].to_numpy(np.int64)
    return {
        "symbol": frame["symbol"].to_numpy(object),
        "timeframe": np.full(len(frame), timeframe, object),
        "bar_start": start,
        "bar_end": start + length,
        "open": frame["open"].to_numpy(np.float64),
        "close": frame["close"].to_numpy(np.float64),
        "volume": frame["volume"].to_numpy(np.float64),
    }


@pytest.fixture(scope="module")
def lean() -> pd.DataFrame:
    frame = pd.read_csv(LEAN)
    stamps = pd.to_datetime(frame["timestamp"]).dt.tz_localize(None)
    frame["start"] = stamps.astype("datetime64[ns]").astype("int64")
    return frame


@pytest.fixture(scope="module")
def kaggle() -> pd.DataFrame:
    frame = pd.read_csv(KAGGLE).rename(
        columns={"Index": "symbol", "Open": "open", "Close": "close", "Volume": "volume"}
    )
    frame = frame[frame["symbol"].isin(["HSI", "N225", "NYA"])]
    frame["start"] = pd.to_datetime(frame["Date"]).astype("datetime64[ns]").astype("int64")
    return frame


def _fired(rule, rows) -> dict[tuple[str, int], dict]:
    return {(a.symbol, a.bar_start): a.details for a in AlertEngine([rule]).evaluate(rows)}


def _robust_reference(x: pd.Series, window: int) -> pd.Series:
    before = x.shift(1).rolling(window)
    median = before.median()
    mad = x.shift(1).rolling(window).apply(lambda w: np.median(np.abs(w - np.median(w))), raw=True)
    z = (x - median) / (1.4826 * mad)
    return z.where(mad > 0)


@pytest.mark.parametrize("of", ["return", "volume"])
def test_robust_z_matches_pandas_rolling_median_and_mad(lean, of):
    rule = RobustZRule(name="z", of=of, window=30, threshold=4.0, cooldown=0)
    fired = _fired(rule, _rows(lean, "1m", MINUTE))
    expected = {}
    for symbol, bars in lean.groupby("symbol"):
        x = bars["close"].pct_change() if of == "return" else bars["volume"].astype(float)
        z = _robust_reference(x.reset_index(drop=True), 30)
        for i in np.flatnonzero(np.abs(z.to_numpy()) >= 4.0):
            expected[symbol, int(bars["start"].iloc[i])] = float(z.iloc[i])
    assert len(expected) > 20
    assert set(fired) == set(expected)
    for key, z in expected.items():
        assert fired[key]["z"] == pytest.approx(z, rel=1e-9)


def test_gap_matches_open_against_the_previous_close(kaggle):
    rule = GapRule(name="gap", threshold=2.0, direction="down", cooldown=0)
    fired = _fired(rule, _rows(kaggle, "1d", DAY))
    expected = {}
    for symbol, bars in kaggle.groupby("symbol"):
        pct = (bars["open"] / bars["close"].shift(1) - 1) * 100
        for start, value in zip(bars["start"], pct, strict=True):
            if value <= -2.0:
                expected[symbol, int(start)] = value
    assert len(expected) > 20
    assert set(fired) == set(expected)
    for key, value in expected.items():
        assert fired[key]["gap_pct"] == pytest.approx(value, rel=1e-9)


def test_vol_regime_matches_rolling_realised_volatility(kaggle):
    rule = VolRegimeRule(name="vr", short=5, long=60, ratio=2.5, direction="both", cooldown=0)
    fired = _fired(rule, _rows(kaggle, "1d", DAY))
    expected = set()
    for symbol, bars in kaggle.groupby("symbol"):
        squared = np.log(bars["close"] / bars["close"].shift(1)) ** 2
        ratio = np.sqrt(squared.rolling(5).mean() / squared.rolling(60).mean())
        prev = ratio.shift(1)
        hit = ((prev < 2.5) & (ratio >= 2.5)) | ((prev > 0.4) & (ratio <= 0.4))
        expected |= {(symbol, int(s)) for s in bars["start"][hit.to_numpy()]}
    assert len(expected) > 10
    assert set(fired) == expected


def _silences(lean: pd.DataFrame, gap_s: float) -> set[tuple[str, int, int]]:
    """(symbol, last bar end, deadline) of each silence, from the XNYS schedule of the day."""
    import exchange_calendars as xcals

    schedule = xcals.get_calendar("XNYS").schedule.loc["2013-10-07"]
    opens, closes = (int(pd.Timestamp(schedule[c]).value) for c in ("open", "close"))
    gap, clock = int(gap_s * 1e9), int(lean["start"].max()) + MINUTE
    found = set()
    for symbol, bars in lean.groupby("symbol"):
        ends = bars["start"].to_numpy(np.int64) + MINUTE
        nexts = [*bars["start"].to_numpy(np.int64)[1:], None]
        for end, following in zip(ends, nexts, strict=True):
            begin = max(end, opens)
            deadline = begin + gap
            if deadline > closes:
                continue  # the day's session ends first (the next day's is past the data)
            if (
                following is None
                and deadline <= clock - MINUTE
                or (following is not None and following >= deadline)
            ):
                found.add((symbol, int(end), deadline))
    return found


def _outages(lean: pd.DataFrame) -> pd.DataFrame:
    """The day with outages cut out: the session trades every minute (AIG misses one)."""
    stamp = lean["timestamp"]
    cut = (
        ((lean["symbol"] == "AIG") & stamp.between("2013-10-07T15:00", "2013-10-07T15:20"))
        | ((lean["symbol"] == "BAC") & stamp.between("2013-10-07T13:00", "2013-10-07T13:40"))
        | ((lean["symbol"] == "IBM") & (stamp >= "2013-10-07T19:00"))
    )
    return lean[~cut]


@pytest.mark.parametrize("gap", [60, 180])
def test_stale_feed_matches_silences_in_the_exchange_schedule(lean, gap):
    rule = StaleFeedRule(name="stale", gap=gap, cooldown=0)
    day = _outages(lean)
    alerts = AlertEngine([rule]).evaluate(_rows(day, "1m", MINUTE))
    got = {(a.symbol, a.bar_start, a.bar_end) for a in alerts}
    expected = _silences(day, gap)
    assert {s for s, _, _ in expected} >= {"AIG", "BAC", "IBM"}
    assert got == expected
    assert len(got) == len(alerts)  # one alert per silence


def _all_rules():
    return [
        RobustZRule(name="rz", window=20, threshold=4, cooldown=0),
        RobustZRule(name="vz", of="volume", window=20, threshold=4, direction="up"),
        GapRule(name="gap", threshold=0.2),
        VolRegimeRule(name="vr", short=5, long=30, ratio=2, direction="both", cooldown=0),
        StaleFeedRule(name="stale", gap=120, cooldown=0),
    ]


@pytest.mark.parametrize("written", ["packed", "json", "both"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_batch_cuts_and_restores_give_the_alerts_of_one_call(lean, seed, written,
                                                                  json_snapshot):  # fmt: skip
    rows = _rows(_outages(lean), "1m", MINUTE)
    whole = AlertEngine(_all_rules()).evaluate(rows)
    assert {a.rule for a in whole} == {"rz", "vz", "gap", "vr", "stale"}
    rng = np.random.default_rng(seed)
    n = len(rows["bar_end"])
    cuts = sorted(set(rng.integers(1, n, 60).tolist()))
    engine, out, lo = AlertEngine(_all_rules()), [], 0
    for i, hi in enumerate([*cuts, n]):
        out += engine.evaluate({k: v[lo:hi] for k, v in rows.items()})
        lo = hi
        if i % 7 == 3:  # a restart: the state of every symbol restored into a new engine
            symbols = ("AIG", "BAC", "IBM", "SPY")
            saved = dict(zip(symbols, engine.snapshots(symbols), strict=True))
            if written != "packed":  # as every release wrote them before packed snapshots
                old = symbols if written == "json" else symbols[::2]
                saved |= {s: json_snapshot(engine, s) for s in old}
            engine = AlertEngine(_all_rules())
            if i % 2:  # every symbol in one pass, or one at a time
                engine.restore_all([engine.load(s, data) for s, data in saved.items()])
            else:
                for symbol, data in saved.items():
                    engine.restore(symbol, data)
    assert sorted(out, key=lambda a: a.id) == sorted(whole, key=lambda a: a.id)


def test_state_written_before_stale_rules_still_restores(lean, json_snapshot):
    rows = _rows(lean, "1m", MINUTE)
    half = {k: v[: len(v) // 2] for k, v in rows.items()}
    old = AlertEngine([GapRule(name="gap", threshold=0.2)])
    old.evaluate(half)
    data = json_snapshot(old, "SPY")
    assert b"last_end" not in data  # no such field without stale-feed rules
    engine = AlertEngine(_all_rules())
    engine.restore("SPY", data)
    rest = {k: v[len(v) // 2 :] for k, v in rows.items()}
    assert engine.evaluate(rest)  # runs on; SPY's silences are seen from its next bar


@pytest.mark.parametrize(
    ("body", "line", "reason"),
    [
        ("type: robust_z\n    of: price", 4, "unknown series 'price'"),
        ("type: robust_z\n    window: 2", 4, "window must be 5..1000"),
        ("type: gap", 2, "missing required field 'threshold'"),
        ("type: gap\n    threshold: -1", 4, "threshold must be > 0"),
        ("type: vol_regime\n    short: 50\n    long: 20", 4, "need 2 <= short < long"),
        ("type: vol_regime\n    ratio: 0.5", 4, "ratio must be > 1"),
        ("type: stale_feed\n    calendar: MOON", 4, "unknown exchange calendar 'MOON'"),
        ("type: stale_feed\n    gap: 0", 4, "gap must be > 0 seconds"),
        ("type: stale_feed\n    gap: soon", 4, "field 'gap': expected a number"),
    ],
)
def test_bad_detector_fields_name_their_file_and_line(tmp_path, body, line, reason):
    path = tmp_path / "rules.yaml"
    path.write_text(f"rules:\n  - name: r\n    {body}\n", encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    text = str(info.value)
    assert text.startswith(f"{path}:{line}: rule 'r': ")
    assert reason in text
    assert "\n" not in text


def test_a_rules_file_of_detectors_loads_with_defaults_and_values(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rules]]\nname = "jump"\ntype = "robust_z"\nwindow = 40\nthreshold = 5\n'
        '[[rules]]\nname = "burst"\ntype = "robust_z"\nof = "volume"\ndirection = "up"\n'
        '[[rules]]\nname = "gap"\ntype = "gap"\nthreshold = 1.5\n'
        '[[rules]]\nname = "regime"\ntype = "vol_regime"\n'
        '[[rules]]\nname = "stale"\ntype = "stale_feed"\ngap = 120\ncalendar = "24/7"\n',
        encoding="utf-8",
    )
    assert load_rules(path) == [
        RobustZRule(name="jump", window=40, threshold=5.0),
        RobustZRule(name="burst", of="volume", direction="up"),
        GapRule(name="gap", threshold=1.5),
        VolRegimeRule(name="regime"),
        StaleFeedRule(name="stale", gap=120.0, calendar="24/7"),
    ]


def test_the_readmes_detector_example_loads_and_runs(tmp_path, lean):
    guide = Path(__file__).resolve().parents[3] / "docs" / "guides" / "alerts.md"
    section = guide.read_text(encoding="utf-8").split("**Anomaly detectors.**", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "rules.yaml"
    path.write_text(block, encoding="utf-8")
    rules = load_rules(path)
    assert [r.type for r in rules] == ["robust_z", "gap", "vol_regime", "stale_feed"]
    alerts = AlertEngine(rules).evaluate(_rows(_outages(lean), "1m", MINUTE))
    assert {a.rule for a in alerts} >= {"return_jump", "stale_feed"}
