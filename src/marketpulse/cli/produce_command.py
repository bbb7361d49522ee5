"""``marketpulse produce``: publish a feed (simulator or file) to the ticks topic."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

from marketpulse.cli import feed_options as live_options
from marketpulse.cli import options
from marketpulse.cli.common import (
    Adjust,
    bounded,
    console,
    err_console,
    file_feed,
)
from marketpulse.cli.feed_options import FeedName, LiveOptions, check_live_options, live_feed
from marketpulse.cli.kafka_options import open_bus
from marketpulse.cli.metrics_options import metrics_endpoint
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.options import Setting
from marketpulse.cli.signals import stop_on_signals
from marketpulse.config import COMPRESSION, KAFKA_COMPRESSIONS, Settings
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from marketpulse.cli.signals import StopSignal
    from marketpulse.feeds.base import Feed
    from marketpulse.runtime.produce import ProduceOptions, ProduceStats

__all__ = ["produce"]

#: Seconds between progress lines when the output is not a terminal.
_LINE_EVERY = 5.0

Compression = StrEnum("Compression", {name: name for name in KAFKA_COMPRESSIONS})  # type: ignore[misc]


@grouped
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
    simulated: options.Simulated = options.Simulated(),
    duration: float = typer.Option(
        None,
        "--duration",
        callback=bounded(0, above=True),
        help="Stop by itself after this many seconds [default: at the end of the file; "
        "the simulator runs until Ctrl-C].",
    ),  # fmt: skip
    reading: options.FileInput = options.FileInput(),
    speed: str = typer.Option(
        None,
        "--speed",
        help="File: 'max' (as fast as possible) or N times real time [default: max].",
    ),  # fmt: skip
    live: LiveOptions = LiveOptions(),
    compression: Annotated[
        Compression | None,
        typer.Option(
            "--compression",
            help="Codec of the records [default: the [kafka] compression "
            f"setting or MARKETPULSE_KAFKA_COMPRESSION, else {COMPRESSION}].",
        ),
        Setting("kafka.compression", lambda codec: codec.value),
    ] = None,
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    metrics_port: options.MetricsPort = None,
    config: options.Config = None,
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
    from marketpulse.runtime.produce import ProduceOptions

    _check_sources(
        feed, file,
        simulator={"--symbols": simulated.symbols, "--rate": simulated.rate,
                   "--seed": simulated.seed},
        file_only={"--format": reading.format, "--symbol": reading.symbol,
                   "--columns": reading.columns,
                   "--include-suspicious": reading.include_suspicious or None, "--speed": speed,
                   "--adjust": None if reading.adjust == Adjust.none else reading.adjust},
    )  # fmt: skip
    check_live_options(feed if file is None else None, live)
    if feed not in (None, FeedName.simulator) and simulated.given():
        raise ConfigError("produce: --symbols, --rate, --seed apply to --feed simulator only")
    settings = options.overlay(produce, locals())
    publishing = ProduceOptions(
        compression=settings.kafka.compression, speed=_speed(speed), duration=duration
    )
    if file is not None:
        source = file_feed(file, reading)
    elif feed != FeedName.simulator:
        source = live_feed(feed, live)
    else:
        source = _simulator(settings)
    stats, stop = _publish(settings, source, publishing, of_file=file is not None)
    console.print(f"produce: {stats.line()}", highlight=False)
    if not stats.ok:
        for error in stats.errors:
            err_console.print(f"delivery failed: {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if stop.signum is not None:  # stopped cleanly by Ctrl-C or SIGTERM
        raise typer.Exit(stop.exit_code)


def _simulator(settings: Settings) -> Feed:
    """The simulated market of the settings' ``[simulator]``, in real time, with quotes."""
    from marketpulse.feeds import Simulator

    sim = settings.simulator
    return Simulator(symbols=sim.symbols, rate=sim.rate, seed=sim.seed, realtime=True, quotes=True)


def _publish(
    settings: Settings, source: Feed, publishing: ProduceOptions, of_file: bool
) -> tuple[ProduceStats, StopSignal]:
    """Publish ``source`` to the ticks topic until it ends or a signal stops it.

    The ``--metrics-port`` endpoint serves the figures meanwhile; progress goes
    to the console.

    Returns:
        the figures of the run, and the signal handler (its ``signum``: the signal that stopped it).
    """
    from marketpulse.runtime.produce import ProduceService
    from marketpulse.runtime.service_figures import ProduceFigures

    with metrics_endpoint(settings, "produce") as endpoint:
        bus, topics = open_bus(settings)
        with stop_on_signals() as stop, _progress(of_file) as report:
            if endpoint is not None:
                figures = ProduceFigures(on_progress=report)
                endpoint.attach(figures)
                report = figures.progressed
            stats = ProduceService(bus, topics, source, publishing, stop, report).run()
    return stats, stop


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
