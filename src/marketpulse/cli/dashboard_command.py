"""The ``dashboard`` command, and the dashboard options ``run`` shares."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marketpulse.cli.common import (
    CONFIG_OPTION,
    INDICATORS_OPTION,
    LAKE_OPTION,
    bounded,
    console,
    declared_indicators,
    parse_indicators,
    rules_from,
    settings_from,
)
from marketpulse.cli.kafka_options import PREFIX_OPTION
from marketpulse.cli.option_groups import annotated, grouped, option_group
from marketpulse.cli.signals import stop_on_signals
from marketpulse.cli.sink_options import lake_location
from marketpulse.config import SESSION_TZ, Secret, Settings

if TYPE_CHECKING:
    from marketpulse.alerts import Rule
    from marketpulse.indicators.declare import DeclaredSet
    from marketpulse.serve import Dashboard, ServeSettings

__all__ = ["DashboardAddress", "dashboard", "serve_settings"]

HOST_OPTION = typer.Option(
    "127.0.0.1",
    "--host",
    help="Address the dashboard listens on; any address but 127.0.0.1, localhost or ::1 "
    "requires a token.",
)
PORT_OPTION = typer.Option(
    8050, "--port", min=0, max=65535, help="TCP port of the dashboard (0: a free one)."
)
TOKEN_OPTION = typer.Option(
    None,
    "--token",
    envvar="MARKETPULSE_DASHBOARD_TOKEN",
    show_envvar=True,
    help="Token every dashboard request must carry (Authorization: Bearer, or ?token= once "
    "in the browser).",
)
UPDATES_OPTION = typer.Option(
    4.0, "--updates-per-s", callback=bounded(0, above=True),
    help="Most live updates each browser receives per second.",
)  # fmt: skip


@option_group
@dataclass(frozen=True, slots=True)
class DashboardAddress:
    """Where the dashboard listens and how it serves: ``dashboard`` and ``run``."""

    host: Annotated[str, annotated(HOST_OPTION)] = "127.0.0.1"
    port: Annotated[int, annotated(PORT_OPTION)] = 8050
    token: Annotated[str | None, annotated(TOKEN_OPTION)] = None
    updates_per_s: Annotated[float, annotated(UPDATES_OPTION)] = 4.0


def serve_settings(
    address: DashboardAddress,
    rules: Sequence[Rule] | None = None,
    indicators: DeclaredSet | None = None,
    time_zone: str = SESSION_TZ,
) -> ServeSettings:
    """Build the dashboard's settings from the options (raises ServeError when invalid).

    ``rules`` and ``indicators``: what the alerts page's track record backtests;
    ``time_zone``: the exchange's (``session_tz``), the symbol page's default.
    """
    from marketpulse.serve import ServeSettings

    return ServeSettings(
        host=address.host, port=address.port,
        token=Secret(address.token) if address.token else None,
        updates_per_s=address.updates_per_s, rules=None if rules is None else tuple(rules),
        indicators=indicators, time_zone=time_zone,
    )  # fmt: skip


@grouped
def dashboard(
    address: DashboardAddress = DashboardAddress(),
    interval: str = typer.Option(
        None, "--interval", help="Bar timeframe the watchlist shows [default: the shortest]."
    ),
    dataset: str = typer.Option(
        None,
        "--dataset",
        help="Dataset the live pages show and the API reads when a request names none "
        "[default: the lake's most recently written].",
    ),
    duration: float = typer.Option(
        None,
        "--duration",
        callback=bounded(0, above=True),
        help="Stop after this many seconds [default: run until Ctrl-C].",
    ),
    kafka: str = typer.Option(
        None,
        "--kafka",
        metavar="BOOTSTRAP",
        help="Follow the output topics of a pipeline on this Kafka cluster (host:port[,...]) "
        "for the live pages; history still comes from the lake.",
    ),
    topic_prefix: str = PREFIX_OPTION,
    rules: str = typer.Option(
        None,
        "--rules",
        help="Alert rules file the alerts page's track record backtests [default: the rules "
        "setting, or the built-in rules].",
    ),  # fmt: skip
    indicators: str = INDICATORS_OPTION,
    lake: str = LAKE_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Serve the web dashboard and REST API over the lake, until Ctrl-C.

    Pages: watchlist, symbol charts with indicators, alerts, pipeline; the API
    is described at /docs. History is read from the lake, one dataset at a
    time (chosen on the pages); the live pages follow the lake too, or with
    --kafka the output topics of a pipeline on Kafka (with the consumer's lag
    per partition on the pipeline page).
    """
    from marketpulse.serve import Dashboard, ServeError

    settings = settings_from(
        config, lake=lake, rules=rules, indicators=parse_indicators(indicators),
        **{"kafka.bootstrap": kafka, "kafka.topic_prefix": topic_prefix},
    )  # fmt: skip
    serve = serve_settings(
        address, rules_from(settings), declared_indicators(settings), settings.session_tz
    )
    with contextlib.ExitStack() as stack:
        if kafka is None:
            board = Dashboard.from_lake(lake_location(settings), serve, interval, dataset)
        elif dataset is not None:
            raise ServeError("--dataset: the live pages of --kafka show the dataset the "
                             "topics carry")  # fmt: skip
        else:
            board = _following_topics(settings, serve, interval, stack)
        stack.enter_context(board)
        source = f"topics {settings.kafka.bootstrap}" if kafka else f"lake {settings.lake}"
        console.print(f"dashboard: {board.url} ({source}; Ctrl-C to stop)")
        with stop_on_signals() as stop:
            stop.wait(duration)
    console.print("dashboard stopped")
    if stop.signum is not None:  # stopped by Ctrl-C or SIGTERM: 130 or 143, as every command
        raise typer.Exit(stop.exit_code)


def _following_topics(
    settings: Settings, serve: ServeSettings, interval: str | None, stack: contextlib.ExitStack
) -> Dashboard:
    from marketpulse.cli.kafka_options import open_bus
    from marketpulse.runtime import Metrics
    from marketpulse.serve import Dashboard, LiveMarket, TopicsFeed

    if interval is not None:
        Dashboard.check_interval(interval)
    bus, topics = open_bus(settings)
    market = LiveMarket(interval or settings.intervals[0], Metrics())
    stack.enter_context(TopicsFeed(bus, topics, market))
    return Dashboard.for_pipeline(lake_location(settings), market, serve)
