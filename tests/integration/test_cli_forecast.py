"""``marketpulse forecast evaluate``: models and baselines over the Lean day's stored bars.

The baselines' figures are checked against the same figures computed in SQL over
the bars the replay stored; the learned models against what any forecast must
satisfy (counts, ranges, reproducibility).
"""

import json
import math
import re
import shutil

import numpy as np
import pytest

from .conftest import LEAN_TRADES, marketpulse, marketpulse_in_process

pytestmark = pytest.mark.integration


def _evaluate(lake, cwd, *args, ok=True):
    result = marketpulse_in_process("forecast", "evaluate", "--lake", lake, *args, cwd=cwd)
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def _sql(lake, cwd, query):
    out = marketpulse_in_process("sql", query, "--lake", lake, "--format", "json", cwd=cwd)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def record(lean_lake, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("forecast")
    out = _evaluate(lean_lake.lake, cwd, "--timeframes", "1m", "--horizons", "1,5",
                    "--format", "json")  # fmt: skip
    return {(r["model"], r["horizon"]): r for r in json.loads(out.stdout)}, out.stderr, cwd


def test_every_model_at_every_horizon_over_every_bar_with_an_outcome(record, lean_lake):
    rows, stderr, cwd = record
    assert {m for m, _ in rows} == {"online-linear", "online-tree", "persistence", "always-up",
                                    "drift", "random"}  # fmt: skip
    (counts,) = _sql(lean_lake.lake, cwd,
                     "SELECT count(*) AS bars, count(DISTINCT symbol) AS symbols FROM bars "
                     "WHERE timeframe = '1m'")  # fmt: skip
    for (_, h), row in rows.items():
        # each symbol's last h bars have no outcome yet
        assert row["predictions"] == counts["bars"] - h * counts["symbols"]
        for low, mid, high in (("accuracy_low_pct", "accuracy_pct", "accuracy_high_pct"),
                               ("brier_low", "brier", "brier_high")):  # fmt: skip
            if row[mid] is not None:
                assert row[low] <= row[mid] <= row[high]
    assert f"{counts['bars']:,} bars of {counts['symbols']} symbols" in stderr
    assert "forecast evaluate: 100 %" in stderr  # progress, as a line per tenth off a terminal


def test_the_baselines_equal_the_same_figures_computed_in_sql(record, lean_lake):
    rows, _, cwd = record
    for h in (1, 5):
        (want,) = _sql(lean_lake.lake, cwd, f"""
            WITH b AS (
                SELECT close, lead(close, {h}) OVER (PARTITION BY symbol
                                                     ORDER BY bar_start) AS later
                FROM bars WHERE timeframe = '1m')
            SELECT count(*) FILTER (WHERE later <> close) AS moved,
                   count(*) FILTER (WHERE later > close) AS ups,
                   avg(abs(later / close - 1)) * 10000 AS mae_zero_bp
            FROM b WHERE later IS NOT NULL""")  # fmt: skip
        always_up = rows["always-up", h]
        assert always_up["moved"] == want["moved"]
        assert math.isclose(always_up["accuracy_pct"], 100 * want["ups"] / want["moved"])
        # always up with probability 1: its Brier score is the share of down moves
        assert math.isclose(always_up["brier"], 1 - want["ups"] / want["moved"])
        # random expects no change: its error is the mean absolute return
        assert math.isclose(rows["random", h]["mae_bp"], want["mae_zero_bp"], rel_tol=1e-9)
        assert rows["random", h]["brier"] == 0.25


def test_the_same_bars_and_seed_give_the_same_page_and_other_sections_are_kept(lean_lake, tmp_path):
    page = tmp_path / "forecasts.md"
    page.write_text("# Forecasts\n\nWhat the figures mean.\n", encoding="utf-8")
    args = ("--timeframes", "1m", "--horizons", "1", "--models", "online-linear,random",
            "--doc", page)  # fmt: skip
    _evaluate(lean_lake.lake, tmp_path, *args)
    first = page.read_text(encoding="utf-8")
    _evaluate(lean_lake.lake, tmp_path, *args)
    assert page.read_text(encoding="utf-8") == first
    assert first.startswith("# Forecasts\n\nWhat the figures mean.\n")
    assert (
        "`marketpulse forecast evaluate --dataset lean-2013-10-07-trades --timeframes 1m "
        "--horizons 1 --models online-linear,random --seed 0`"
    ) in first
    assert "| online-linear | 1m | 1 |" in first and "| random | 1m | 1 |" in first
    _evaluate(lean_lake.lake, tmp_path, *args[:-2], "--seed", "1", "--doc", page)
    assert page.read_text(encoding="utf-8") != first  # another coin
    assert page.read_text(encoding="utf-8").count("<!-- forecast evaluate:") == 1


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--models", "lstm9"), "--models: unknown model lstm9 (known: online-linear"),
        (("--horizons", "0"), "--horizons: whole numbers of bars, at least 1"),
        (("--horizons", "a"), "--horizons: expected whole numbers of bars"),
        (
            ("--timeframes", "7m"),
            "--timeframes: dataset lean-2013-10-07-trades has no bars of 7m (it has: 1s, 1m, 5m)",
        ),
        (("--symbols", "ZZZ"), "--symbols: no bars of ZZZ in dataset lean-2013-10-07-trades"),
        (("--doc", "/nonexistent/forecasts.md"), "--doc: no folder /nonexistent"),
        (
            ("--timeframes", "1m", "--models", "lstm", "--folds", "5000"),
            "--folds: 860 bar times are too few for 5000 walk-forward test windows",
        ),
    ],
)
def test_a_bad_option_is_one_line_naming_it(lean_lake, tmp_path, args, named):
    out = _evaluate(lean_lake.lake, tmp_path, *args, ok=False)
    assert out.returncode == 2
    assert named in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_as_a_user_runs_it_a_bad_option_has_no_traceback(lean_lake, tmp_path):
    out = marketpulse("forecast", "evaluate", "--lake", lean_lake.lake, "--models", "x",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith("error: --models: unknown model x")
    assert "Traceback" not in out.stderr


def test_replay_with_forecast_stores_what_the_batch_run_predicts(tmp_path):
    """The stream's predictions (``replay --forecast``) are the prequential run's over its bars."""
    from marketpulse.analytics import Lake
    from marketpulse.forecast.evaluation import EvaluationScope, predict

    lake = tmp_path / "lake"
    out = marketpulse("replay", LEAN_TRADES, "--lake", lake, "--intervals", "1m",
                      "--forecast", "online-tree,drift", "--forecast-horizons", "2",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    with Lake(lake) as opened:
        batch = predict(opened, EvaluationScope(models=("online-tree", "drift"), horizons=(2,)))
        stream = opened.query(
            "SELECT symbol, timeframe, epoch_ns(bar_start) AS bar_start, model, horizon, "
            "direction, probability, value FROM predictions "
            "ORDER BY timeframe, symbol, bar_start, model, horizon"
        )  # fmt: skip
        (bars,) = opened.query("SELECT count(*) AS n FROM bars").column("n").to_pylist()
    assert stream.num_rows == 2 * bars > 4_000
    for column in ("symbol", "bar_start", "model", "horizon", "direction"):
        assert stream.column(column).to_pylist() == batch.column(column).to_pylist(), column
    for column in ("probability", "value"):
        got = np.array(stream.column(column).to_pylist(), float)
        want = np.array(batch.column(column).to_pylist(), float)
        assert (np.isnan(got) == np.isnan(want)).all()
        np.testing.assert_allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-9)


def test_replay_with_a_trained_gbm_stores_what_the_artefact_predicts_of_the_lakes_bars(
    lean_lake, tmp_path
):
    """``forecast train``, then ``replay --forecast gbm:VERSION``: the stream's predictions are
    the artefact's over the features of the bars in the lake (streaming equals batch), on the
    artefact's timeframe and horizon only."""
    from marketpulse.analytics import Lake
    from marketpulse.forecast.artefacts import load
    from marketpulse.forecast.frame import Frame
    from marketpulse.sinks.lake_location import LakeLocation

    lake = tmp_path / "lake"
    shutil.copytree(lean_lake.lake, lake)
    trained = _train(lake, tmp_path, "--timeframe", "1m", "--horizon", "3")
    assert trained.returncode == 0, trained.stderr
    version = re.search(r"trained gbm:([0-9a-f]{12})", trained.stdout)[1]
    out = marketpulse("replay", LEAN_TRADES, "--lake", lake, "--forecast",
                      f"drift,gbm:{version}", "--forecast-horizons", "1", cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr
    _, boosters = load(LakeLocation.of(lake), "gbm", version)
    with Lake(lake) as opened:
        stream = opened.query(
            "SELECT symbol, timeframe, epoch_ns(bar_start) AS bar_start, horizon, direction,"
            " probability, value FROM predictions WHERE model = $1"
            " ORDER BY timeframe, symbol, bar_start", [f"gbm:{version}"]
        )  # fmt: skip
        frame = Frame(opened, None, ("1m",))
        (drift,) = opened.query("SELECT count(*) AS n FROM predictions WHERE model = 'drift'"
                                ).column("n").to_pylist()  # fmt: skip
    direction, probability, value = boosters.predict(frame.matrix())
    assert set(stream.column("timeframe").to_pylist()) == {"1m"}
    assert set(stream.column("horizon").to_pylist()) == {3}
    assert stream.num_rows == frame.bars.num_rows > 2_000 and drift > stream.num_rows
    assert stream.column("symbol").to_pylist() == frame.bars.column("symbol").to_pylist()
    assert stream.column("bar_start").to_pylist() == frame.bar_start.tolist()
    np.testing.assert_allclose(stream.column("probability").to_numpy(), probability, atol=1e-9)
    np.testing.assert_allclose(stream.column("value").to_numpy(), value, atol=1e-12)
    assert stream.column("direction").to_pylist() == direction.tolist()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--forecast", "lstm"), "forecast models: unknown model lstm (known: online-linear"),
        (("--forecast", "drift", "--forecast-horizons", "0"),
         "--forecast-horizons: whole numbers of bars, at least 1"),
        (("--forecast", "gbm:0123456789ab"), "forecast models: no model gbm:0123456789ab in the "
         "lake at"),
    ],
)  # fmt: skip
def test_replay_with_a_bad_forecast_option_is_one_line_and_stores_nothing(tmp_path, args, named):
    out = marketpulse("replay", LEAN_TRADES, "--lake", tmp_path / "lake", *args, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: {named}"), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "lake").exists()


def test_a_damaged_file_in_the_lake_is_one_line_naming_it(tmp_path):
    part = tmp_path / "lake" / "bars" / "dataset=x" / "timeframe=1m" / "period=2024-01-01"
    part.mkdir(parents=True)
    (part / "0.parquet").write_bytes(b"not parquet")
    out = marketpulse("forecast", "evaluate", "--lake", tmp_path / "lake", "--models", "drift",
                      cwd=tmp_path)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.startswith(f"error: cannot read the lake at {tmp_path / 'lake'}: ")
    assert "0.parquet" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_gbm_and_the_others_are_scored_over_the_same_walk_forward_bars(lean_lake, tmp_path):
    out = _evaluate(lean_lake.lake, tmp_path, "--timeframes", "1m", "--horizons", "1",
                    "--models", "gbm,drift,random", "--format", "json")  # fmt: skip
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    assert set(rows) == {"gbm", "drift", "random"}
    # the test windows: the bars of the last half of the bar times, with an outcome
    (tested,) = _sql(lean_lake.lake, tmp_path, """
        WITH t AS (SELECT bar_start, row_number() OVER (ORDER BY bar_start) - 1 AS i,
                          count(*) OVER () AS n
                   FROM (SELECT DISTINCT bar_start FROM bars WHERE timeframe = '1m')),
             b AS (SELECT bar_start, lead(close) OVER (PARTITION BY symbol
                                                       ORDER BY bar_start) AS later
                   FROM bars WHERE timeframe = '1m')
        SELECT count(*) AS n FROM b
        WHERE later IS NOT NULL
          AND bar_start >= (SELECT bar_start FROM t WHERE i = n // 2)""")  # fmt: skip
    assert {r["predictions"] for r in rows.values()} == {tested["n"]}
    assert len({r["moved"] for r in rows.values()}) == 1
    assert rows["gbm"]["calls"] == rows["gbm"]["moved"]
    assert "Walk-forward (gbm): every model scored over the same bars" in out.stderr
    # the page: the walk-forward run's own section, beside the prequential one
    page = tmp_path / "page.md"
    for models in ("drift,random", "gbm,drift,random"):
        _evaluate(lean_lake.lake, tmp_path, "--timeframes", "1m", "--horizons", "1", "--models",
                  models, "--doc", page)  # fmt: skip
    again = _evaluate(lean_lake.lake, tmp_path, "--timeframes", "1m", "--horizons", "1", "--models",
                      "gbm,drift,random", "--format", "json", "--doc", page)  # fmt: skip
    assert again.stdout == out.stdout
    text = page.read_text()
    dataset = "lean-2013-10-07-trades"
    assert text.count(f"<!-- forecast evaluate: {dataset} -->") == 1
    assert text.count(f"<!-- forecast evaluate: {dataset}, walk-forward -->") == 1
    prequential, walked = text.split(f"## {dataset}, walk-forward")
    assert "| gbm |" in walked and "| gbm |" not in prequential
    assert "Walk-forward (gbm)" in walked and "Prequential" in prequential
    assert "wrote the section lean-2013-10-07-trades, walk-forward of" in again.stderr


def _train(lake, cwd, *args):
    return marketpulse_in_process("forecast", "train", "--lake", lake, *args, cwd=cwd)


def test_train_saves_a_versioned_artefact_and_the_same_bars_give_the_same_version(
    lean_lake, tmp_path
):
    from marketpulse.forecast.features import FEATURES

    lake = tmp_path / "lake"
    shutil.copytree(lean_lake.lake, lake)
    first = _train(lake, tmp_path, "--timeframe", "1m", "--horizon", "1")
    assert first.returncode == 0, first.stderr
    (line,) = first.stdout.strip().splitlines()
    version = re.search(r"gbm:([0-9a-f]{12}) ", line).group(1)
    assert line.endswith(str(lake / "_models" / "gbm" / version))
    again = _train(lake, tmp_path, "--timeframe", "1m", "--horizon", "1")
    assert again.returncode == 0, again.stderr
    assert again.stdout == first.stdout
    other = _train(lake, tmp_path, "--timeframe", "1m", "--horizon", "1", "--seed", "1")
    assert f"gbm:{version} " not in other.stdout

    folder = lake / "_models" / "gbm" / version
    assert sorted(p.name for p in folder.iterdir()) == ["direction.txt", "model.json",
                                                        "return.txt"]  # fmt: skip
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    (span,) = _sql(lake, tmp_path, """
        SELECT strftime(min(bar_start), '%Y-%m-%dT%H:%M:%SZ') AS first,
               strftime(max(bar_start), '%Y-%m-%dT%H:%M:%SZ') AS last,
               count(*) AS bars, count(DISTINCT symbol) AS symbols
        FROM bars WHERE timeframe = '1m'""")  # fmt: skip
    assert meta["features"] == list(FEATURES)
    assert (meta["trained_from"], meta["trained_to"]) == (span["first"], span["last"])
    assert meta["rows"] == span["bars"] - span["symbols"]  # each series' last bar: no outcome
    assert (meta["name"], meta["version"], meta["timeframe"], meta["horizon"], meta["seed"]) == (
        "gbm", version, "1m", 1, 0)  # fmt: skip
    assert meta["dataset"] == "lean-2013-10-07-trades" and len(meta["symbols"]) == 4

    listed = marketpulse_in_process("forecast", "models", "--lake", lake, "--format", "json",
                                    cwd=tmp_path)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    mine = [m for m in json.loads(listed.stdout) if m["version"] == version]
    assert mine == [{
        "name": "gbm", "version": version, "timeframe": "1m", "horizon": 1,
        "trained_from": span["first"], "trained_to": span["last"],
        "dataset": "lean-2013-10-07-trades", "rows": meta["rows"], "seed": 0,
    }]  # fmt: skip
    assert len(json.loads(listed.stdout)) == 2  # seed 0 and seed 1
    # the lake's tables are untouched by the artefacts beside them
    assert _sql(lake, tmp_path, "SELECT count(*) AS n FROM bars")[0]["n"] == 44_846


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--timeframe", "7m"), "--timeframe: dataset lean-2013-10-07-trades has no bars of 7m"),
        (("--timeframe", "1m", "--horizon", "0"), "--horizon: whole numbers of bars, at least 1"),
        (("--timeframe", "1m", "--horizon", "a"), "--horizon: expected whole numbers of bars"),
        (("--timeframe", "1m", "--horizon", "1,5"), "--horizon: one whole number of bars"),
        (("--timeframe", "1m", "--horizon", "5000"), "--horizon: 5000 bars reach past every"),
        (("--timeframe", "1m", "--dataset", "nope"), "--dataset: no bars of dataset 'nope'"),
        (("--timeframe", "1m", "--symbols", "ZZZ"), "--symbols: no bars of ZZZ in dataset"),
        (("--timeframe", "1m", "--model", "rnn"), "--model: unknown model rnn (known: gbm, lstm)"),
        (("--timeframe", "7m", "--model", "lstm"), "--timeframe: dataset lean-2013-10-07-trades"),
    ],
)
def test_train_with_a_bad_option_is_one_line_and_saves_nothing(lean_lake, tmp_path, args, named):
    out = _train(lean_lake.lake, tmp_path, *args)
    assert out.returncode == 2
    assert named in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert not (lean_lake.lake / "_models").exists()


