"""``marketpulse forecast``: forecasting models and their measured track records."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import CONFIG_OPTION, LAKE_OPTION, parse_horizons, settings_from
from marketpulse.cli.sink_options import lake_location
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat, print_record
from marketpulse.exceptions import ConfigError, InputError
from marketpulse.forecast.catalog import FOLDS

if TYPE_CHECKING:
    from marketpulse.forecast.evaluation import EvaluationScope

__all__ = ["forecast_app"]

forecast_app = typer.Typer(
    help="Forecasts of the next bars' direction and return, and their track records.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

#: The columns a narrow terminal keeps first.
_FIRST_COLUMNS = ("model", "timeframe", "horizon", "accuracy_pct", "brier", "mae_bp",
                  "predictions", "accuracy_low_pct", "accuracy_high_pct", "moved",
                  "calls")  # fmt: skip


@forecast_app.command("evaluate")
def evaluate(
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="The dataset to evaluate on [default: MARKETPULSE_DATASET, else the lake's only one].",
    ),
    timeframes: str = typer.Option(
        None, "--timeframes", help="Comma-separated timeframes [default: all the dataset has]."
    ),
    symbols: str = typer.Option(None, "--symbols", help="Comma-separated symbols [default: all]."),
    horizons: str = typer.Option(
        "1,5", "--horizons", help="Bars ahead to predict the return to, comma-separated."
    ),
    models: str = typer.Option(
        None,
        "--models",
        help="Comma-separated models [default: online-linear, online-tree, persistence, "
        "always-up, drift, random]; gbm (LightGBM) and lstm (Keras), trained walk-forward, "
        "score every model over their test windows only.",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the models that draw."),
    folds: int = typer.Option(
        FOLDS,
        "--folds",
        min=1,
        help="gbm's and lstm's walk-forward test windows (the bars' last half).",
    ),
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = typer.Option(None, "--output", "-o", help="Write the table to this file."),
    doc: Path = typer.Option(
        None,
        "--doc",
        help="Also write the table as this dataset's section of a Markdown page (the page's "
        "other sections are kept).",
    ),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Measure each model's predictions over a dataset's bars, against baselines.

    Every model runs over every series (symbol and timeframe) bar by bar: it
    predicts the return from a bar's close to the close HORIZON bars later,
    before those bars are seen, and learns the outcome once they are
    (prequential evaluation: an out-of-sample record). Per model, timeframe
    and horizon: directional accuracy, Brier score of the probability of an up
    move, mean absolute error of the return in basis points, each with its
    95% interval, beside the baselines persistence, always-up, drift and
    random. The same bars and seed give the same figures.

    gbm (gradient boosting) and lstm (a recurrent network), trained on the
    lake, are tested walk-forward: the last half of each timeframe's bars in
    FOLDS consecutive windows, each predicted by a model trained only on the
    bars whose outcome precedes it. With either, every model is scored over
    those windows' bars alone.
    """
    from marketpulse.analytics import Lake
    from marketpulse.analytics.results import mark_percent
    from marketpulse.cli.work_progress import work_progress
    from marketpulse.forecast import MODELS, EvaluationScope
    from marketpulse.forecast import evaluate as run_evaluation
    from marketpulse.forecast.doc import render_section, write_section
    from marketpulse.forecast.evaluation import PREQUENTIAL

    settings = settings_from(config, lake=lake)
    scope = EvaluationScope(
        dataset=dataset or settings.dataset or None,
        timeframes=_names(timeframes),
        symbols=_names(symbols),
        horizons=parse_horizons(horizons, "1,5"),
        models=_names(models) or tuple(MODELS),
        seed=seed,
        folds=folds,
    )
    if doc is not None and not doc.parent.is_dir():
        raise InputError(f"--doc: no folder {doc.parent} to write {doc.name} in")
    with Lake(lake_location(settings)) as opened, work_progress("forecast evaluate") as progress:
        result = run_evaluation(opened, scope, progress)
    print(
        f"forecast evaluation of dataset {result.dataset}: {result.bars:,} bars of "
        f"{len(result.symbols)} symbols, {len(scope.models)} models, horizons "
        f"{', '.join(map(str, scope.horizons))} (seed {seed})",
        file=sys.stderr,
    )
    if result.scored != PREQUENTIAL:
        print(result.scored, file=sys.stderr)
    if doc is not None:
        command = _command(result.dataset, scope, timeframes, symbols)
        # a walk-forward evaluation has its own section: it scores other bars than the
        # prequential one of the same dataset
        section = result.dataset + (", walk-forward" if result.scored != PREQUENTIAL else "")
        write_section(doc, section, render_section(result, command, section))
        print(f"wrote the section {section} of {doc}", file=sys.stderr)
    record = mark_percent(
        result.record, unsigned=("accuracy_pct", "accuracy_low_pct", "accuracy_high_pct")
    )
    print_record(record, format, output, _FIRST_COLUMNS)


