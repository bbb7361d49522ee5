"""The dashboard put together: lake queries, a live source, the app and its server."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self

from marketpulse.feeds.dataset import check_dataset
from marketpulse.runtime import Metrics
from marketpulse.serve.app import create_app
from marketpulse.serve.exceptions import ServeError
from marketpulse.serve.lake_data import LakeData
from marketpulse.serve.market import LakeMarket, LiveMarket, MarketSource
from marketpulse.serve.server import DashboardServer
from marketpulse.serve.settings import ServeSettings
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.timeframes import is_interval

__all__ = ["Dashboard"]


class Dashboard:
    """A served dashboard; a context manager that starts and stops it.

    Args:
        lake: the lake the history pages read (closed by :meth:`stop`).
        source: the live watchlist, alerts and figures.
        settings: how to serve.
        metrics: the running pipeline's metrics, for ``/metrics``.
    """

    def __init__(
        self,
        lake: LakeData,
        source: MarketSource,
        settings: ServeSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.lake = lake
        self.server = DashboardServer(create_app(settings, lake, source, metrics), settings)

    @classmethod
    def for_pipeline(
        cls, lake_root: str | Path | LakeLocation, market: LiveMarket, settings: ServeSettings
    ) -> Dashboard:
        """Return the dashboard of a running pipeline that updates ``market``."""
        return cls(LakeData(lake_root), market, settings, market.metrics)

    @staticmethod
    def check_interval(interval: str) -> None:
        """Raise :class:`ServeError` unless ``interval`` is a bar timeframe."""
        if not is_interval(interval):
            raise ServeError(
                f"--interval: not a timeframe: {interval!r} (a whole number of s, m or h, "
                "as 90s, 15m, 4h; or 1d, 1w)"
            )

    @classmethod
    def from_lake(
        cls,
        lake_root: str | Path | LakeLocation,
        settings: ServeSettings,
        interval: str | None = None,
        dataset: str | None = None,
    ) -> Dashboard:
        """Return a dashboard whose live pages are read from the lake too.

        Args:
            lake_root: the lake: its location (with its ``[s3]`` settings), or its root.
            settings: how to serve.
            interval: the timeframe the watchlist shows (default: the dataset's shortest).
            dataset: the dataset the live pages show (default: the most recently written).

        Raises:
            ServeError: ``interval`` is not a bar timeframe, or ``dataset`` not a
                dataset of the lake.
            InputError: ``dataset`` is not a dataset name.
            OldLayoutError: the lake is in the layout of an earlier MarketPulse
                (the message says how to convert it).
        """
        if interval is not None:
            cls.check_interval(interval)
        if dataset is not None:
            check_dataset(dataset)
        lake = LakeData(lake_root)
        try:
            lake.ready()  # a lake that cannot be read is refused before serving
            known = lake.names()
            if dataset is not None and dataset not in known:
                names = ", ".join(sorted(known)) or "none"
                raise ServeError(f"--dataset: no dataset {dataset!r} in {lake_root} "
                                 f"(datasets: {names})")  # fmt: skip
        except BaseException:
            lake.close()
            raise
        return cls(lake, LakeMarket(lake, interval, dataset=dataset), settings)

    @property
    def url(self) -> str:
        """The dashboard's address (with the actual port once started)."""
        return self.server.url

    def start(self) -> None:
        """Start serving (see :meth:`DashboardServer.start`)."""
        self.server.start()

    def stop(self) -> None:
        """Stop serving and close the lake connection."""
        try:
            self.server.stop()
        finally:
            self.lake.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
