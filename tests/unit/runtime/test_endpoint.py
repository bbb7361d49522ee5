"""A service's own HTTP endpoint: /metrics, /healthz and /readyz over real HTTP.

The endpoint serves on a free port of 127.0.0.1; the last test runs a real
sink service on the embedded bus into a lake behind it and scrapes it as
Prometheus would.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pyarrow as pa
import pytest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from marketpulse.bus import MemoryBus
from marketpulse.bus.topics import Topics
from marketpulse.exceptions import ConfigError
from marketpulse.models import BAR_SCHEMA
from marketpulse.runtime.endpoint import CONTENT_TYPE, ServiceEndpoint
from marketpulse.runtime.service_figures import SinkFigures
from marketpulse.runtime.sink import SinkOptions, SinkService
from marketpulse.sinks import LakeSink

HOST = "127.0.0.1"


class _Figures:
    """A service's figures: one counter, and a readiness the test sets."""

    def __init__(self) -> None:
        self.answer = (False, "no partitions yet")

    def ready(self) -> tuple[bool, str]:
        return self.answer

    def collect(self):
        yield CounterMetricFamily("marketpulse_things", "Things.", value=7)


def _get(endpoint: ServiceEndpoint, path: str) -> httpx.Response:
    return httpx.get(f"http://{HOST}:{endpoint.port}{path}", timeout=5)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_readiness_and_metrics_over_http():
    with ServiceEndpoint(0, HOST, "test") as endpoint:
        assert endpoint.port > 0  # port 0 at the library level: a free one
        assert _get(endpoint, "/healthz").json() == {"status": "ok"}
        starting = _get(endpoint, "/readyz")
        assert starting.status_code == 503
        assert starting.json() == {"status": "not ready", "reason": "starting"}
        assert _get(endpoint, "/metrics").text == ""  # nothing attached yet

        figures = _Figures()
        endpoint.attach(figures)
        not_ready = _get(endpoint, "/readyz")
        assert (not_ready.status_code, not_ready.json()["reason"]) == (503, "no partitions yet")
        figures.answer = (True, "")
        assert _get(endpoint, "/readyz").status_code == 200
        metrics = _get(endpoint, "/metrics")
        assert metrics.headers["content-type"] == CONTENT_TYPE
        assert _samples(metrics.text)[("marketpulse_things_total", ())] == 7
        assert _get(endpoint, "/nothing").status_code == 404
    with pytest.raises(httpx.TransportError):  # closed: the port is released
        httpx.get(f"http://{HOST}:{endpoint.port}/healthz", timeout=2)


def test_a_readiness_that_fails_reads_as_not_ready():
    class Broken(_Figures):
        def ready(self):
            raise RuntimeError("figures broken")

    with ServiceEndpoint(0, HOST) as endpoint:
        endpoint.attach(Broken())
        answer = _get(endpoint, "/readyz")
        assert (answer.status_code, answer.json()["reason"]) == (503, "figures broken")


def test_a_port_in_use_is_one_clear_error():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=rf"metrics port {port}: .*address already in use"):
            ServiceEndpoint(port, HOST).start()


def test_an_address_not_of_this_machine_is_one_clear_error():
    with pytest.raises(ConfigError, match="metrics port 0: cannot listen on 192.0.2.1:0"):
        ServiceEndpoint(0, "192.0.2.1").start()  # TEST-NET-1: never a local address


def _bars(n: int, symbol: str) -> pa.Table:
    start = 1_700_000_000 * 10**9
    rows = [
        {"symbol": symbol, "timeframe": "1m", "bar_start": start + i * 60 * 10**9,
         "bar_end": start + (i + 1) * 60 * 10**9, "open": 1.0, "high": 2.0, "low": 0.5,
         "close": 1.5, "volume": 10.0, "vwap": 1.2, "trades": 3, "dataset": "sim"}
        for i in range(n)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


def _wait_for(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "not in time"
        time.sleep(0.05)


def test_a_sink_services_figures_and_readiness_on_the_embedded_bus(tmp_path):
    topics = Topics("m.")
    bus = MemoryBus()
    bus.create_topics([topics.name("bars")], 2)
    service = SinkService(
        bus, topics, LakeSink(tmp_path / "lake", max_age_s=0.1),
        SinkOptions(group="sink-lake", tables=("bars",)),
    )  # fmt: skip
    with ServiceEndpoint(0, HOST, "sink lake") as endpoint:
        endpoint.attach(SinkFigures(service))
        joining = _get(endpoint, "/readyz").json()["reason"]
        assert joining == "sink lake has not joined consumer group sink-lake yet"
        runner = threading.Thread(target=service.run, daemon=True)
        runner.start()
        try:
            _wait_for(lambda: _get(endpoint, "/readyz").status_code == 200)
            producer = bus.producer()
            producer.send_columns(topics.name("bars"), "bars", _bars(5, "AAA"))
            producer.send_columns(topics.name("bars"), "bars", _bars(3, "BBB"))

            def stored():
                samples = _samples(_get(endpoint, "/metrics").text)
                rows = samples.get(
                    ("marketpulse_sink_rows_total", (("sink", "lake"), ("table", "bars")))
                )
                lagging = any(name == "marketpulse_consumer_lag" for name, _ in samples)
                return samples if rows == 8 and lagging else None  # lag: read every second

            samples = _wait_for(stored)
            assert samples[("marketpulse_sink_records_total", (("sink", "lake"),))] == 8
            assert samples[("marketpulse_ready", ())] == 1
            lag = {
                dict(labels)["partition"]: value
                for (name, labels), value in samples.items()
                if name == "marketpulse_consumer_lag"
            }
            assert set(lag) == {"0", "1"}  # one series per assigned partition
            assert all(v >= 0 for v in lag.values())
            assert {dict(labels)["topic"] for (name, labels) in samples
                    if name == "marketpulse_consumer_lag"} == {"m.bars"}  # fmt: skip
            _wait_for(lambda: _samples(_get(endpoint, "/metrics").text).get(
                ("marketpulse_sink_commits_total", (("sink", "lake"),)), 0) > 0)  # fmt: skip
        finally:
            service.stop.set()
            runner.join(timeout=30)
        stopped = _get(endpoint, "/readyz")
        assert (stopped.status_code, stopped.json()["reason"]) == (503, "sink lake is stopping")
