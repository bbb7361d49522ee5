"""``marketpulse backtest``: the track record of alert rules (``--news``: of headlines)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import (
    CONFIG_OPTION,
    INDICATORS_OPTION,
    LAKE_OPTION,
    RULES_OPTION,
    declared_indicators,
    parse_horizons,
    parse_indicators,
    rules_from,
    settings_from,
)
from marketpulse.cli.sink_options import lake_location
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat, print_record
from marketpulse.cli.storage_command import date_option
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from datetime import date

    from marketpulse.analytics.news_study import NewsScope
    from marketpulse.config import Settings

__all__ = ["backtest"]

#: The track record's columns a narrow terminal keeps first (the rest follow in order).
_FIRST_COLUMNS = ("rule", "horizon", "alerts", "hit_rate", "baseline_hit_rate", "p_value",
                  "mean_return_pct", "baseline_mean_return_pct", "with_return", "hit_low",
                  "hit_high", "baseline_hit_low", "baseline_hit_high")  # fmt: skip
#: The news study's columns a narrow terminal keeps first.
_NEWS_FIRST_COLUMNS = ("sentiment", "horizon", "headlines", "mean_return_pct",
                       "baseline_mean_return_pct", "p_value", "mean_low_pct", "mean_high_pct",
                       "hit_rate", "baseline_hit_rate", "with_return", "hit_low", "hit_high",
                       "baseline_mean_low_pct", "baseline_mean_high_pct")  # fmt: skip


def backtest(
    news: bool = typer.Option(
        False,
        "--news",
        help="Study the dataset's headlines instead of rules: the returns after positive, "
        "negative and neutral headlines against random times.",
    ),  # fmt: skip
    rules: str = RULES_OPTION,
    dataset: str = typer.Option(
        None,
        "--dataset",
        metavar="NAME",
        help="The dataset to backtest over [default: MARKETPULSE_DATASET, else the lake's only "
        "one].",
    ),  # fmt: skip
    timeframe: str = typer.Option(
        None,
        "--timeframe",
        metavar="TF",
        help="With --news: the bars' timeframe [default: 1m if the dataset has it, else its "
        "shortest].",
    ),  # fmt: skip
    start: str = typer.Option(
        None,
        "--start",
        help="First date (UTC) whose alerts (headlines) count, YYYY-MM-DD [default: all].",
    ),  # fmt: skip
    end: str = typer.Option(
        None,
        "--end",
        help="Last date (UTC) whose alerts (headlines) count, YYYY-MM-DD [default: all].",
    ),  # fmt: skip
    symbols: str = typer.Option(None, "--symbols", help="Comma-separated symbols [default: all]."),
    horizons: str = typer.Option(
        "5,15,60",
        "--horizons",
        help="Bars after each alert (headline's entry) to take its return at, comma-separated.",
    ),  # fmt: skip
    baseline: int = typer.Option(
        20,
        "--baseline",
        min=1,
        help="Random bars per alert (headline) for the baseline (same symbol and timeframe).",
    ),  # fmt: skip
    cutoffs: str = typer.Option(
        None,
        "--cutoffs",
        metavar="NEG,POS",
        help="With --news: a headline scoring at most NEG is negative, at least POS positive, "
        "neutral between [default: -0.05,0.05, VADER's].",
    ),  # fmt: skip
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the baseline's random bars."),
    indicators: str = INDICATORS_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = typer.Option(None, "--output", "-o", help="Write to this file."),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Evaluate alert rules (--news: headlines) over a dataset's history: their track record.

    The same indicator kernels and alert engine as the stream, over the lake's
    bars (the alerts are those the stream raises for them; stored alerts are
    left alone). Per rule and horizon: alerts, mean forward return, hit rate
    in the alert's direction with its 95% interval, and the same for random
    bars of the same symbols and timeframes, with the p-value of the difference.
    Rules that watch timeframes the dataset has no bars of are left out, named
    in one line. The table fits the terminal's width (COLUMNS), leaving out the
    least telling columns (named in one line); csv and json have them all.

    With --news, an event study of the dataset's headlines (the news table,
    filled by `marketpulse news`) instead: each headline, classed positive,
    negative or neutral by its sentiment score, enters at the close of the last
    bar of its symbol that ended at or before it was published. Per class and
    horizon: headlines, mean forward return with its 95% interval, hit rate in
    the class's direction (neutral: none, mean absolute return instead) with
    its 95% interval, the same for random bars of the same symbols within the
    same dates, and the p-value of the difference. No rules are evaluated.
    """
    if news:
        from marketpulse.analytics.news_study import NewsScope

        if rules is not None or indicators is not None:
            given = "--rules" if rules is not None else "--indicators"
            raise ConfigError(f"{given}: the news study (--news) evaluates no rules; leave it out")
        settings = settings_from(config, lake=lake)
        study = NewsScope(
            dataset=dataset or settings.dataset or None,
            timeframe=timeframe,
            start=_date(start, "--start"),
            end=_date(end, "--end"),
            symbols=_names(symbols),
            horizons=parse_horizons(horizons, "5,15,60"),
            baseline=baseline,
            seed=seed,
            **_cutoffs(cutoffs),
        )
        _news_study(settings, study, format, output)
        return
    if timeframe is not None or cutoffs is not None:
        given = "--timeframe" if timeframe is not None else "--cutoffs"
        raise ConfigError(f"{given}: only with --news (rules name their own timeframes)")

    import pyarrow as pa

    from marketpulse.analytics import Lake
    from marketpulse.analytics.backtest import BacktestScope
    from marketpulse.analytics.backtest import backtest as run_backtest
    from marketpulse.analytics.results import mark_percent

    settings = settings_from(
        config, lake=lake, rules=rules, indicators=parse_indicators(indicators)
    )
    scope = BacktestScope(
        dataset=dataset or settings.dataset or None,
        start=_date(start, "--start"),
        end=_date(end, "--end"),
        symbols=_names(symbols),
        horizons=parse_horizons(horizons, "5,15,60"),
        baseline=baseline,
        seed=seed,
    )
    with Lake(lake_location(settings)) as opened:
        result = run_backtest(opened, rules_from(settings), scope, declared_indicators(settings))
    applied = len(set(result.record.column("rule").to_pylist())) - len(result.not_applied)
    print(
        f"backtest of dataset {result.dataset}: {result.bars:,} bars, {len(result.alerts):,} "
        f"alerts from {applied} rules; baseline "
        f"{baseline} random bars per alert (seed {seed})",
        file=sys.stderr,
    )
    record = result.record
    if result.not_applied:
        import pyarrow.compute as pc

        idle = [rule.name for rule in result.not_applied]
        record = record.filter(pc.invert(pc.is_in(record.column("rule"), pa.array(idle))))
        watched = ", ".join(
            f"{r.name} ({', '.join(r.intervals or ())})" for r in result.not_applied
        )
        print(f"not applied, as dataset {result.dataset} has no bars of the timeframes they "
              f"watch (it has {', '.join(result.timeframes)}): {watched}",
              file=sys.stderr)  # fmt: skip
    record = mark_percent(
        record, signed=("mean_return_pct", "baseline_mean_return_pct"),
        unsigned=("mean_abs_return_pct", "baseline_mean_abs_return_pct"),
    )  # fmt: skip
    print_record(record, format, output, _FIRST_COLUMNS)


