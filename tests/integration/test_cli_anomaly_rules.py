"""Anomaly detectors end to end: ``marketpulse replay --rules`` of the Lean day, then backtest.

The Lean day's trades, with AIG's between 15:00 and 15:20 UTC taken out (an
outage: in the day itself every symbol trades every minute of the session),
are replayed with a rules file of detectors. The stream's stored alerts equal
a backtest of the same rules over the stored bars (streaming equals batch
through the real pipeline), and the stale-feed alerts equal the silences found
here in the stored bars and XNYS's schedule.
"""

import gzip
import json

import pytest

from .conftest import LEAN_TRADES, marketpulse

pytestmark = pytest.mark.integration

RULES = """\
rules:
  - name: return_jump
    type: robust_z
    window: 30
    threshold: 6
    intervals: [1m]
  - name: volume_burst
    type: robust_z
    of: volume
    threshold: 8
    direction: up
    intervals: [1m]
  - name: opening_gap
    type: gap
    threshold: 0.1
    intervals: [1m]
  - name: vol_up
    type: vol_regime
    short: 5
    long: 60
    ratio: 2.5
    intervals: [1m]
  - name: stale
    type: stale_feed
    gap: 60
    cooldown: 0
    intervals: [1m]
"""
OPEN, CLOSE = 1381152600 * 10**9, 1381176000 * 10**9  # XNYS 2013-10-07, 13:30 and 20:00 UTC
MINUTE = 60 * 10**9


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("anomalies")
    (root / "rules.yaml").write_text(RULES, encoding="utf-8")
    with gzip.open(LEAN_TRADES, "rt") as src, gzip.open(root / "trades.csv.gz", "wt") as out:
        for line in src:
            if not (line[24:28] == ",AIG" and "2013-10-07T15:00" <= line[:16] < "2013-10-07T15:20"):
                out.write(line)
    result = marketpulse("replay", root / "trades.csv.gz", "--lake", root / "lake",
                         "--dataset", "lean", "--rules", root / "rules.yaml", cwd=root)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root


def _sql(root, query):
    out = marketpulse("sql", query, "--lake", root / "lake", "--format", "json", cwd=root)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_replayed_detectors_store_what_a_backtest_of_them_raises(lake):
    stored = {
        r["rule"]: r["n"]
        for r in _sql(lake, "SELECT rule, count(*) AS n FROM alerts GROUP BY rule")
    }
    assert set(stored) == {"return_jump", "volume_burst", "opening_gap", "vol_up", "stale"}
    result = marketpulse("backtest", "--lake", lake / "lake", "--rules", lake / "rules.yaml",
                         "--horizons", "5", "--format", "json", cwd=lake)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r["rule"]: r["alerts"] for r in json.loads(result.stdout)} == stored


def test_stale_alerts_are_the_silences_of_the_stored_minute_bars(lake):
    bars = _sql(lake, "SELECT symbol, epoch_ns(bar_start) AS s FROM bars"
                      " WHERE timeframe = '1m' ORDER BY symbol, s")  # fmt: skip
    clock = max(b["s"] for b in bars) + MINUTE
    expected, by_symbol = set(), {}
    for b in bars:
        by_symbol.setdefault(b["symbol"], []).append(b["s"])
    for symbol, starts in by_symbol.items():
        for start, following in zip(starts, [*starts[1:], None], strict=True):
            deadline = max(start + MINUTE, OPEN) + MINUTE
            if deadline > CLOSE:
                continue
            if (following is None and deadline <= clock - MINUTE) or (
                following is not None and following >= deadline
            ):
                expected.add((symbol, start + MINUTE, deadline))
    got = _sql(lake, "SELECT symbol, epoch_ns(bar_start) AS s, epoch_ns(bar_end) AS e, message"
                     " FROM alerts WHERE rule = 'stale'")  # fmt: skip
    assert {(g["symbol"], g["s"], g["e"]) for g in got} == expected
    assert "AIG" in {symbol for symbol, _, _ in expected}
    assert all("no trades for 60 s of open market (XNYS)" in g["message"] for g in got)


def test_a_bad_detector_field_stops_replay_with_one_line(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - name: z\n    type: robust_z\n    of: price\n", encoding="utf-8"
    )
    result = marketpulse("replay", LEAN_TRADES, "--lake", tmp_path / "lake",
                         "--rules", tmp_path / "rules.yaml", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and "rules.yaml:4: rule 'z': unknown series 'price'" in line