def test_forecast_models_without_a_lake_is_one_line(tmp_path):
    out = marketpulse("forecast", "models", "--lake", tmp_path / "nothing", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: no lake at {tmp_path / 'nothing'}: not a directory"


#: Keras 3.15 reads its variables with np.array(variable), which NumPy 2 warns of.
_KERAS_WARNING = "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"


def _lstm(*args, cwd):
    """The command as a process of its own: JAX, once imported, makes a process's later forks
    unsafe (its threads), and the test workers start brokers with a preexec_fn."""
    return marketpulse(*args, cwd=cwd)


@pytest.mark.filterwarnings(_KERAS_WARNING)
def test_lstm_gbm_and_the_others_are_scored_over_the_same_walk_forward_bars(lean_lake, tmp_path):
    args = ("--timeframes", "1m", "--horizons", "1", "--models", "lstm,gbm,drift,random",
            "--format", "json")  # fmt: skip
    out = _lstm("forecast", "evaluate", "--lake", lean_lake.lake, *args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    rows = {r["model"]: r for r in json.loads(out.stdout)}
    assert list(rows) == ["lstm", "gbm", "drift", "random"]
    assert len({(r["predictions"], r["moved"]) for r in rows.values()}) == 1
    lstm = rows["lstm"]
    assert lstm["calls"] == lstm["moved"] > 800  # a call on every test bar that moved
    assert 0 < lstm["brier"] < 1 and lstm["mae_bp"] > 0
    assert lstm["accuracy_low_pct"] <= lstm["accuracy_pct"] <= lstm["accuracy_high_pct"]
    assert "Walk-forward (lstm, gbm): every model scored over the same bars" in out.stderr
    gbm_alone = _evaluate(lean_lake.lake, tmp_path, "--timeframes", "1m", "--horizons", "1",
                          "--models", "gbm,drift", "--format", "json")  # fmt: skip
    assert {r["model"]: r for r in json.loads(gbm_alone.stdout)}["gbm"] == rows["gbm"]
    again = _lstm("forecast", "evaluate", "--lake", lean_lake.lake, *args, cwd=tmp_path)
    assert again.stdout == out.stdout  # the same bars and seed, the same figures


@pytest.mark.filterwarnings(_KERAS_WARNING)
def test_train_lstm_saves_a_versioned_keras_model_that_models_lists(lean_lake, tmp_path):
    from marketpulse.forecast.features import FEATURES

    lake = tmp_path / "lake"
    shutil.copytree(lean_lake.lake, lake)
    train = ("forecast", "train", "--lake", lake, "--timeframe", "1m", "--horizon", "1",
             "--model", "lstm")  # fmt: skip
    first = _lstm(*train, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    (line,) = first.stdout.strip().splitlines()
    version = re.search(r"lstm:([0-9a-f]{12}) ", line).group(1)
    assert line.endswith(str(lake / "_models" / "lstm" / version))
    again = _lstm(*train, cwd=tmp_path)
    assert again.stdout == first.stdout  # the same bars and seed, the same version

    folder = lake / "_models" / "lstm" / version
    assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.keras",
                                                        "scaling.json"]  # fmt: skip
    meta = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert meta["features"] == list(FEATURES) and meta["sequence"] == 16
    assert (meta["name"], meta["timeframe"], meta["horizon"], meta["seed"]) == ("lstm", "1m", 1, 0)
    assert meta["rows"] == 2_310 - 4  # each series' last bar: no outcome
    assert meta["keras"] == "3.15.1" and meta["jax"] == "0.10.2" and "lightgbm" not in meta

    listed = marketpulse_in_process("forecast", "models", "--lake", lake, "--format", "json",
                                    cwd=tmp_path)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    (mine,) = json.loads(listed.stdout)
    assert (mine["name"], mine["version"], mine["rows"]) == ("lstm", version, meta["rows"])
