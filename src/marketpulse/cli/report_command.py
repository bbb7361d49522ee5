"""``marketpulse report``: historical reports over the lake."""

from __future__ import annotations

import typer

__all__ = ["report_app"]

report_app = typer.Typer(
    help="Reports over the lake: daily OHLC, movers, volatility, correlation.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
