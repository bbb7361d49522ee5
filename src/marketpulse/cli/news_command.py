"""``marketpulse news``: headlines from a vendor or a file, scored, stored or published."""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path

import typer

from marketpulse.cli import feed_options as live_options
from marketpulse.cli import options
from marketpulse.cli.common import bounded, console, dataset_for, err_console
from marketpulse.cli.option_groups import grouped
from marketpulse.cli.signals import stop_on_signals
from marketpulse.config import Settings
from marketpulse.exceptions import ConfigError, RunFailure

__all__ = ["news"]

#: Seconds between progress lines.
_LINE_EVERY = 5.0


class NewsVendor(StrEnum):
    """Vendors with company news."""

    finnhub = "finnhub"
    polygon = "polygon"
    alpaca = "alpaca"


@grouped
def news(
    feed: NewsVendor = typer.Option(
        None,
        "--feed",
        help="A vendor's company news: finnhub, polygon (REST polls) or alpaca (a stream); "
        "keys from MARKETPULSE_<VENDOR>_KEY or .env. Give this or --file.",
    ),  # fmt: skip
    file: Path = typer.Option(
        None,
        "--file",
        dir_okay=False,
        help="Headlines from a CSV (symbol, ts, headline[, source, url, id]) or JSON Lines file.",
    ),  # fmt: skip
    tickers: str = live_options.TICKERS_OPTION,
    watchlist: Path = live_options.WATCHLIST_OPTION,
    since: str = typer.Option(
        None,
        "--since",
        help="Vendor: first fetch the news from this date (YYYY-MM-DD) [default: today].",
    ),  # fmt: skip
    every: float = typer.Option(
        None,
        "--every",
        callback=bounded(0, above=True),
        help="Finnhub, Polygon: seconds between polls [default: 60].",
    ),  # fmt: skip
    url: str = live_options.URL_OPTION,
    rate_limit: str = live_options.RATE_LIMIT_OPTION,
    env_file: Path = live_options.ENV_FILE_OPTION,
    timezone: str = typer.Option(
        None, "--timezone", help="File: the zone of times written without one [default: UTC]."
    ),
    scorer: str = typer.Option(
        "vader",
        "--scorer",
        help="Headline sentiment: vader (a lexicon, offline) or your own module:function "
        "taking a list of headlines and returning a score from -1 to 1 each.",
    ),  # fmt: skip
    dataset: options.Dataset = None,
    duration: float = typer.Option(
        None,
        "--duration",
        callback=bounded(0, above=True),
        help="Stop by itself after this many seconds [default: a file's end; a vendor: Ctrl-C].",
    ),  # fmt: skip
    kafka: bool = typer.Option(
        False,
        "--kafka",
        help="Publish to the news topic (keyed by symbol) instead of storing; sinks store it.",
    ),  # fmt: skip
    storage: options.Storage = options.Storage(),
    lake: options.Lake = None,
    bootstrap_servers: options.Bootstrap = None,
    topic_prefix: options.TopicPrefix = None,
    config: options.Config = None,
) -> None:
    """Read headlines, score their sentiment as they arrive, and keep them in the news table.

    A vendor's news (Finnhub's company news, Polygon's reference news, Alpaca's
    news stream) is read through the same reconnects, rate limits and dead
    letters as its market data; a file is read to its end. Each headline gets
    a sentiment score from -1 to 1 (VADER's lexicon, or --scorer) and is stored
    once per article and symbol: the lake, PostgreSQL or InfluxDB (--sink), or
    the news topic (--kafka). Unreadable rows go to the dead letters with the
    file and line (or the vendor). `marketpulse backtest --news` measures what
    prices did after them.
    """
    from marketpulse.news.sentiment import ScorerError, load_scorer

    if (feed is None) == (file is None):
        raise ConfigError("news: give one source, --feed finnhub|polygon|alpaca or --file FILE"
                          + (" (not both)" if feed is not None else ""))  # fmt: skip
    _check_options(feed, file, tickers, watchlist, since, every, url, rate_limit, env_file,
                   timezone)  # fmt: skip
    if kafka and (storage.sink or lake):
        raise ConfigError("news: --kafka publishes to the news topic; --sink and --lake store, "
                          "give one or the other")  # fmt: skip
    settings = options.overlay(news, locals())
    score = load_scorer(scorer)
    if file is not None:
        from marketpulse.feeds.dataset import file_dataset
        from marketpulse.news.files import NewsFile

        source = NewsFile(file, timezone or "UTC")
        name = dataset_for(settings, dataset, file_dataset(file))
    else:
        source = _vendor(feed, tickers, watchlist, since, every, url, rate_limit, env_file)
        name = dataset_for(settings, dataset, feed.value)
    with stop_on_signals() as stop:
        if duration is not None:
            timer = threading.Timer(duration, stop.set)
            timer.daemon = True
            timer.start()
        try:
            stats = _publish(settings, source, score, name, stop) if kafka else \
                _store(settings, storage, source, score, name, stop)  # fmt: skip
        except ScorerError as exc:  # what was read before it is stored
            raise RunFailure(f"news: {exc}") from None
    console.print(f"news: {stats.line()}", highlight=False, soft_wrap=True)
    if not stats.ok:
        for error in stats.errors:
            err_console.print(f"delivery failed: {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    if stop.signum is not None:
        raise typer.Exit(stop.exit_code)


def _check_options(feed: NewsVendor | None, file: Path | None, *given_values: object) -> None:
    """Refuse options of the other source."""
    names = ("--tickers", "--watchlist", "--since", "--every", "--url", "--rate-limit",
             "--env-file", "--timezone")  # fmt: skip
    given = {name for name, value in zip(names, given_values, strict=True) if value is not None}
    if file is not None:
        wrong = sorted(given - {"--timezone"}, key=names.index)
        if wrong:
            verb = "applies" if len(wrong) == 1 else "apply"
            raise ConfigError(f"news: {', '.join(wrong)} {verb} to --feed, not --file")
        return
    if "--timezone" in given:
        raise ConfigError("news: --timezone applies to --file, not --feed")
    if feed == NewsVendor.alpaca and "--every" in given:
        raise ConfigError("news: --every applies to the polled vendors (finnhub, polygon), "
                          "not alpaca's stream")  # fmt: skip
    if "--tickers" not in given and "--watchlist" not in given:
        raise ConfigError(f"news: --feed {feed} needs --tickers (AAPL,MSFT) or --watchlist FILE")


def _vendor(feed: NewsVendor, tickers: str | None, watchlist: Path | None, since: str | None,
            every: float | None, url: str | None, rate_limit: str | None,
            env_file: Path | None):  # fmt: skip
    """Open the vendor's news feed, its keys from the environment or ``.env``."""
    from marketpulse.cli.feed_options import parse_date, vendor_options
    from marketpulse.cli.feed_options import rate_limit as requests_per
    from marketpulse.feeds.vendors.news import NEWS_VENDORS, open_news

    first = parse_date(since, "--since")
    options = vendor_options(feed.value, NEWS_VENDORS[feed.value], tickers, watchlist, env_file,
                             url=url, rest_url=url,
                             rate_limit=requests_per(rate_limit))  # fmt: skip
    return open_news(feed.value, options, since=first, every=every or 60.0)


def _progress(every: float = _LINE_EVERY):
    """A progress callback: a line of figures every few seconds."""
    import time

    next_line = [time.monotonic() + every]

    def line(stats) -> None:
        now = time.monotonic()
        if now >= next_line[0]:
            next_line[0] = now + every
            console.print(f"news: {stats.line()}", highlight=False, soft_wrap=True)

    return line


def _store(settings: Settings, storage: options.Storage, source, score, name: str,
           stop: threading.Event):  # fmt: skip
    from marketpulse.assemble import lake_location
    from marketpulse.cli.sink_options import build_sinks
    from marketpulse.news.files import NewsFile
    from marketpulse.news.scoring import ScoredNews
    from marketpulse.news.store import store_news, stored_dead_letters, stored_keys

    kinds = storage.sink
    sinks = build_sinks(kinds, settings, lake_rows=100_000,
                        postgres_tables="news" if storage.postgres_tables is None
                        else storage.postgres_tables)  # fmt: skip
    try:
        seen: list[tuple[str, str]] = []
        seen_dead: list[tuple[int, str]] = []
        if any(getattr(s, "name", "") == "lake" for s in sinks):  # a rerun stores nothing twice
            seen = stored_keys(lake_location(settings), name)
            if isinstance(source, NewsFile):
                seen_dead = stored_dead_letters(lake_location(settings), name, source.name)
        news = ScoredNews(source, score, name, seen, seen_dead)
        return store_news(news, sinks, stop, _progress())
    finally:
        for sink in sinks:
            sink.close()


def _publish(settings: Settings, source, score, name: str, stop: threading.Event):
    from marketpulse.cli.kafka_options import open_bus
    from marketpulse.news.scoring import ScoredNews
    from marketpulse.news.store import publish_news

    bus, topics = open_bus(settings)
    return publish_news(ScoredNews(source, score, name), bus, topics, stop, _progress())
