"""The FastAPI application: pages, REST API, metrics and the WebSocket.

The API is described at ``/docs`` by the bundled Swagger UI, which reads
``/openapi.json`` (OpenAPI 3.1) rewritten as 3.0 at ``/openapi-3.0.json``.
History comes from the lake; live state from a
:class:`~marketpulse.serve.market.MarketSource`.

Every data route reads one dataset, named by its ``dataset`` parameter; when
none is named it reads the *default dataset*: the one the live pages show (the
run's dataset under ``marketpulse run``, ``--dataset`` of ``marketpulse
dashboard``), else the lake's most recently written. The answer names the
dataset it read in its ``MarketPulse-Dataset`` header (and each row in its
``dataset`` field). Times are ISO 8601 UTC text (``2013-10-07T13:31:00Z``).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from marketpulse.exceptions import MarketPulseError
from marketpulse.runtime import Metrics
from marketpulse.serve import prometheus
from marketpulse.serve.api_schemas import (
    ALERT_ROW,
    BAR_ROW,
    DATASET_ROW,
    FORECAST_ROW,
    INDICATOR_ROW,
    SYMBOL_ROW,
    array_of,
)
from marketpulse.serve.auth import TokenGuard
from marketpulse.serve.broadcast import Broadcast
from marketpulse.serve.heavy import BUSY_RESPONSE, HeavyGate, rows_response
from marketpulse.serve.lake_data import LakeData
from marketpulse.serve.market import MarketSource
from marketpulse.serve.openapi30 import as_openapi_30
from marketpulse.serve.params import (
    check_dataset,
    check_symbol,
    check_timeframe,
    not_found,
    parse_time,
)
from marketpulse.serve.push import Clients, stream_to
from marketpulse.serve.refusals import RefusalLog
from marketpulse.serve.security import SecurityGuard, content_security_policy
from marketpulse.serve.settings import ServeSettings

__all__ = ["create_app", "plotly_js"]

logger = logging.getLogger(__name__)

_STATIC = Path(str(files("marketpulse.serve") / "static"))
_PAGES = {"/": "watchlist.html", "/symbol": "symbol.html", "/alerts": "alerts.html",
          "/pipeline": "pipeline.html"}  # fmt: skip

_OPENAPI_30_URL = "/openapi-3.0.json"
_TIME_HELP = "ISO 8601 (UTC unless an offset is given), or UTC nanoseconds since the epoch."
_TIMEFRAME_HELP = "Bar timeframe: 1s, 5s, 15s, 1m, 5m, 15m, 1h, 1d."
_DATASET_HELP = (
    "Dataset to read (see /api/datasets) [default: the one the live pages show, else the "
    "lake's most recently written]."
)
#: The response header naming the dataset an answer was read from.
DATASET_HEADER = "MarketPulse-Dataset"
_DATASET_HEADERS = {
    DATASET_HEADER: {"description": "The dataset read.", "schema": {"type": "string"}}
}
_DATASETS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The datasets and the default one.",
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "default": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "default_is": {"type": "string", "enum": ["live", "latest"]},
                "time_zone": {"type": "string", "examples": ["America/New_York"]},
                "datasets": {"type": "array", "items": DATASET_ROW},
            },
        }}},
    }
}  # fmt: skip

_ALERT_COUNT_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "How many alerts match, in all and per rule.",
        "headers": _DATASET_HEADERS,
        "content": {"application/json": {"schema": {
            "type": "object",
            "properties": {
                "dataset": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "count": {"type": "integer"},
                "by_rule": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"rule": {"type": "string"}, "count": {"type": "integer"}},
                }},
            },
        }}},
    }
}  # fmt: skip


def _rows(row: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    """The documented 200 answer of a data route: an array of ``row``, the dataset's header."""
    return {200: {**array_of(row, description), "headers": _DATASET_HEADERS}}


def _heavy_rows(row: dict[str, Any], description: str) -> dict[int | str, dict[str, Any]]:
    """The documented answers of a history route: its rows, or 503 while it is busy."""
    return {**_rows(row, description), **BUSY_RESPONSE}


