"""``marketpulse produce``: publish a feed (simulator or file) to the ticks topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from marketpulse.cli import feed_options as live_options
from marketpulse.cli.common import (
    ADJUST_OPTION,
    COLUMNS_OPTION,
    CONFIG_OPTION,
    FORMAT_OPTION,
    SUSPICIOUS_OPTION,
    SYMBOL_OPTION,
    Adjust,
    FileFormat,
    bounded,
    console,
    err_console,
    file_feed,
)
from marketpulse.cli.feed_options import FeedName, LiveOptions, check_live_options, live_feed
from marketpulse.cli.kafka_options import BOOTSTRAP_OPTION, PREFIX_OPTION, kafka_settings, open_bus
from marketpulse.cli.metrics_options import METRICS_PORT_OPTION, metrics_endpoint
from marketpulse.cli.signals import stop_on_signals
from marketpulse.config import COMPRESSION, KAFKA_COMPRESSIONS
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from marketpulse.runtime.produce import ProduceStats

__all__ = ["produce"]

#: Seconds between progress lines when the output is not a terminal.
_LINE_EVERY = 5.0

Compression = StrEnum("Compression", {name: name for name in KAFKA_COMPRESSIONS})  # type: ignore[misc]


def produce(
    feed: FeedName = typer.Option(
        None, "--feed", help=live_options.FEED_HELP + " Give this or --file."
    ),
    file: Path = typer.Option(
        None,
        "--file",
        dir_okay=False,
        help="Publish a trades or OHLCV bars file: CSV (optionally .gz) or Parquet.",
    ),  # fmt: skip
    symbols: int = typer.Option(
        None, "--symbols", min=1, help="Simulator: number of symbols [default: 50]."
    ),
    rate: float = typer.Option(
        None,
        "--rate",
        callback=bounded(0, above=True),
        help="Simulator: trades per second, all symbols together [default: 5000].",
    ),
    seed: int = typer.Option(None, "--seed", min=0, help="Simulator: random seed [default: 0]."),
    duration: float = typer.Option(
        None,
        "--duration",
        callback=bounded(0, above=True),
        help="Stop by itself after this many seconds [default: at the end of the file; "
        "the simulator runs until Ctrl-C].",
    ),  # fmt: skip
    format: FileFormat = FORMAT_OPTION,
    symbol: str = SYMBOL_OPTION,
    columns: str = COLUMNS_OPTION,
    include_suspicious: bool = SUSPICIOUS_OPTION,
    adjust: Adjust = ADJUST_OPTION,
    speed: str = typer.Option(
        None,
        "--speed",
        help="File: 'max' (as fast as possible) or N times real time [default: max].",
    ),  # fmt: skip
    url: str = live_options.URL_OPTION,
    rest_url: str = live_options.REST_URL_OPTION,
    tickers: str = live_options.TICKERS_OPTION,
    watchlist: Path = live_options.WATCHLIST_OPTION,
    data_feed: str = live_options.DATA_FEED_OPTION,
    bar_interval: str = live_options.BAR_INTERVAL_OPTION,
    quotes: bool = live_options.QUOTES_OPTION,
    history: str = live_options.HISTORY_OPTION,
    calendar: str = live_options.CALENDAR_OPTION,
    rate_limit: str = live_options.RATE_LIMIT_OPTION,
    env_file: Path = live_options.ENV_FILE_OPTION,
    compression: Compression = typer.Option(
        None,
        "--compression",
        help="Codec of the records [default: the [kafka] compression "
        f"setting or MARKETPULSE_KAFKA_COMPRESSION, else {COMPRESSION}].",
    ),  # fmt: skip
    bootstrap_servers: str = BOOTSTRAP_OPTION,
    topic_prefix: str = PREFIX_OPTION,
    metrics_port: int = METRICS_PORT_OPTION,
    config: Path = CONFIG_OPTION,
) -> None:
    """Publish ticks to the ticks topic, keyed by symbol, from the simulator, a file or a vendor.

    Live vendor feeds (binance, finnhub, alpaca, polygon, alphavantage) run until
    Ctrl-C or --duration, reconnecting as needed; malformed vendor messages go
    to the dlq topic with the vendor and the reason.

    The producer is idempotent with acks=all; records are JSON, compressed,
    batched for throughput. Malformed rows of a file go to the dlq topic with
    the file, line and reason. A file is published to its end; Ctrl-C (or
    SIGTERM) stops early. Either way every record sent is flushed before the
    command exits; it exits non-zero when a record was not delivered.
    """
    from marketpulse.feeds import Simulator
    from marketpulse.runtime.produce import ProduceOptions, ProduceService
    from marketpulse.runtime.service_figures import ProduceFigures

    _check_sources(
        feed, file, simulator={"--symbols": symbols, "--rate": rate, "--seed": seed},
        file_only={"--format": format, "--symbol": symbol, "--columns": columns,
                   "--include-suspicious": include_suspicious or None, "--speed": speed,
                   "--adjust": None if adjust == Adjust.none else adjust},
    )  # fmt: skip
    live = LiveOptions(url, rest_url, tickers, watchlist, data_feed, bar_interval, quotes, history,
                       calendar, rate_limit, env_file)  # fmt: skip
    check_live_options(feed if file is None else None, live)
    if feed not in (None, FeedName.simulator) and any(v is not None for v in (symbols, rate, seed)):
        raise ConfigError("produce: --symbols, --rate, --seed apply to --feed simulator only")
    settings = kafka_settings(
        config, bootstrap_servers, topic_prefix,
        **{"kafka.compression": compression.value if compression else None,
           "simulator.symbols": symbols, "simulator.rate": rate, "simulator.seed": seed},
        metrics_port=metrics_port,
    )  # fmt: skip
    options = ProduceOptions(
        compression=settings.kafka.compression, speed=_speed(speed), duration=duration
    )
    if file is not None:
        source = file_feed(file, format, symbol, columns, include_suspicious, adjust)
    elif feed != FeedName.simulator:
        source = live_feed(feed, live)
    else:
        sim = settings.simulator
        source = Simulator(
            symbols=sim.symbols, rate=sim.rate, seed=sim.seed, realtime=True, quotes=True
        )
    with metrics_endpoint(settings, "produce") as endpoint:
        bus, topics = open_bus(settings)
        with stop_on_signals() as stop, _progress(file is not None) as report:
            if endpoint is not None:
                figures = ProduceFigures(on_progress=report)
                endpoint.attach(figures)
                report = figures.progressed
            stats = ProduceService(bus, topics, source, options, stop, report).run()
    console.print(f"produce: {stats.line()}", highlight=False)
    if not stats.ok:
        for error in stats.errors:
            err_console.print(f"delivery failed: {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if stop.signum is not None:  # stopped cleanly by Ctrl-C or SIGTERM
        raise typer.Exit(stop.exit_code)


def _check_sources(
    feed: FeedName | None,
    file: Path | None,
    simulator: dict[str, object],
    file_only: dict[str, object],
) -> None:
    """Refuse a missing or double source, and options of the other source."""
    if (feed is None) == (file is None):
        raise ConfigError(
            "produce: give one source, --feed simulator (or a live vendor: --feed binance, ...) "
            "or --file FILE" + (" (not both)" if feed is not None else "")
        )
    if file is not None:
        wrong = [name for name, value in simulator.items() if value is not None]
        if wrong:
            raise ConfigError(f"produce: {_list(wrong)} to --feed simulator, not --file")
    else:
        wrong = [name for name, value in file_only.items() if value is not None]
        if wrong:
            raise ConfigError(f"produce: {_list(wrong)} to --file, not --feed")


def _list(options: list[str]) -> str:
    return f"{', '.join(options)} {'applies' if len(options) == 1 else 'apply'}"


def _speed(value: str | None) -> float | None:
    if value is None or value.strip().lower() == "max":
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = -1.0
    if not speed > 0:
        raise ConfigError(f"--speed: expected 'max' or a positive number, got {value!r}")
    return speed


@contextmanager
def _progress(of_file: bool) -> Iterator[Callable[[ProduceStats], None]]:
    """Yield a progress callback: a live bar on a terminal, a line every few seconds elsewhere."""
    if not console.is_terminal:
        next_line = [time.monotonic() + _LINE_EVERY]

        def line(stats: ProduceStats) -> None:
            now = time.monotonic()
            if now >= next_line[0]:
                next_line[0] = now + _LINE_EVERY
                console.print(stats.line(), highlight=False, soft_wrap=True)

        yield line
        return
    columns = [TextColumn("[bold]produce"), BarColumn(bar_width=20)]
    columns += [DownloadColumn()] if of_file else [TimeElapsedColumn()]
    columns.append(TextColumn("{task.fields[figures]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("produce", total=None, figures="")

        def bar(stats: ProduceStats) -> None:
            total = stats.total if of_file else None
            rate = stats.ticks / stats.elapsed if stats.elapsed > 0 else 0.0
            figures = f"{stats.ticks:,} ticks {rate:,.0f}/s, failed {stats.failed:,}, "
            figures += f"dlq {stats.dead:,}"
            progress.update(task, completed=stats.done, total=total, figures=figures)

        yield bar
