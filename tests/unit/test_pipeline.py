"""``marketpulse.Pipeline``: the embedded runner behind ``marketpulse run``, from Python."""

from __future__ import annotations

import contextlib
import io
import re
import textwrap

import pyarrow.parquet as pq
import pytest

from marketpulse import MarketPulseError, Pipeline, PipelineResult, Settings, Trade
from marketpulse.exceptions import ConfigError, InputError
from marketpulse.testing import CollectingSink, ListFeed

S = 1_000_000_000
T0 = 1_381_152_600 * S  # 2013-10-07 13:30 UTC

#: 180 trades of AAPL one second apart, prices 100, 101, ...: three whole minutes.
TICKS = [Trade("AAPL", T0 + i * S, 100.0 + i, 10.0) for i in range(180)]


def test_a_list_replayed_into_the_lake_gives_its_figures_and_rows(tmp_path):
    lake = tmp_path / "lake"
    result = Pipeline(ListFeed(TICKS, name="minutes"), lake=lake, intervals="1m",
                      alerts_file="").run()  # fmt: skip
    assert isinstance(result, PipelineResult)
    assert (result.ticks_in, result.bars, result.rejected, result.dlq) == (180, 3, 0, 0)
    assert result.dataset == "minutes"
    assert result.lake == str(lake) and result.lake_files > 0 and result.lake_bytes > 0
    bars = pq.read_table(lake / "bars").sort_by("bar_start").to_pylist()
    assert [(b["open"], b["high"], b["low"], b["close"], b["volume"]) for b in bars] == [
        (100.0, 159.0, 100.0, 159.0, 600.0),
        (160.0, 219.0, 160.0, 219.0, 600.0),
        (220.0, 279.0, 220.0, 279.0, 600.0),
    ]
    assert {b["dataset"] for b in bars} == {"minutes"}
    assert pq.read_table(lake / "trades").num_rows == 180


def test_a_short_simulated_run_stores_what_it_counts(tmp_path):
    lake = tmp_path / "lake"
    # 3 s: a 1 s bar closes once a later tick passes its end and the lateness (a busy
    # machine's unit-test run saw none closed in 1.5 s)
    result = Pipeline(lake=str(lake), duration=3.0, symbols=3, rate=400, seed=7,
                      intervals=["1s"], alerts_file="").run()  # fmt: skip
    assert result.dataset == "simulator"
    assert result.ticks_in > 100
    assert result.bars > 0
    assert pq.read_table(lake / "bars").num_rows == result.bars
    assert pq.read_table(lake / "trades").num_rows == result.ticks_in - result.rejected


def test_collecting_sinks_take_the_place_of_the_lake():
    sink = CollectingSink()
    result = Pipeline(ListFeed(TICKS), intervals="1m", sinks=[sink], alerts_file="").run()
    assert result.lake == "" and result.lake_files == 0
    assert sink.closed
    assert sink.table("bars").num_rows == result.bars == 3
    assert sink.table("indicators").num_rows == 3
    assert sink.table("trades").num_rows == 180


def test_the_options_land_in_the_settings_tree_over_the_given_settings():
    pipeline = Pipeline(settings=Settings(lateness=2.0, alerts_file=""), rate=250,
                        intervals="1m,5m", indicators="ema(5), rsi(7)")  # fmt: skip
    assert pipeline.settings.lateness == 2.0
    assert pipeline.settings.simulator.rate == 250.0
    assert pipeline.settings.intervals == ("1m", "5m")
    assert pipeline.settings.indicators == ("ema(5), rsi(7)",)


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"rate": -5}, ConfigError, "Pipeline: rate: expected a number above 0"),
        ({"symbols": 0}, ConfigError, "Pipeline: symbols: expected a number at least 1"),
        ({"lateness": "soon"}, ConfigError, "Pipeline: lateness: expected a number at least 0"),
        ({"duration": 0}, ConfigError, "Pipeline: duration: expected a number above 0"),
        ({"intervals": "7x"}, ConfigError, "Pipeline: intervals: "),
        ({"intervals": "5m,1m"}, ConfigError, "Pipeline: intervals: .*ascending"),
        ({"indicators": "nosuch(3)"}, ConfigError, "indicators: "),
        ({"dataset": "no good"}, InputError, "Pipeline: dataset: 'no good' is not a dataset"),
        ({"feed": "nosuch.csv"}, InputError, "Pipeline: feed: 'nosuch.csv' is neither"),
        ({"feed": 42}, ConfigError, "Pipeline: feed: expected"),
        ({"speed": 2.0}, ConfigError, "Pipeline: speed applies to a replayed file"),
        ({"feed": ListFeed(TICKS), "rate": 10}, ConfigError, "symbols, rate, seed apply to"),
        ({"tickers": ["AAPL"]}, ConfigError, "Pipeline: tickers apply to a live vendor"),
    ],
)
def test_a_bad_option_is_refused_before_anything_runs_naming_it(options, error, named):
    with pytest.raises(error, match=named) as caught:
        Pipeline(**options)
    assert isinstance(caught.value, MarketPulseError)


def _docstring_example() -> str:
    doc = Pipeline.__doc__ or ""
    block = re.search(r"::\n\n((?:        .*\n|\n)+)", doc)
    assert block is not None, "the docstring lost its example"
    return textwrap.dedent(block.group(1))


def test_the_docstring_example_runs_as_written(tmp_path, monkeypatch):
    code = _docstring_example()
    assert "Pipeline(" in code and ".run()" in code and len(code.strip().splitlines()) <= 10
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "Pipeline docstring", "exec"), {})  # noqa: S102
    bars, alerts = (int(x) for x in out.getvalue().split())
    assert bars > 0 and alerts >= 0
    assert pq.read_table(tmp_path / "lake" / "bars").num_rows == bars