#: What the description of each history route says of its limits.
_HEAVY_NOTE = (
    "\n\nA few such requests (bars, indicators, alerts) are answered at a time and a few "
    "more wait their turn; beyond those the answer is 503 with a `Retry-After` header "
    "(seconds), and nothing was read. Large answers are streamed."
)


def plotly_js() -> Path:
    """Return the path of ``plotly.min.js`` inside the installed ``plotly`` package."""
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


def create_app(
    settings: ServeSettings,
    lake: LakeData,
    source: MarketSource,
    metrics: Metrics | None = None,
) -> Any:
    """Build the dashboard application, wrapped in its Host and Origin checks and token check.

    See :mod:`marketpulse.serve.security` for what is checked; the token check
    is there when ``settings`` has a token.

    Args:
        settings: how to serve (token, update rate).
        lake: history queries.
        source: live watchlist, alerts and figures.
        metrics: the running pipeline's metrics, for ``/metrics`` (``None``: none).
    """
    app = FastAPI(
        title="MarketPulse",
        summary="Live market view, history from the lake and the pipeline's health.",
        version="0.1.0",
        docs_url=None,  # served below from the swagger-ui-bundle package, not a CDN
        redoc_url=None,
    )
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.mount("/assets/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")
    app.add_exception_handler(RequestValidationError, _name_the_parameter)
    app.add_exception_handler(MarketPulseError, _lake_unreadable)
    clients = Clients()
    broadcast = Broadcast(source, settings.updates_per_s)
    gate = HeavyGate(settings.heavy)

    def heavy(read: Any, dataset: str | None, *args: Any) -> Response:
        """Answer ``read(dataset, *args)``'s rows in a turn of the gate (503 when it is full)."""
        if dataset is None:
            return JSONResponse([])
        gate.enter()  # waits for a turn, or raises the 503
        try:
            table = read(dataset, *args)
        except BaseException:
            gate.leave()
            raise
        return rows_response(table, gate, {DATASET_HEADER: dataset})

    def default_dataset() -> tuple[str | None, str]:
        """Return the default dataset and why it is the default."""
        if source.dataset is not None and not source.follows_latest:
            return source.dataset, "live"
        return lake.default_dataset(), "latest"

    def read_dataset(
        response: Response, dataset: str | None = Query(None, description=_DATASET_HELP)
    ) -> str | None:
        """Return the dataset a request reads (``None``: the lake has none), named in a header."""
        if dataset is None:
            dataset = default_dataset()[0]
        else:
            check_dataset(dataset)
            known = lake.names() | {source.dataset}
            if dataset not in known:
                names = ", ".join(sorted(n for n in known if n)) or "none"
                raise not_found("dataset", f"no dataset {dataset!r} (datasets: {names})")
        if dataset is not None:
            response.headers[DATASET_HEADER] = dataset
        return dataset

    reading = Depends(read_dataset)

    # the bundled Swagger UI (4.x) renders OpenAPI 3.0 only: /docs reads a 3.0 rewrite
    docs_page = get_swagger_ui_html(
        openapi_url=_OPENAPI_30_URL,
        title="MarketPulse API",
        swagger_js_url="/assets/swagger/swagger-ui-bundle.js",
        swagger_css_url="/assets/swagger/swagger-ui.css",
        swagger_favicon_url="/assets/swagger/favicon-32x32.png",
    )
    # the page starts Swagger UI with an inline script: allow that one script, by its hash
    docs_policy = content_security_policy(script_hashes=_inline_script_hashes(docs_page.body))

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page.body, headers={"Content-Security-Policy": docs_policy})

    @app.get(_OPENAPI_30_URL, include_in_schema=False)
    def openapi_30() -> JSONResponse:
        return JSONResponse(as_openapi_30(app.openapi()))

    for route, page in _PAGES.items():
        app.add_api_route(route, _page(_STATIC / page), methods=["GET"], include_in_schema=False)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(_STATIC / "favicon.ico", media_type="image/vnd.microsoft.icon")

    @app.get("/assets/plotly.min.js", include_in_schema=False)
    def plotly_asset() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Answer while the server is up."""
        return {"status": "ok"}

    not_ready_because = [""]  # the last reason logged: a probe polls, the log hears it once

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """Answer 200 once the lake can be queried, else 503; why is logged, not answered."""
        try:
            ready = lake.ready()
            reason = "" if ready else f"no lake at {lake.root}"
        except Exception as exc:  # any failure means "not ready"
            ready, reason = False, str(exc) or type(exc).__name__
        if reason != not_ready_because[0]:
            if reason:
                logger.warning("dashboard not ready: %s", reason)
            not_ready_because[0] = reason
        body = {"status": "ready" if ready else "not ready", "checks": {"lake": ready}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"])
    def metrics_text() -> Response:
        """Return the pipeline's counters and latency histogram in Prometheus text format."""
        return Response(prometheus.render(metrics, clients), media_type=prometheus.CONTENT_TYPE)

    @app.get("/api/datasets", tags=["history"], responses=_DATASETS_RESPONSE)
    def datasets() -> dict[str, Any]:
        """List the lake's datasets and name the default one.

        Each dataset has its symbols, timeframes and bars, the time range of
        its bars and when its files were last written. ``default`` is the
        dataset read when a request names none; ``default_is`` says why:
        ``live`` (the dataset of the running pipeline, or the one the
        dashboard was started with) or ``latest`` (the most recently written).
        ``time_zone`` is the exchange's (IANA name, the pipeline's
        ``session_tz``): the symbol page shows times in it by default. The API's
        times are UTC whatever it is.
        """
        name, why = default_dataset()
        return {"default": name, "default_is": why, "time_zone": settings.time_zone,
                "datasets": lake.datasets()}  # fmt: skip

    @app.get("/api/symbols", tags=["history"], responses=_rows(SYMBOL_ROW, "The symbols."))
    def symbols(dataset: str | None = reading) -> list[dict[str, Any]]:
        """List one dataset's symbols, with their timeframes, bar counts and time ranges."""
        return [] if dataset is None else lake.symbols(dataset)

    @app.get("/api/timeframes", tags=["history"], responses={200: {"headers": _DATASET_HEADERS}})
    def timeframes(dataset: str | None = reading) -> list[str]:
        """List the bar timeframes of one dataset, shortest first."""
        return [] if dataset is None else lake.timeframes(dataset)

    @app.get("/api/bars", tags=["history"], responses=_heavy_rows(BAR_ROW, "The bars."),
             description="Return one symbol's bars of one timeframe and dataset, oldest first."
             + _HEAVY_NOTE)  # fmt: skip
    def bars(
        symbol: str = Query(..., description="Ticker symbol."),
        timeframe: str = Query("1m", description=_TIMEFRAME_HELP),
        start: str | None = Query(None, description="Bars starting at or after. " + _TIME_HELP),
        end: str | None = Query(None, description="Bars starting before. " + _TIME_HELP),
        limit: int = Query(1000, ge=1, le=100_000, description="Most bars (the latest)."),
        dataset: str | None = reading,
    ) -> Response:
        """Return one symbol's bars of one timeframe and dataset, oldest first."""
        args = _series_args(symbol, timeframe, start, end)
        return heavy(lake.bars_table, dataset, *args, limit)

    @app.get("/api/indicators", tags=["history"],
             responses=_heavy_rows(INDICATOR_ROW, "The rows."),
             description="Return one symbol's indicator rows, oldest first (null: warming up)."
             "\n\nA row has the key of its bar (`bar_start`), so it joins `/api/bars` exactly."
             + _HEAVY_NOTE)  # fmt: skip
    def indicators(
        symbol: str = Query(..., description="Ticker symbol."),
        timeframe: str = Query("1m", description=_TIMEFRAME_HELP),
        start: str | None = Query(
            None, description="Rows of bars starting at or after. " + _TIME_HELP
        ),
        end: str | None = Query(None, description="Rows of bars starting before. " + _TIME_HELP),
        limit: int = Query(1000, ge=1, le=100_000, description="Most rows (the latest)."),
        dataset: str | None = reading,
    ) -> Response:
        """Return one symbol's indicator rows, oldest first (null: warming up).

        A row has the key of its bar (``bar_start``), so it joins ``/api/bars`` exactly.
        """
        args = _series_args(symbol, timeframe, start, end)
        return heavy(lake.indicators_table, dataset, *args, limit)

    @app.get("/api/forecasts", tags=["history"],
             responses=_rows(FORECAST_ROW, "Per model and horizon."))  # fmt: skip
    def forecasts(
        symbol: str = Query(..., description="Ticker symbol."),
        timeframe: str = Query("1m", description=_TIMEFRAME_HELP),
        dataset: str | None = reading,
    ) -> list[dict[str, Any]]:
        """Each forecasting model's latest prediction on one series, and how its calls went there.

        Per model and horizon (bars ahead): the latest prediction (the bar it was
        made at, ``direction`` 1 up, -1 down, 0 none, ``probability`` of an up
        move, predicted return ``value``), ``resolved``: its calls whose outcome
        is known and moved, ``hits``: those the price followed. Empty without
        forecasting models (``--forecast``).
        """
        check_symbol(symbol)
        return [] if dataset is None else lake.forecasts(dataset, symbol, timeframe)

    @app.get("/api/alerts", tags=["history"], responses=_heavy_rows(ALERT_ROW, "The alerts."),
             description="Return one dataset's latest alerts, newest first; `details` holds "
             "what the rule saw." + _HEAVY_NOTE)  # fmt: skip
    def alerts(
        symbol: str | None = Query(None, description="Only this symbol."),
        rule: str | None = Query(None, description="Only this rule."),
        severity: str | None = Query(None, description="Only this severity."),
        start: str | None = Query(
            None, description="Alerts whose bar ended at or after. " + _TIME_HELP
        ),
        end: str | None = Query(None, description="Alerts whose bar ended before. " + _TIME_HELP),
        limit: int = Query(200, ge=1, le=100_000, description="Most alerts (the latest)."),
        offset: int = Query(
            0,
            ge=0,
            le=10_000_000,
            description="Newest alerts to skip, for paging: `offset=100&limit=100` is the "
            "second page of 100. `/api/alerts/count` says how many there are.",
        ),
        dataset: str | None = reading,
    ) -> Response:
        """Return one dataset's latest alerts, newest first; ``details`` holds what the rule saw."""
        check_symbol(symbol)
        times = parse_time(start, "start"), parse_time(end, "end")
        return heavy(lake.alerts_table, dataset, symbol, rule, severity, *times, limit, offset)

    @app.get("/api/alerts/count", tags=["history"], responses=_ALERT_COUNT_RESPONSE)
    def alert_count(
        symbol: str | None = Query(None, description="Only this symbol."),
        rule: str | None = Query(None, description="Only this rule (not in `by_rule`)."),
        severity: str | None = Query(None, description="Only this severity."),
        start: str | None = Query(
            None, description="Alerts whose bar ended at or after. " + _TIME_HELP
        ),
        end: str | None = Query(None, description="Alerts whose bar ended before. " + _TIME_HELP),
        dataset: str | None = reading,
    ) -> dict[str, Any]:
        """Count one dataset's alerts that match the filters (those of `/api/alerts`).

        ``count``: the alerts matching every filter; ``by_rule``: per rule, the
        alerts matching the other filters (every rule the filters leave, each
        with its count, by name).
        """
        check_symbol(symbol)
        times = parse_time(start, "start"), parse_time(end, "end")
        if dataset is None:
            return {"dataset": None, "count": 0, "by_rule": []}
        return {"dataset": dataset, **lake.alert_counts(dataset, symbol, rule, severity, *times)}

    track_records: list[Any] = []  # made on first use: a backtest loads the kernels

    @app.get("/api/track-record", tags=["history"],
             responses={200: {"headers": _DATASET_HEADERS}})  # fmt: skip
    def track_record(
        horizon: int = Query(
            15, ge=1, le=10_000, description="Bars after each alert at which its return is taken."
        ),
        dataset: str | None = reading,
    ) -> dict[str, Any]:
        """Each alert rule's track record over one dataset (a backtest of the dashboard's rules).

        Per rule: alerts, mean forward return (percent) and hit rate in the
        alert's direction with its 95% interval, the same for random bars of
        the same symbols and timeframes (the baseline), the p-value of the
        difference, and both distributions of returns (``returns``,
        ``baseline``: percentiles 5, 25, 50, 75, 95 and the mean). ``note``
        says why there are no rules (no bars of their timeframes).
        """
        if dataset is None:
            return {"dataset": None, "horizon": horizon, "rules": []}
        if not track_records:
            from marketpulse.serve.track_record import TrackRecords

            track_records.append(TrackRecords(lake.location, settings.rules, settings.indicators))
        return track_records[0].get(dataset, horizon)

    @app.get("/api/watchlist", tags=["live"], responses={200: {"headers": _DATASET_HEADERS}})
    def watchlist(response: Response) -> list[dict[str, Any]]:
        """Return every symbol's live row (last, change %, volume, RSI, MACD hist, VWAP).

        The rows are of the dataset the live pages show (named in the header).
        """
        rows = source.watchlist()
        if source.dataset is not None:
            response.headers[DATASET_HEADER] = source.dataset
        return rows

    @app.get("/api/pipeline", tags=["live"], responses={200: {"headers": _DATASET_HEADERS}})
    def pipeline(
        dead_letters: int = Query(10, ge=0, le=1000, description="Latest dead letters to show."),
        dataset: str | None = reading,
    ) -> dict[str, Any]:
        """Return the pipeline's figures and what the lake holds of a dataset.

        ``figures.source`` says where the live figures come from: ``pipeline``
        (a run in this process: rates and latency), ``topics`` (a pipeline's
        Kafka output topics: rates and consumer lag) or ``lake`` (stored files
        only: no rates). ``lake`` is what the lake holds of the dataset: per
        table its rows, time span (``first``, ``last``), Parquet files and last
        write, and the dead letters counted by reason (``null``: the lake has no
        dataset). ``dead_letters``: the latest dead letters with their reasons.
        """
        letters = lake.dead_letters(dataset, dead_letters) if dead_letters and dataset else []
        return {
            "figures": source.figures(),
            "lake": lake.summary(dataset) if dataset else None,
            "dead_letters": letters,
            "sink": {"kind": "lake", "root": str(lake.root), "ready": lake.exists()},
            "clients": {"connected": clients.connected, "dropped": clients.dropped},
        }

    @app.websocket("/ws")
    async def live(websocket: WebSocket) -> None:
        """Push watchlist changes, new alerts and figures (composed once for every client)."""
        await websocket.accept()
        await stream_to(websocket, broadcast, settings.send_timeout_s, clients)

    refusals = RefusalLog()
    guarded = TokenGuard(app, settings.token.reveal(), refusals) if settings.token else app
    return SecurityGuard(guarded, settings.host, bool(settings.token), refusals)


