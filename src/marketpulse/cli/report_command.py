"""``marketpulse report``: historical reports over the lake's bars."""

from __future__ import annotations

from pathlib import Path

import typer

from marketpulse.cli.common import CONFIG_OPTION, LAKE_OPTION, err_console, settings_from
from marketpulse.cli.sink_options import lake_location
from marketpulse.cli.sql_command import FORMAT_OUTPUT_OPTION, OutputFormat
from marketpulse.cli.storage_command import date_option

__all__ = ["report_app"]

report_app = typer.Typer(
    help="Reports over the lake: daily OHLC, movers, volatility, correlation.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

START_OPTION = typer.Option(..., "--start", help="First date, YYYY-MM-DD (UTC), inclusive.")
END_OPTION = typer.Option(..., "--end", help="Last date, YYYY-MM-DD (UTC), inclusive.")
SYMBOLS_OPTION = typer.Option(None, "--symbols", help="Comma-separated symbols [default: all].")
INTERVAL_OPTION = typer.Option(
    None,
    "--interval",
    help="Timeframe of the bars to build days from [default: 1d if present, else the smallest].",
)
DATASET_OPTION = typer.Option(
    None,
    "--dataset",
    help="The dataset to report on [default: MARKETPULSE_DATASET, else the lake's only one].",
)
OUTPUT_OPTION = typer.Option(None, "--output", "-o", help="Write to this file.")


def _run(name: str, start: str, end: str, symbols: str | None, interval: str | None,
         dataset: str | None, format: OutputFormat, output: Path | None, lake: str | None,
         config: Path | None, top: int = 10) -> None:  # fmt: skip
    from marketpulse.analytics import Lake, format_table
    from marketpulse.analytics.reports import ReportRange, movers_note, report

    settings = settings_from(config, lake=lake)
    scope = ReportRange(
        date_option(start, "--start"), date_option(end, "--end"),
        tuple(s.strip() for s in (symbols or "").split(",") if s.strip()), interval, top,
        dataset or settings.dataset or None,
    )  # fmt: skip
    with Lake(lake_location(settings)) as opened:
        result = report(opened, name, scope)
    format_table(result, format.value, output)
    note = movers_note(result, scope) if name == "movers" else None
    if note:  # on standard error: piped CSV or JSON stays clean
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)


@report_app.command("daily")
def daily(
    start: str = START_OPTION, end: str = END_OPTION, symbols: str = SYMBOLS_OPTION,
    interval: str = INTERVAL_OPTION, dataset: str = DATASET_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = OUTPUT_OPTION, lake: str = LAKE_OPTION, config: Path = CONFIG_OPTION,
) -> None:  # fmt: skip
    """Daily open, high, low, close, volume and average price per symbol."""
    _run("daily", start, end, symbols, interval, dataset, format, output, lake, config)


@report_app.command("movers")
def movers(
    start: str = START_OPTION, end: str = END_OPTION, symbols: str = SYMBOLS_OPTION,
    top: int = typer.Option(10, "--top", min=1, help="Gainers and losers to show."),
    interval: str = INTERVAL_OPTION, dataset: str = DATASET_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = OUTPUT_OPTION, lake: str = LAKE_OPTION, config: Path = CONFIG_OPTION,
) -> None:  # fmt: skip
    """Top gainers and losers: return from the first close to the last close of the period.

    return_pct is in percent (+1.90 % in the table, 1.9 in CSV and JSON). A
    gainer rose, a loser fell: with fewer such symbols than --top, a side is
    shorter or empty, and a note on standard error says so.
    """
    _run("movers", start, end, symbols, interval, dataset, format, output, lake, config, top)


@report_app.command("volatility")
def volatility(
    start: str = START_OPTION, end: str = END_OPTION, symbols: str = SYMBOLS_OPTION,
    interval: str = INTERVAL_OPTION, dataset: str = DATASET_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = OUTPUT_OPTION, lake: str = LAKE_OPTION, config: Path = CONFIG_OPTION,
) -> None:  # fmt: skip
    """Annualised volatility: sample standard deviation of daily log returns x sqrt(252).

    In percent (daily_volatility_pct, annualised_volatility_pct), over
    return_days daily returns.
    """
    _run("volatility", start, end, symbols, interval, dataset, format, output, lake, config)


@report_app.command("correlation")
def correlation(
    start: str = START_OPTION, end: str = END_OPTION, symbols: str = SYMBOLS_OPTION,
    interval: str = INTERVAL_OPTION, dataset: str = DATASET_OPTION,
    format: OutputFormat = FORMAT_OUTPUT_OPTION,
    output: Path = OUTPUT_OPTION, lake: str = LAKE_OPTION, config: Path = CONFIG_OPTION,
) -> None:  # fmt: skip
    """Pearson correlation of daily log returns for each pair of symbols."""
    _run("correlation", start, end, symbols, interval, dataset, format, output, lake, config)