@forecast_app.command("train")
def train(
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="The dataset to train on [default: MARKETPULSE_DATASET, else the lake's only one].",
    ),
    timeframe: str = typer.Option(..., "--timeframe", help="The bars' timeframe, e.g. 1m."),
    horizon: str = typer.Option("1", "--horizon", help="Bars ahead to predict the return to."),
    symbols: str = typer.Option(None, "--symbols", help="Comma-separated symbols [default: all]."),
    model: str = typer.Option(
        "gbm", "--model", help="The model: gbm (LightGBM) or lstm (Keras on JAX)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="The model's seed."),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Train a model on every bar of a scope and save it in the lake as a versioned artefact.

    The model, gbm (LightGBM's direction classifier and return regressor) or
    lstm (a recurrent network of the last bars' features), learns every bar
    of the timeframe whose outcome, HORIZON bars later, is known. It is saved
    with its features and training span in LAKE/_models/MODEL/VERSION/;
    VERSION is a digest of the model and its metadata, so the same bars and
    seed give the same version.
    """
    from marketpulse.analytics import Lake
    from marketpulse.forecast.artefacts import ARTEFACTS, TRAINED, save
    from marketpulse.forecast.artefacts import train as fit
    from marketpulse.forecast.frame import Frame
    from marketpulse.forecast.walkforward import require

    settings = settings_from(config, lake=lake)
    h, *more = parse_horizons(horizon, "1", "--horizon")
    if more:
        raise InputError(f"--horizon: one whole number of bars, got {horizon!r}")
    if model not in TRAINED:
        raise InputError(f"--model: unknown model {model} (known: {', '.join(TRAINED)})")
    require(model)  # missing: one line before the lake is read
    location = lake_location(settings)
    with Lake(location) as opened:
        frame = Frame(opened, dataset or settings.dataset or None, (timeframe,), _names(symbols),
                      "--timeframe")  # fmt: skip
    meta, trained = fit(frame, timeframe, h, seed, model)
    saved = save(location, meta, trained)
    print(f"trained {saved.name}:{saved.version} on {saved.rows:,} bars of {saved.timeframe} "
          f"({len(saved.symbols)} symbol{'s' * (len(saved.symbols) != 1)}, {saved.span}), "
          f"horizon {saved.horizon}: "
          f"{location.uri(ARTEFACTS, saved.name, saved.version)}")  # fmt: skip


@forecast_app.command("models")
def models(
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """List the trained models the lake holds: name, version, timeframe, horizon, span."""
    import pyarrow as pa

    from marketpulse.forecast.artefacts import artefacts

    location = lake_location(settings_from(config, lake=lake))
    if not location.is_s3 and not location.exists():
        raise ConfigError(f"no lake at {location}: not a directory")
    found = artefacts(location)
    columns = ("name", "version", "timeframe", "horizon", "trained_from", "trained_to",
               "dataset", "rows", "seed")  # fmt: skip
    table = pa.table({c: [getattr(a, c) for a in found] for c in columns})
    print_record(table, format, None, columns)


def _command(dataset: str, scope: EvaluationScope, timeframes: str | None,
             symbols: str | None) -> str:  # fmt: skip
    """The command that gives the same figures (the lake's and the page's places left out)."""
    from marketpulse.forecast import MODELS
    from marketpulse.forecast.catalog import WALK_FORWARD

    args = ["--dataset", dataset]
    if timeframes:
        args += ["--timeframes", ",".join(scope.timeframes)]
    if symbols:
        args += ["--symbols", ",".join(scope.symbols)]
    args += ["--horizons", ",".join(map(str, scope.horizons))]
    if scope.models != tuple(MODELS):
        args += ["--models", ",".join(scope.models)]
    args += ["--seed", str(scope.seed)]
    if scope.folds != FOLDS and any(m in WALK_FORWARD for m in scope.models):
        args += ["--folds", str(scope.folds)]
    return "marketpulse forecast evaluate " + shlex.join(args)


def _names(text: str | None) -> tuple[str, ...]:
    """``a,b`` as names, blanks dropped."""
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())