def _names(text: str | None) -> tuple[str, ...]:
    """``--symbols A,B`` as names."""
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def _date(text: str | None, option: str) -> date | None:
    """A date option's value (``None`` when not given)."""
    return date_option(text, option) if text else None


def _news_study(
    settings: Settings, scope: NewsScope, format: OutputFormat, output: Path | None
) -> None:
    """``backtest --news``: run the news study and print its record."""
    from marketpulse.analytics import Lake
    from marketpulse.analytics.news_study import CLASSES, news_study
    from marketpulse.analytics.results import mark_percent

    with Lake(lake_location(settings)) as opened:
        result = news_study(opened, scope)
    classes = result.headlines.column("class").to_pylist()
    counts = ", ".join(f"{classes.count(c):,} {c}" for c in CLASSES)
    others = [t for t in result.timeframes if t != result.timeframe]
    print(
        f"news study of dataset {result.dataset} on {result.timeframe} bars"
        + (f" (also {', '.join(others)}: --timeframe)" if others else "")
        + f": {len(classes):,} headlines ({counts}; cut-offs {scope.negative}, "
        f"{scope.positive}); baseline {scope.baseline} random bars per headline "
        f"(seed {scope.seed})",
        file=sys.stderr,
    )
    left = []
    if result.duplicates:
        left.append(f"{_count(result.duplicates, 'row')} repeating an article already counted "
                    "for its symbol")  # fmt: skip
    if result.unscored:
        left.append(f"{_count(result.unscored, 'headline')} without a sentiment score")
    if left:
        print(f"left out: {'; '.join(left)}", file=sys.stderr)
    record = mark_percent(
        result.record,
        signed=("mean_return_pct", "mean_low_pct", "mean_high_pct", "baseline_mean_return_pct",
                "baseline_mean_low_pct", "baseline_mean_high_pct"),
        unsigned=("mean_abs_return_pct", "baseline_mean_abs_return_pct"),
    )  # fmt: skip
    print_record(record, format, output, _NEWS_FIRST_COLUMNS)


def _count(n: int, noun: str) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n:,} {noun}{'s' if n != 1 else ''}"


def _cutoffs(text: str | None) -> dict[str, float]:
    """``--cutoffs NEG,POS`` as the scope's ``negative`` and ``positive`` (none when not given)."""
    if text is None:
        return {}
    try:
        negative, positive = (float(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"--cutoffs: expected NEG,POS such as -0.05,0.05, got {text!r}") from None
    return {"negative": negative, "positive": positive}
