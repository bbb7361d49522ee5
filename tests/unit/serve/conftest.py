"""A lake filled by the real embedded pipeline with two datasets, and clients of the dashboard.

The two datasets are two simulated markets of the same symbols (other seeds,
other prices), written one after the other: ``sim-b`` is the most recently
written.
"""

from __future__ import annotations

import pytest

from marketpulse.alerts import load_rules
from marketpulse.feeds import Simulator
from marketpulse.runtime import Metrics
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.stream import ProcessorSettings

#: Rules that fire often on a simulated market.
RULES = """
rules:
  - name: jump
    type: pct_change
    window: 1
    threshold: 0.02
    severity: critical
    intervals: [1s]
    cooldown: 20
  - name: macd_turn
    type: macd_cross
    intervals: [1s]
    cooldown: 1
"""

SYMBOLS = 6
#: The lake's datasets, in the order they are written.
DATASETS = ("sim-a", "sim-b")
#: Where test clients say they are: a name the dashboard serves (not TestClient's "testserver").
BASE_URL = "http://localhost:8050"
WS_URL = "ws://localhost:8050/ws"
#: 2024-03-05 15:00 UTC: a fixed time, so the ten minutes never straddle two dates.
START_NS = 1_709_650_800 * 1_000_000_000


@pytest.fixture(scope="session")
def rules_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("rules") / "rules.yaml"
    path.write_text(RULES)
    return path


@pytest.fixture(scope="session")
def filled_lake(tmp_path_factory, rules_file):
    """Ten simulated minutes of 6 symbols through the pipeline, twice, as two datasets."""
    root = tmp_path_factory.mktemp("lake")
    snapshots = []
    for seed, dataset in enumerate(DATASETS, start=11):
        feed = Simulator(
            symbols=SYMBOLS, rate=60.0, seed=seed, start_ts=START_NS, realtime=False,
            max_events=36_000,
        )  # fmt: skip
        options = RunnerOptions(
            lake=str(root),
            rules=load_rules(rules_file),
            processor=ProcessorSettings(intervals=("1s", "1m")),
            dataset=dataset,
        )
        metrics = Metrics()
        EmbeddedPipeline(feed, options, metrics).run()
        snapshots.append(metrics.snapshot())
    return root, snapshots[0]
