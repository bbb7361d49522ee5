"""Forecasts on the Kafka path: `process --forecast`, killed mid-run, predicts what the batch does.

The tuned `process` of :func:`process_command` (``--idle-timeout 0``: bars close
by input alone, so the run's bars are the file's; ``--instance-id``: the restart
takes its partitions back at once) is killed at a random moment once some
predictions are out, then restarted from its checkpoint. The predictions the sink
stores must be exactly those `forecast evaluate`'s prequential run makes over the
stored bars: nothing lost or twice, and the models restored as they were (a model
restarted from scratch predicts otherwise).
"""

import random

import numpy as np
import pytest

from marketpulse.analytics import Lake
from marketpulse.forecast.evaluation import EvaluationScope, predict

from .busy import busy_cpu
from .conftest import LEAN_TRADES
from .kafka_tools import (
    committed_offsets,
    create_topics,
    default_process,
    load_file,
    process_command,
    read_committed,
    start,
    wait_for_output,
    wait_log,
)

pytestmark = pytest.mark.integration

MODELS = ("online-linear", "random")
KEY = ("timeframe", "symbol", "bar_start", "model", "horizon")


def _stored_equal_the_batch_run(lake, horizons=(1, 5)):
    """The sink's predictions are every bar's, once, and those of the prequential run."""
    with Lake(lake) as opened:
        batch = predict(opened, EvaluationScope(models=MODELS, horizons=horizons))
        stream = opened.query(
            "SELECT symbol, timeframe, epoch_ns(bar_start) AS bar_start, model, horizon, "
            "direction, probability, value, dataset FROM predictions ORDER BY "
            "timeframe, symbol, bar_start, model, horizon"
        )  # fmt: skip
        bars = opened.query("SELECT count(*) AS n FROM bars").column("n")[0].as_py()
    assert stream.num_rows == bars * len(MODELS) * len(horizons)  # each bar, model, horizon
    for column in (*KEY, "direction", "dataset"):
        assert stream.column(column).to_pylist() == batch.column(column).to_pylist(), column
    for column in ("probability", "value"):
        got = np.array(stream.column(column).to_pylist(), float)
        want = np.array(batch.column(column).to_pylist(), float)
        assert (np.isnan(got) == np.isnan(want)).all(), column
        known = ~np.isnan(got)
        # the features of a stream's bar and of a stored one agree to the last digits
        np.testing.assert_allclose(got[known], want[known], rtol=1e-9, atol=1e-12)
    return stream.num_rows


def test_process_with_its_defaults_killed_at_random_on_a_busy_cpu_stores_the_batch_predictions(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    """As users run it: no option tuned (bars close by the clock too, commits at the default
    interval, a restart waits out the dead member's session), the machine's cores kept busy
    (:mod:`.busy`)."""
    with busy_cpu():
        create_topics(kafka_bootstrap, topic_prefix)
        sent = load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES)
        options = ("--forecast", ",".join(MODELS), "--forecast-horizons", "1,5")
        first = start(default_process(kafka_bootstrap, topic_prefix, *options))
        at = random.randint(10_000, 90_000)  # of about 180,000 predictions
        wait_for_output(kafka_bootstrap, f"{topic_prefix}predictions", at, first, timeout=240)
        first.kill()
        first.communicate()
        assert first.returncode == -9  # the kill landed on a running process
        consumed = committed_offsets(kafka_bootstrap, f"{topic_prefix}process",
                                     f"{topic_prefix}ticks")  # fmt: skip
        again = start(default_process(kafka_bootstrap, topic_prefix, *options,
                                      "--exit-when-idle", "5"))  # fmt: skip
        log = wait_log(again, 400)
        assert again.returncode == 0, log
    lake = tmp_path / "lake"
    cli("sink", "lake", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}sink", "--exit-when-idle", "4", "--lake", lake)  # fmt: skip
    _stored_equal_the_batch_run(lake)
    assert consumed < sent  # the kill came with input left: the restart restored, went on


def test_process_killed_mid_run_stores_the_predictions_of_the_batch_run(
    cli, kafka_bootstrap, topic_prefix, tmp_path
):
    create_topics(kafka_bootstrap, topic_prefix)
    assert load_file(kafka_bootstrap, topic_prefix, LEAN_TRADES) == 388_417
    options = ("--forecast", ",".join(MODELS), "--forecast-horizons", "1,5", "--dataset", "lean")
    first = start(process_command(kafka_bootstrap, topic_prefix, "forecast", *options))
    at = random.randint(20_000, 120_000)  # of about 180,000 predictions
    wait_for_output(kafka_bootstrap, f"{topic_prefix}predictions", at, first, timeout=180)
    first.kill()
    first.communicate()
    assert first.returncode == -9  # the kill landed while it ran
    before = sum(map(len, read_committed(kafka_bootstrap, f"{topic_prefix}predictions").values()))
    again = start(process_command(kafka_bootstrap, topic_prefix, "forecast", *options,
                                  "--exit-when-idle", "4"))  # fmt: skip
    log = wait_log(again, 300)
    assert again.returncode == 0, log
    lake = tmp_path / "lake"
    cli("sink", "lake", "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--group", f"{topic_prefix}sink", "--exit-when-idle", "4", "--lake", lake)  # fmt: skip

    stored = _stored_equal_the_batch_run(lake)
    assert before < stored  # killed with predictions still to make: mid-run