async def _name_the_parameter(request: Request, exc: Exception) -> JSONResponse:
    """Answer 422 with messages that start with the parameter's name."""
    errors = []
    for error in exc.errors() if isinstance(exc, RequestValidationError) else []:
        name = str(error["loc"][-1]) if error.get("loc") else "request"
        errors.append({"loc": list(error.get("loc", [])), "msg": f"{name}: {error['msg']}",
                       "type": error.get("type", "value_error")})  # fmt: skip
    return JSONResponse({"detail": errors}, status_code=422)


async def _lake_unreadable(request: Request, exc: Exception) -> JSONResponse:
    """Answer 503 when the lake cannot be read (its path and why go to the log only)."""
    logger.error("dashboard: %s: %s", request.url.path, exc)
    return JSONResponse(
        {"detail": "the lake cannot be read; the dashboard's log says why"}, status_code=503
    )


def _series_args(
    symbol: str, timeframe: str, start: str | None, end: str | None
) -> tuple[str, str, int | None, int | None]:
    check_symbol(symbol)
    check_timeframe(timeframe)
    return symbol, timeframe, parse_time(start, "start"), parse_time(end, "end")


def _inline_script_hashes(html: bytes) -> list[str]:
    """Return the CSP hashes (``sha256-...``) of the inline scripts of a page."""
    scripts = re.findall(rb"<script>(.*?)</script>", html, re.S)
    return ["sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() for s in scripts]


def _page(path: Path) -> Any:
    async def page() -> FileResponse:
        return FileResponse(path, media_type="text/html")

    page.__name__ = f"page_{path.stem}"
    return page
