"""Run the whole pipeline from Python: what ``marketpulse run`` runs, in a few lines.

>>> from marketpulse import Pipeline
>>> result = Pipeline(lake="lake", duration=5, symbols=5, rate=500).run()  # doctest: +SKIP
>>> print(result.bars, result.alerts)  # doctest: +SKIP

:class:`Pipeline` maps its options onto the same settings tree
(:class:`~marketpulse.config.Settings`) that ``marketpulse run`` builds from its
command line, and hands it to the same embedded runner
(:class:`~marketpulse.runtime.embedded.EmbeddedPipeline`) through the same
functions (:mod:`marketpulse.assemble`): a pipeline run from Python is the one
the command runs, without the live table and the dashboard.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from marketpulse.assemble import (
    embedded_options,
    lake_location,
    notifications_from,
    processor_settings,
    rules_from,
)
from marketpulse.config import Settings, check_setting, vendor_credentials
from marketpulse.exceptions import ConfigError, InputError
from marketpulse.runtime.metrics import MetricsSnapshot

if TYPE_CHECKING:
    from marketpulse.feeds.base import Feed
    from marketpulse.sinks import Sink

__all__ = ["Pipeline", "PipelineResult"]

#: The name of the built-in simulated market as a ``feed``.
SIMULATOR = "simulator"

#: Each option that is a setting, with its key in the settings tree.
_SETTINGS: dict[str, str] = {
    "lake": "lake",
    "dataset": "dataset",
    "rules": "rules",
    "alerts_file": "alerts_file",
    "intervals": "intervals",
    "indicators": "indicators",
    "lateness": "lateness",
    "max_symbols": "max_symbols",
    "fill_gaps": "fill_gaps",
    "conditions": "conditions",
    "plugins": "plugins",
    "partitions": "partitions",
    "symbols": "simulator.symbols",
    "rate": "simulator.rate",
    "seed": "simulator.seed",
}


@dataclass(frozen=True, slots=True)
class PipelineResult(MetricsSnapshot):
    """The figures of a finished run (those of ``marketpulse run``'s summary line).

    Attributes:
        dataset: the dataset every stored row of the run carries.
        lake: the root of the Parquet lake the run wrote (``""``: it wrote none).
        lake_files: files written to the lake.
        lake_bytes: bytes written to the lake.
    """

    dataset: str
    lake: str
    lake_files: int
    lake_bytes: int


class Pipeline:
    """A whole pipeline in this process: feed, processor (bars, indicators, alerts), sinks.

    The options are those of ``marketpulse run`` (and of ``replay`` for a file),
    named as the settings are; an option left ``None`` keeps the value of
    ``settings`` (by default the built-in defaults: the environment and
    ``marketpulse.toml`` are read only when you pass ``load_settings()``).
    Options are checked here, so a wrong one raises before anything runs.

    Example, a simulated market for five seconds into the lake ``./lake``::

        from marketpulse import Pipeline

        result = Pipeline(lake="lake", duration=5, symbols=5, rate=500).run()
        print(result.bars, result.alerts)

    Args:
        feed: where ticks come from: ``"simulator"`` (a simulated market on the
            wall clock), a live vendor's name (``"binance"``, ``"finnhub"``, ...:
            its key from ``MARKETPULSE_<VENDOR>_KEY`` or ``./.env``), the path
            of a trades or bars file to replay (CSV, optionally gzipped, or
            Parquet), or a feed object (a :class:`~marketpulse.feeds.FileReplay`
            with options, a :class:`marketpulse.testing.ListFeed`, ...).
        lake: root of the Parquet lake, a directory or ``s3://bucket/prefix``
            (its ``[s3]`` settings from ``settings``).
        dataset: the dataset the rows are stored under; ``None``: the feed's own
            (``simulator``, the file's name, the vendor).
        duration: stop after this many seconds; ``None``: when the feed ends (a
            simulator or a vendor never ends: give a duration, or set ``stop``).
        speed: replay at this multiple of the input's own pace; ``None``: as fast
            as possible. Not for the simulator or a vendor, which keep the clock.
        symbols: simulated symbols (simulator only).
        rate: simulated trades per second, all symbols together (simulator only).
        seed: random seed of the simulated market (simulator only).
        tickers: symbols to follow (a vendor only), e.g. ``["BTCUSDT"]``.
        intervals: bar intervals, ``"1s,1m,5m"`` or a sequence of names.
        indicators: declared indicators, ``"ema(50), rsi(7)"`` or a sequence of
            declarations; ``None``: the thirteen default columns.
        rules: alert rules file (YAML or TOML); ``None``: the built-in rules.
        alerts_file: JSON-lines file alerts are appended to (``""``: none).
        lateness: allowed lateness of ticks, seconds.
        max_symbols: most symbols one input partition holds.
        fill_gaps: close the intervals in which a symbol had no trade.
        conditions: sale-condition rules, ``"none"`` or ``"lean"``.
        plugins: ``module:function`` of each per-bar plug-in.
        partitions: partitions of the embedded topics.
        sinks: where the tables go (each closed when the run ends); empty: the
            Parquet lake at ``lake``.
        settings: the settings the options apply to; ``None``: the defaults.

    Raises:
        ConfigError: an option is wrong (the message names it).
        InputError: the file to replay does not exist, or the dataset is not a name.
        RulesError: the rules file is invalid.
    """

    def __init__(
        self,
        feed: str | Path | Feed = SIMULATOR,
        *,
        lake: str | Path | None = None,
        dataset: str | None = None,
        duration: float | None = None,
        speed: float | None = None,
        symbols: int | None = None,
        rate: float | None = None,
        seed: int | None = None,
        tickers: Sequence[str] | None = None,
        intervals: str | Sequence[str] | None = None,
        indicators: str | Sequence[str] | None = None,
        rules: str | Path | None = None,
        alerts_file: str | Path | None = None,
        lateness: float | None = None,
        max_symbols: int | None = None,
        fill_gaps: bool | None = None,
        conditions: str | None = None,
        plugins: Sequence[str] | None = None,
        partitions: int | None = None,
        sinks: Sequence[Sink] = (),
        settings: Settings | None = None,
    ) -> None:
        given = {
            "lake": lake, "dataset": dataset, "rules": rules, "alerts_file": alerts_file,
            "intervals": _names(intervals), "indicators": _declarations(indicators),
            "lateness": lateness, "max_symbols": max_symbols, "fill_gaps": fill_gaps,
            "conditions": conditions, "plugins": plugins, "partitions": partitions,
            "symbols": symbols, "rate": rate, "seed": seed,
        }  # fmt: skip
        overrides = {
            _SETTINGS[name]: check_setting(_SETTINGS[name], _plain(value), f"Pipeline: {name}")
            for name, value in given.items()
            if value is not None
        }
        self.feed = feed
        self.kind = _feed_kind(feed)
        self.duration = _positive("duration", duration)
        self.speed = _positive("speed", speed)
        self.tickers = tuple(tickers or ())
        self.sinks = tuple(sinks)
        self._check_feed_options(symbols, rate, seed)
        if "intervals" in overrides:
            _check_intervals(overrides["intervals"])
        base = settings or Settings()
        if self.kind not in (SIMULATOR, "file", "object") and not base.session_calendar:
            from marketpulse.feeds.vendors import VENDORS

            # a live market's session VWAP follows its exchange's sessions (UTC days for crypto)
            overrides["session_calendar"] = VENDORS[self.kind].calendar
        #: The settings tree the run uses: ``settings`` with the options applied.
        self.settings = base.replace(**overrides)
        if self.settings.dataset:
            from marketpulse.feeds.dataset import check_dataset

            check_dataset(self.settings.dataset, "Pipeline: dataset")
        lake_location(self.settings)  # a lake that is no directory nor s3://: refused now
        self._processor = processor_settings(self.settings)
        self._rules = rules_from(self.settings)

    def run(self, stop: threading.Event | None = None) -> PipelineResult:
        """Run until the feed ends, ``duration`` passes or ``stop`` is set; flush; report.

        Everything accepted before the end is processed and stored (as Ctrl-C
        does for ``marketpulse run``). Each call is a new run of the feed.

        Args:
            stop: set it (from another thread) to end the run early.

        Returns:
            The run's figures: ticks in, bars, indicator rows, alerts, DLQ rows, ...

        Raises:
            RunFailure: a stage failed (the lake's disk full, a sink lost).
        """
        from marketpulse.runtime.embedded import EmbeddedPipeline

        options = embedded_options(
            self.settings, self._rules, dataset=self.settings.dataset or None, sinks=self.sinks,
            duration=self.duration, speed=self.speed, processor=self._processor,
            notifications=notifications_from(self.settings),
        )  # fmt: skip
        runner = EmbeddedPipeline(self._open_feed(), options)
        figures = runner.run(stop)
        files, size = runner.lake_written() or (0, 0)
        lake = str(options.lake) if runner.lake_written() is not None else ""
        return PipelineResult(
            **asdict(figures), dataset=runner.dataset, lake=lake, lake_files=files, lake_bytes=size
        )

    def _check_feed_options(self, symbols: object, rate: object, seed: object) -> None:
        if self.kind != SIMULATOR and any(v is not None for v in (symbols, rate, seed)):
            raise ConfigError("Pipeline: symbols, rate, seed apply to the simulator feed only")
        if self.tickers and self.kind in (SIMULATOR, "file", "object"):
            raise ConfigError("Pipeline: tickers apply to a live vendor feed only")
        if self.speed is not None and self.kind not in ("file", "object"):
            raise ConfigError(
                f"Pipeline: speed applies to a replayed file or a feed object, not {self.kind}"
            )

    def _open_feed(self) -> Feed:
        if self.kind == "object":
            return cast("Feed", self.feed)
        if self.kind == "file":
            from marketpulse.feeds import FileReplay

            return FileReplay(Path(str(self.feed)))
        if self.kind == SIMULATOR:
            from marketpulse.feeds import Simulator

            sim = self.settings.simulator
            return Simulator(
                symbols=sim.symbols, rate=sim.rate, seed=sim.seed, realtime=True, quotes=True
            )
        from marketpulse.feeds.vendors import VENDORS, Symbols, VendorOptions, open_vendor

        spec = VENDORS[self.kind]
        options = VendorOptions(symbols=Symbols(self.tickers))
        if spec.needs_key:
            options.key, options.secret = vendor_credentials(self.kind, spec.needs_secret)
        # a vendor feed keeps the clock without saying so: the protocol counts it as paced
        return cast("Feed", open_vendor(self.kind, options))


def _feed_kind(feed: object) -> str:
    """``simulator``, a vendor's name, ``file`` or ``object`` (a feed of the caller's)."""
    if not isinstance(feed, str | Path):
        if not callable(getattr(feed, "batches", None)):
            raise ConfigError(
                f"Pipeline: feed: expected 'simulator', a vendor, a file or a feed, got {feed!r}"
            )
        return "object"
    if feed == SIMULATOR:
        return SIMULATOR
    from marketpulse.feeds.vendors import VENDORS

    if isinstance(feed, str) and feed in VENDORS:
        return feed
    if not Path(feed).is_file():
        raise InputError(
            f"Pipeline: feed: {str(feed)!r} is neither 'simulator', a vendor "
            f"({', '.join(VENDORS)}) nor an existing file"
        )
    return "file"


def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Pipeline: {name}: expected a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"Pipeline: {name}: expected a number above 0, got {value!r}")
    return float(value)


def _plain(value: object) -> object:
    """Paths as text, sequences as tuples: the settings' own types."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def _names(intervals: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if intervals is None:
        return None
    if isinstance(intervals, str):
        return tuple(v.strip() for v in intervals.split(",") if v.strip())
    return tuple(intervals)


def _declarations(indicators: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if indicators is None:
        return None
    return (indicators,) if isinstance(indicators, str) else tuple(indicators)


def _check_intervals(names: tuple[str, ...]) -> None:
    from marketpulse.timeframes import parse_intervals

    try:
        parse_intervals(names)
    except ValueError as exc:
        raise ConfigError(f"Pipeline: intervals: {exc}") from None
