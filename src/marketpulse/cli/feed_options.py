"""Options of the live vendor feeds, shared by ``produce`` and ``run``."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketpulse.cli.option_groups import annotated, option_group
from marketpulse.config import DEFAULT_ENV_FILE, vendor_credentials
from marketpulse.exceptions import ConfigError

if TYPE_CHECKING:
    from marketpulse.feeds.vendors import Vendor, VendorFeed, VendorOptions

__all__ = ["FeedName", "LiveOptions", "live_feed", "parse_date", "rate_limit", "vendor_options"]


class FeedName(StrEnum):
    """Built-in feeds: the simulator and the live vendors."""

    simulator = "simulator"
    binance = "binance"
    finnhub = "finnhub"
    alpaca = "alpaca"
    polygon = "polygon"
    alphavantage = "alphavantage"


FEED_HELP = (
    "Built-in feed: simulator, or a live vendor: binance (crypto, no key), finnhub, alpaca, "
    "polygon, alphavantage (keys from MARKETPULSE_<VENDOR>_KEY or .env)."
)
URL_OPTION = typer.Option(
    None, "--url", help="Live feed: endpoint instead of the vendor's (a proxy, a test server)."
)
REST_URL_OPTION = typer.Option(
    None, "--rest-url", help="Finnhub, Polygon: REST endpoint instead of the vendor's."
)
TICKERS_OPTION = typer.Option(
    None, "--tickers", help="Live feed: symbols to follow, comma-separated (AAPL,MSFT; BTCUSDT)."
)
WATCHLIST_OPTION = typer.Option(
    None, "--watchlist", dir_okay=False,
    help="Live feed: file of symbols, one a line; edits change the subscription live.",
)  # fmt: skip
DATA_FEED_OPTION = typer.Option(
    None, "--data-feed", help="Alpaca: iex (free plan) or sip (paid) [default: iex]."
)
BAR_INTERVAL_OPTION = typer.Option(
    None, "--bar-interval", help="Alpha Vantage: bars of 1m, 5m, 15m, 1h or 1d [default: 1m]."
)
QUOTES_OPTION = typer.Option(
    False, "--quotes", help="Finnhub: also poll the last bid and ask over REST."
)
HISTORY_OPTION = typer.Option(
    None, "--history", help="Polygon: first fetch minute aggregates from this date (YYYY-MM-DD)."
)
CALENDAR_OPTION = typer.Option(
    None, "--calendar",
    help="Live feed: exchange calendar of the market hours [default: XNYS; binance 24/7].",
)  # fmt: skip
RATE_LIMIT_OPTION = typer.Option(
    None, "--rate-limit",
    help="Live feed: REST requests allowed, as N/s, N/min, N/h or N/day "
    "[default: the vendor's free plan].",
)  # fmt: skip
ENV_FILE_OPTION = typer.Option(
    None, "--env-file", dir_okay=False,
    help="Live feed: file of MARKETPULSE_<VENDOR>_KEY=... lines [default: ./.env].",
)  # fmt: skip

_PERIODS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, "hour": 3600.0,
            "d": 86400.0, "day": 86400.0}  # fmt: skip


@option_group
@dataclass(frozen=True, slots=True)
class LiveOptions:
    """The live-feed options as given on the command line (``None``: not given).

    An option group (:mod:`marketpulse.cli.option_groups`) of ``run`` and ``produce``.
    """

    url: Annotated[str | None, annotated(URL_OPTION)] = None
    rest_url: Annotated[str | None, annotated(REST_URL_OPTION)] = None
    tickers: Annotated[str | None, annotated(TICKERS_OPTION)] = None
    watchlist: Annotated[Path | None, annotated(WATCHLIST_OPTION)] = None
    data_feed: Annotated[str | None, annotated(DATA_FEED_OPTION)] = None
    bar_interval: Annotated[str | None, annotated(BAR_INTERVAL_OPTION)] = None
    quotes: Annotated[bool, annotated(QUOTES_OPTION)] = False
    history: Annotated[str | None, annotated(HISTORY_OPTION)] = None
    calendar: Annotated[str | None, annotated(CALENDAR_OPTION)] = None
    rate_limit: Annotated[str | None, annotated(RATE_LIMIT_OPTION)] = None
    env_file: Annotated[Path | None, annotated(ENV_FILE_OPTION)] = None

    def given(self) -> list[str]:
        """The options given, as ``--name``."""
        return [
            "--" + f.name.replace("_", "-")
            for f in fields(self)
            if getattr(self, f.name) not in (None, False)
        ]


def rate_limit(value: str | None) -> tuple[int, float] | None:
    """``--rate-limit N/period`` as (requests, seconds) (``None``: not given)."""
    if value is None:
        return None
    match = re.fullmatch(r"\s*(\d+)\s*/\s*([a-z]+)\s*", value.lower())
    if match is None or match[2] not in _PERIODS or int(match[1]) < 1:
        raise ConfigError(f"--rate-limit: expected N/s, N/min, N/h or N/day, got {value!r}")
    return int(match[1]), _PERIODS[match[2]]


def parse_date(value: str | None, option: str) -> date | None:
    """``value`` as a date (``None``: not given).

    Raises:
        ConfigError: it is not a date YYYY-MM-DD (the option is named).
    """
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from None


#: Options that only one or two vendors read (the others would ignore them).
_VENDOR_ONLY: dict[str, tuple[str, ...]] = {
    "--rest-url": ("finnhub", "polygon"),
    "--data-feed": ("alpaca",),
    "--bar-interval": ("alphavantage",),
    "--quotes": ("finnhub",),
    "--history": ("polygon",),
}


def _check_choice(option: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is not None and value not in choices:
        raise ConfigError(f"{option}: expected one of {', '.join(choices)}, got {value!r}")


def _check_calendar(name: str | None) -> None:
    from marketpulse.calendars import ALWAYS_OPEN

    if name is None or name == ALWAYS_OPEN:
        return
    import exchange_calendars as xcals

    if name not in xcals.get_calendar_names(include_aliases=True):
        known = ", ".join(sorted(xcals.get_calendar_names(include_aliases=False))[:8])
        raise ConfigError(f"--calendar: unknown exchange calendar {name!r} (such as {known}, ...)")


def check_live_options(feed: str | None, live: LiveOptions) -> None:
    """Refuse, before anything starts, live-feed options that would be ignored or are invalid.

    Raises:
        ConfigError: an option given for the simulator, a file or a vendor that does
            not read it, or a value out of its choices (the option is named).
    """
    given = live.given()
    if feed in (None, FeedName.simulator) and given:
        raise ConfigError(f"{', '.join(given)}: only for a live vendor --feed")
    if not given:  # nothing to check: the vendors' modules (their clients) are not imported
        return
    for option in given:
        vendors = _VENDOR_ONLY.get(option, (feed,))
        if feed not in vendors:
            raise ConfigError(f"{option}: only for --feed {' or '.join(vendors)}, not {feed}")
    from marketpulse.feeds.vendors.alpaca import DATA_FEEDS
    from marketpulse.feeds.vendors.alphavantage import INTERVALS

    _check_choice("--data-feed", live.data_feed, DATA_FEEDS)
    _check_choice("--bar-interval", live.bar_interval, tuple(INTERVALS))
    rate_limit(live.rate_limit)
    parse_date(live.history, "--history")
    _check_calendar(live.calendar)


def live_feed(feed: str, live: LiveOptions) -> VendorFeed:
    """Open the live feed of vendor ``feed``, its key from the environment or ``.env``.

    Raises:
        ConfigError: a key is missing (the variable is named), or an option is invalid.
    """
    from marketpulse.feeds.vendors import VENDORS, open_vendor

    options = vendor_options(
        feed, VENDORS[feed], live.tickers, live.watchlist, live.env_file,
        url=live.url, rest_url=live.rest_url, data_feed=live.data_feed or "iex",
        interval=live.bar_interval or "1m", quotes=live.quotes,
        history=parse_date(live.history, "--history"), calendar=live.calendar,
        rate_limit=rate_limit(live.rate_limit),
    )  # fmt: skip
    return open_vendor(feed, options)


def vendor_options(feed: str, spec: Vendor, tickers: str | None, watchlist: Path | None,
                   env_file: Path | None, **fields: Any) -> VendorOptions:  # fmt: skip
    """A vendor's options: the symbols given, its keys from the environment or ``.env``.

    Raises:
        ConfigError: a key it needs is missing (the variable is named).
    """
    from marketpulse.feeds.vendors import Symbols, VendorOptions

    symbols = tuple(t.strip() for t in (tickers or "").split(",") if t.strip())
    options = VendorOptions(symbols=Symbols(symbols, watchlist), **fields)
    if spec.needs_key:
        key, secret = vendor_credentials(feed, spec.needs_secret,
                                         env_file=env_file or DEFAULT_ENV_FILE)  # fmt: skip
        options.key = key
        if secret is not None:
            options.secret = secret
    return options
