"""``bench/bench_anomalies.py --smoke``: the detectors' measurement still runs, writing nothing."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_the_anomaly_benchmark_measures_every_detector_and_writes_nothing_on_smoke():
    doc = ROOT / "docs" / "anomalies.md"
    before = doc.read_bytes()
    result = subprocess.run(
        [sys.executable, "bench/bench_anomalies.py", "--smoke", "--seed", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    out = json.loads(result.stdout.splitlines()[-1])
    measured = out["measured"]
    assert set(measured) == {"return_jump", "volume_burst", "opening_gap", "vol_expansion",
                             "stale_feed", "half_space", "isolation_forest"}  # fmt: skip
    for m in measured.values():
        assert m["labels"] >= 1 and 0 <= m["found"] <= m["labels"]
        assert 0 <= m["true_positives"] <= m["alerts"]
    stale = measured["stale_feed"]
    assert stale["found"] == stale["labels"], (stale, out["stale_feed"], result.stderr[-4000:])
    assert doc.read_bytes() == before
