"""The ``dashboard`` command, and the dashboard options ``run`` shares."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from marketpulse.cli.common import CONFIG_OPTION, LAKE_OPTION, console, settings_from
from marketpulse.config import Secret

if TYPE_CHECKING:
    from marketpulse.serve import ServeSettings

__all__ = [
    "HOST_OPTION",
    "PORT_OPTION",
    "TOKEN_OPTION",
    "UPDATES_OPTION",
    "dashboard",
    "serve_settings",
]

HOST_OPTION = typer.Option(
    "127.0.0.1",
    "--host",
    help="Address the dashboard listens on; any address but 127.0.0.1, localhost or ::1 "
    "requires a token.",
)
PORT_OPTION = typer.Option(8050, "--port", help="TCP port of the dashboard (0: a free one).")
TOKEN_OPTION = typer.Option(
    None,
    "--token",
    envvar="MARKETPULSE_DASHBOARD_TOKEN",
    show_envvar=True,
    help="Token every dashboard request must carry (Authorization: Bearer, or ?token= once "
    "in the browser).",
)
UPDATES_OPTION = typer.Option(
    4.0, "--updates-per-s", help="Most live updates each browser receives per second."
)


def serve_settings(host: str, port: int, token: str | None, updates_per_s: float) -> ServeSettings:
    """Build the dashboard's settings from the options (raises ServeError when invalid)."""
    from marketpulse.serve import ServeSettings

    return ServeSettings(
        host=host, port=port, token=Secret(token) if token else None, updates_per_s=updates_per_s
    )


def dashboard(
    host: str = HOST_OPTION,
    port: int = PORT_OPTION,
    token: str = TOKEN_OPTION,
    updates_per_s: float = UPDATES_OPTION,
    interval: str = typer.Option(
        None, "--interval", help="Bar interval the watchlist shows [default: the shortest]."
    ),
    duration: float = typer.Option(
        None, "--duration", help="Stop after this many seconds [default: run until Ctrl-C]."
    ),
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Serve the web dashboard and REST API over the lake, until Ctrl-C.

    Pages: watchlist, symbol charts with indicators, alerts, pipeline; the API
    is described at /docs. Everything is read from the lake, so the pages
    follow a pipeline that writes to it (marketpulse run, or the lake sink).
    """
    from marketpulse.serve import Dashboard

    settings = settings_from(config, lake=lake)
    serve = serve_settings(host, port, token, updates_per_s)
    with Dashboard.from_lake(settings.lake, serve, interval) as board:
        console.print(f"dashboard: {board.url} (lake {settings.lake}; Ctrl-C to stop)")
        try:
            threading.Event().wait(duration)
        except KeyboardInterrupt:
            pass
    console.print("dashboard stopped")
