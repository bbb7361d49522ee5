"""The ``marketpulse`` command line: parses options, builds settings, calls the library."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from marketpulse.assemble import embedded_options, runner_options
from marketpulse.cli import (
    backtest_command,
    dashboard_command,
    forecast_command,
    indicators_command,
    news_command,
    notify_command,
    options,
    produce_command,
    report_command,
    services_command,
    spark_command,
    sql_command,
    storage_command,
    topics_command,
    verify_command,
)
from marketpulse.cli import feed_options as live_options
from marketpulse.cli.common import (
    CONFIG_OPTION,
    bounded,
    console,
    dataset_for,
    err_console,
    file_feed,
    notifications_from,
    processor_settings,
    rules_from,
    settings_from,
)
from marketpulse.cli.dashboard_command import (
    DashboardAddress,
    serve_settings,
)
from marketpulse.cli.failures import os_failure
from marketpulse.cli.feed_options import FeedName, LiveOptions, check_live_options, live_feed
from marketpulse.cli.live import run_in_foreground
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.options import Setting
from marketpulse.cli.sink_options import SinkKind, build_sinks, lake_location
from marketpulse.config import Settings, masked
from marketpulse.exceptions import ConfigError, InputError, MarketPulseError, RunFailure
from marketpulse.log_repeats import flush_repeats

if TYPE_CHECKING:
    from marketpulse.alerts import Notifications, Rule
    from marketpulse.feeds.base import Feed
    from marketpulse.runtime import MarketView, Metrics
    from marketpulse.serve import LiveMarket, ServeSettings

__all__ = ["app", "main"]

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="marketpulse",
    help="Real-time stock market analytics: trades in; candles, indicators, alerts,"
    " a Parquet lake and SQL out.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show "[default: ...]" literally
)
config_app = typer.Typer(
    help="Inspect the effective configuration.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(config_app, name="config")
app.command("sql")(sql_command.sql)
app.command("indicators")(indicators_command.indicators)
app.command("backfill")(sql_command.backfill)
app.command("backtest")(backtest_command.backtest)
app.add_typer(forecast_command.forecast_app, name="forecast")
app.command("process")(services_command.process)
app.command("spark")(spark_command.spark)
app.command("notify")(notify_command.notify)
app.command("news")(news_command.news)
app.add_typer(services_command.sink_app, name="sink")
app.add_typer(topics_command.topics_app, name="topics")
app.command("produce")(produce_command.produce)
app.command("dashboard")(dashboard_command.dashboard)
app.add_typer(storage_command.db_app, name="db")
app.add_typer(storage_command.lake_app, name="lake")
app.add_typer(report_command.report_app, name="report")
app.command("verify")(verify_command.verify)


@app.command()
@grouped
def run(
    feed_name: FeedName = typer.Option(FeedName.simulator, "--feed", help=live_options.FEED_HELP),
    live: LiveOptions = LiveOptions(),
    simulated: options.Simulated = options.Simulated(),
    duration: float = typer.Option(
        None,
        "--duration",
        callback=bounded(0, above=True),
        help="Stop by itself after this many seconds [default: run until Ctrl-C].",
    ),
    lake: options.Lake = None,
    dataset: options.Dataset = None,
    storage: options.Storage = options.Storage(),
    processing: options.Processing = options.Processing(),
    alerts_file: options.AlertsFile = None,
    view_interval: str = typer.Option(
        None,
        "--view-interval",
        help="Interval whose indicators the live table shows [default: the smallest].",
    ),
    kafka: Annotated[
        str | None,
        typer.Option(
            "--kafka",
            metavar="BOOTSTRAP",
            help="Run every stage on this Kafka cluster (host:port[,host:port]) instead of the "
            "embedded bus: produce, process and the lake sink as threads of this process, "
            "topics created when missing.",
        ),
        Setting("kafka.bootstrap"),
    ] = None,
    topic_prefix: options.TopicPrefix = None,
    guarantee: options.Guarantee = None,
    address: DashboardAddress = DashboardAddress(),
    no_dashboard: bool = typer.Option(
        False, "--no-dashboard", help="Do not serve the web dashboard."
    ),
    plugin: options.Plugins = None,
    config: options.Config = None,
) -> None:
    """Run the whole pipeline on a simulated or live market, with a live view and web dashboard.

    Trades of a simulated market (or of a live vendor feed: --feed binance, ...)
    stream through the embedded bus (or, with --kafka, through a Kafka
    cluster); the processor builds bars, computes
    indicators and raises alerts; everything is written to the Parquet lake,
    under the dataset `simulator` (a vendor's: its name; --dataset NAME: NAME).
    The web dashboard is served while the pipeline runs (its URL is printed).
    Ctrl-C stops cleanly and flushes what was accepted.
    """
    from marketpulse.runtime import Metrics
    from marketpulse.serve import LiveMarket

    settings = options.overlay(run, locals())
    if kafka is not None and set(storage.sink or []) - {SinkKind.lake}:
        raise ConfigError("run --kafka stores to the lake; run `marketpulse sink postgres` "
                          "(or influx) beside it for the databases")  # fmt: skip
    check_live_options(feed_name, live)
    name = dataset_for(settings, dataset, feed_name.value)  # simulator, or the vendor
    settings = _market_calendar(settings, feed_name, live.calendar)
    proc = processor_settings(settings, wall_clock=True)  # a live market, or one simulated on it
    feed = _market_feed(feed_name, live, settings, simulated)
    alert_rules = rules_from(settings)  # a bad rules file stops the command before anything starts
    serve = (
        None
        if no_dashboard
        else serve_settings(address, alert_rules, proc.indicators, settings.session_tz)
    )
    notifications = notifications_from(settings)
    if feed_name == FeedName.simulator:
        sim = settings.simulator
        logger.info("simulating %d symbols at %.0f trades/s (seed %d)", sim.symbols, sim.rate,
                    sim.seed)  # fmt: skip
    metrics = Metrics()
    view = LiveMarket(view_interval or proc.intervals[0], metrics, dataset=name)
    with _dashboard(settings, view, serve):
        _run_pipeline(settings, alert_rules, feed, duration, metrics, view, kafka,
                      (storage.sink, storage.postgres_tables), name, notifications)  # fmt: skip


def _market_calendar(settings: Settings, feed_name: FeedName, calendar: str | None) -> Settings:
    """A live market's session VWAP follows its exchange's sessions (UTC days for crypto)."""
    if feed_name == FeedName.simulator or settings.session_calendar:
        return settings
    from marketpulse.feeds.vendors import VENDORS  # the vendors' clients: not the simulator's

    return settings.replace(session_calendar=calendar or VENDORS[feed_name].calendar)


def _market_feed(
    feed_name: FeedName,
    live: LiveOptions,
    settings: Settings,
    simulated: options.Simulated,
) -> Feed:
    """Open ``run``'s feed: the simulator of the settings, or a live vendor's.

    Raises:
        InputError: simulator options given for a live vendor.
        ConfigError: the vendor's key is missing or an option is invalid.
    """
    from marketpulse.feeds import Simulator

    if feed_name == FeedName.simulator:
        sim = settings.simulator
        return Simulator(
            symbols=sim.symbols, rate=sim.rate, seed=sim.seed, realtime=True, quotes=True
        )
    if simulated.given():
        raise InputError("run: --symbols, --rate, --seed apply to --feed simulator only")
    return live_feed(feed_name, live)


@contextlib.contextmanager
def _dashboard(settings: Settings, view: LiveMarket, serve: ServeSettings | None) -> Iterator[None]:
    """Serve the web dashboard while the block runs (``serve`` ``None``: none).

    A dashboard that cannot start is worth a warning only.
    """
    from marketpulse.serve import Dashboard, ServeError

    if serve is None:
        yield
        return
    board = Dashboard.for_pipeline(lake_location(settings), view, serve)
    try:
        board.start()
        console.print(f"dashboard: {board.url}", soft_wrap=True)
    except ServeError as exc:  # the pipeline is worth running without its dashboard
        logger.warning("%s; running without the dashboard", exc)
        board.stop()
        yield
        return
    try:
        yield
    finally:
        board.stop()


def _run_pipeline(
    settings: Settings,
    rules: list[Rule],
    feed: Feed,
    duration: float | None,
    metrics: Metrics,
    view: MarketView,
    kafka: str | None,
    sinks: tuple[list[SinkKind] | None, str | None],
    dataset: str,
    notifications: Notifications | None = None,
) -> None:
    from marketpulse.runtime.embedded import LAKE_FILE_ROWS, EmbeddedPipeline
    from marketpulse.runtime.heap import settle_heap

    settle_heap()
    if kafka is not None:
        _run_on_kafka(settings, rules, feed, duration, metrics, view, dataset, notifications)
        return
    proc = processor_settings(settings)
    pipeline = embedded_options(
        settings, rules, dataset=dataset, duration=duration, notifications=notifications,
        processor=proc, sinks=build_sinks(sinks[0], settings, LAKE_FILE_ROWS, sinks[1]),
    )  # fmt: skip
    run_in_foreground(
        lambda progress: EmbeddedPipeline(feed, pipeline, metrics, view, progress),
        view,
        metrics,
        False,
        proc.indicators,
    )


def _run_on_kafka(
    settings: Settings,
    rules: list[Rule],
    feed: Feed,
    duration: float | None,
    metrics: Metrics,
    view: MarketView,
    dataset: str,
    notifications: Notifications | None = None,
) -> None:
    from marketpulse.cli.kafka_options import open_bus
    from marketpulse.runtime.runner import Runner

    bus, topics = open_bus(settings)
    services = runner_options(
        settings, rules, dataset=dataset, duration=duration, notifications=notifications
    )
    run_in_foreground(
        lambda progress: Runner(bus, topics, feed, services, metrics, view, progress),
        view,
        metrics,
        False,
        processor_settings(settings).indicators,
    )


@app.command()
@grouped
def replay(
    file: Path = typer.Argument(..., help="Trades or OHLCV bars: CSV (optionally .gz) or Parquet."),
    speed: str = typer.Option(
        "max", "--speed", help="'max' (as fast as possible) or N times real time."
    ),
    reading: options.FileInput = options.FileInput(),
    lake: options.Lake = None,
    dataset: options.Dataset = None,
    storage: options.Storage = options.Storage(),
    processing: options.Processing = options.Processing(),
    alerts_file: options.AlertsFile = None,
    plugin: options.Plugins = None,
    config: options.Config = None,
) -> None:
    """Push a historical file through the pipeline, with a progress bar.

    The rows are stored under the dataset named after the file (its name
    without extensions, led by its folder's for names such as trades.csv.gz),
    or --dataset NAME; a replay of one dataset never mixes with another's.

    Malformed rows go to the DLQ with file, line and reason; the replay goes on
    and its summary says how many rows were rejected. A damaged file (truncated
    or corrupt gzip) keeps every row before the damage, then ends with one line
    naming where it is and exit code 1.
    """
    from marketpulse.feeds.dataset import file_dataset
    from marketpulse.runtime import Metrics
    from marketpulse.runtime.embedded import LAKE_FILE_ROWS, EmbeddedPipeline

    pace = _speed(speed)
    settings = options.overlay(replay, locals())
    name = dataset_for(settings, dataset, file_dataset(file))
    feed = file_feed(file, reading)
    alert_rules, proc = rules_from(settings), processor_settings(settings)
    pipeline = embedded_options(
        settings, alert_rules, dataset=name, speed=pace, processor=proc,
        notifications=notifications_from(settings),
        sinks=build_sinks(storage.sink, settings, LAKE_FILE_ROWS, storage.postgres_tables),
    )  # fmt: skip
    metrics = Metrics()
    run_in_foreground(
        lambda progress: EmbeddedPipeline(feed, pipeline, metrics, None, progress),
        None,
        metrics,
        True,
    )
    if feed.damage:  # the rows before it are stored; the file itself was not whole
        _fail("; ".join(str(damage) for damage in feed.damage), 1)


def _speed(value: str) -> float | None:
    if value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise InputError(f"--speed: expected 'max' or a positive number, got {value!r}")
    return speed


@config_app.command("show")
def config_show(config: Path = CONFIG_OPTION) -> None:
    """Print the effective settings (file, environment, defaults), secrets masked."""
    settings = settings_from(config)
    console.print_json(json.dumps(masked(settings)))


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"marketpulse {version('marketpulse')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the installed version and exit.",
    ),
) -> None:
    pass


def _fail(message: str, code: int) -> NoReturn:
    from rich.markup import escape

    flush_repeats()  # held-back warnings come before the error line, which stays the last

    err_console.print(  # escaped: messages hold [sections] and [defaults]
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True
    )
    sys.exit(code)


def main() -> None:
    """Entry point: run the app; report bad usage and MarketPulse errors as one line.

    Exit codes: 2 for bad usage (an unknown option, a value out of range) and
    for MarketPulse errors that stop the command before it runs, 130 after Ctrl-C,
    1 for a runtime failure (storage full or lost: after the summary; a full disk),
    a record not delivered, an aborted prompt and an internal error (a bug: one
    line, the traceback only with ``MARKETPULSE_TRACEBACK=1``).
    """
    from typer._click.exceptions import NoArgsIsHelpError

    try:
        code = app(prog_name="marketpulse", standalone_mode=False)
    except NoArgsIsHelpError as exc:  # the help of a command given without its arguments
        exc.show()
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # usage: parsing failed before the command ran
        from marketpulse.cli.usage_errors import usage_message

        _fail(usage_message(exc), exc.exit_code)
    except typer.Abort:
        _fail("aborted", 1)
    except RunFailure as exc:  # the command ran, and could not finish: its summary is out
        _fail(str(exc), 1)
    except MarketPulseError as exc:
        _fail(str(exc), 2)
    except Exception as exc:  # a bug: one line for the user, the traceback on request
        if os.environ.get("MARKETPULSE_TRACEBACK"):
            raise
        machine = os_failure(exc)  # a full disk where nothing said more is not a bug
        if machine is not None:
            _fail(machine, 1)
        _fail(
            f"internal error: {type(exc).__name__}: {exc} (set MARKETPULSE_TRACEBACK=1 to see "
            "where, and please report it)",
            1,
        )
    if isinstance(code, int) and code:
        sys.exit(code)
