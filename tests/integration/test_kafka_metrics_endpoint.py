"""``--metrics-port`` on a real broker: produce, process and sink lake scraped over HTTP.

The three services run as commands, as compose and Kubernetes run them (the
port from ``--metrics-port`` or ``MARKETPULSE_METRICS_PORT``); the test asks
their ``/readyz`` as the probes do, scrapes their ``/metrics`` as Prometheus
does, and runs compose.yaml's own health check against the process service.
A port in use and a bad value each stop the command with one line.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env["MARKETPULSE_METRICS_HOST"] = HOST  # the documented setting: loopback only here
    return {**env, **extra}


def _start(bootstrap: str, prefix: str, *args: object, **env: str) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "marketpulse", *map(str, args),
        "--bootstrap-servers", bootstrap, "--topic-prefix", prefix,
    ]  # fmt: skip
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        text=True, env=_env(**env),
    )  # fmt: skip


def _scrape(port: int) -> Samples:
    text = httpx.get(f"http://{HOST}:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://{HOST}:{port}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:  # not listening yet
        return False


def _wait(condition, what: str, timeout: float = 180.0, processes: tuple = ()):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for process in processes:
            if process.poll() is not None:
                pytest.fail(f"{what}: a service exited: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.25)


def _lag(samples: Samples) -> dict[tuple[str, str], float]:
    """(topic, partition) -> records left, of ``marketpulse_consumer_lag``."""
    return {
        (dict(labels)["topic"], dict(labels)["partition"]): value
        for (name, labels), value in samples.items()
        if name == "marketpulse_consumer_lag"
    }


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert "Traceback" not in out + err, err
    return process.returncode, out + err


@pytest.fixture
def topics(kafka_bootstrap: str, topic_prefix: str) -> Iterator[str]:
    created = subprocess.run(
        [sys.executable, "-m", "marketpulse", "topics", "create", "--partitions", "2",
         "--bootstrap-servers", kafka_bootstrap, "--topic-prefix", topic_prefix],
        capture_output=True, text=True, timeout=120, env=_env(), check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    yield topic_prefix


def test_process_sink_and_produce_serve_metrics_and_readiness(kafka_bootstrap, topics, tmp_path):
    prefix = topics
    ports = {"process": _free_port(), "sink": _free_port(), "produce": _free_port()}
    process = _start(kafka_bootstrap, prefix, "process", "--group", f"{prefix}process",
                     "--metrics-port", ports["process"])  # fmt: skip
    # the sink takes its port from the environment, as compose and Kubernetes give it
    sink = _start(kafka_bootstrap, prefix, "sink", "lake", "--lake", tmp_path / "lake",
                  "--group", f"{prefix}sink", "--max-age", "1",
                  MARKETPULSE_METRICS_PORT=str(ports["sink"]))  # fmt: skip
    services = (process, sink)
    produce = None
    try:
        _wait(lambda: _ready(ports["process"]) and _ready(ports["sink"]), "ready", 240, services)
        produce = _start(kafka_bootstrap, prefix, "produce", "--feed", "simulator",
                         "--symbols", 10, "--rate", 2000, "--duration", 60,
                         "--metrics-port", ports["produce"])  # fmt: skip
        services = (process, sink, produce)

        def processed() -> Samples | None:
            samples = _scrape(ports["process"])
            done = samples.get(("marketpulse_indicator_rows_total", ()), 0) > 0
            return samples if done and len(_lag(samples)) == 2 else None

        figures = _wait(processed, "process: indicators and lag", processes=services)
        assert figures[("marketpulse_ticks_total", ())] > 0
        assert figures[("marketpulse_bars_total", ())] > 0
        assert figures[("marketpulse_process_records_total", ())] > 0
        assert set(_lag(figures)) == {(f"{prefix}ticks", "0"), (f"{prefix}ticks", "1")}
        assert all(v >= 0 for v in _lag(figures).values())
        assert figures[("marketpulse_ready", ())] == 1
        # the latency from each tick's produce time to its indicators
        latency = _wait(
            lambda: _scrape(ports["process"]).get(
                ("marketpulse_tick_to_indicator_seconds_count", ())
            ),
            "process: latency samples", processes=services,
        )  # fmt: skip
        assert latency > 0

        def stored() -> Samples | None:
            samples = _scrape(ports["sink"])
            bars = samples.get(
                ("marketpulse_sink_rows_total", (("sink", "lake"), ("table", "bars")))
            )
            return samples if bars and (f"{prefix}bars", "0") in _lag(samples) else None

        figures = _wait(stored, "sink lake: bars stored and lag", processes=services)
        assert figures[("marketpulse_sink_records_total", (("sink", "lake"),))] > 0
        assert {t for t, _ in _lag(figures)} >= {f"{prefix}bars", f"{prefix}indicators"}
        assert figures[("marketpulse_ready", ())] == 1
        # rows count as the sink takes them, and a commit may be of earlier records (quotes,
        # trades): the bars are durable once a commit follows the one already counted
        commits = ("marketpulse_sink_commits_total", (("sink", "lake"),))
        before = figures.get(commits, 0)
        _wait(lambda: _scrape(ports["sink"]).get(commits, 0) > before,
              "sink lake: a commit after the bars", processes=services)  # fmt: skip
        assert any((tmp_path / "lake" / "bars").rglob("*.parquet"))

        figures = _scrape(ports["produce"])
        assert figures[("marketpulse_ticks_total", ())] > 0
        assert figures[("marketpulse_produce_failed_total", ())] == 0
        assert _ready(ports["produce"])

        # compose.yaml's health check of these services, run against the real one
        check = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["process"]
        code = check["healthcheck"]["test"][3]
        healthy = subprocess.run(
            [sys.executable, "-c", code], timeout=30, check=False,
            env=_env(MARKETPULSE_METRICS_PORT=str(ports["process"])),
        )  # fmt: skip
        assert healthy.returncode == 0
        unhealthy = subprocess.run(
            [sys.executable, "-c", code], timeout=30, check=False, capture_output=True,
            env=_env(MARKETPULSE_METRICS_PORT=str(_free_port())),
        )  # fmt: skip
        assert unhealthy.returncode != 0
    finally:
        results = {name: _stop(p) for name, p in (("process", process), ("sink", sink))}
        if produce is not None:
            results["produce"] = _stop(produce)
    for name, (code, output) in results.items():
        assert code in (0, 130), (name, output[-3000:])
        # the port is named at start-up
        assert f"/metrics, /healthz and /readyz on http://{HOST}:{ports[name]}/" in output, name


def test_a_metrics_port_in_use_is_one_line_before_connecting():
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        # no broker is reached: the port is bound first
        result = subprocess.run(
            [sys.executable, "-m", "marketpulse", "process", "--metrics-port", str(port),
             "--bootstrap-servers", "127.0.0.1:1"],
            capture_output=True, text=True, timeout=120, env=_env(), check=False,
        )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: metrics port {port}: cannot listen on {HOST}:{port}")
    assert "address already in use" in lines[0]


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["sink", "lake", "--metrics-port", "x"], {}, "--metrics-port"),
        (["produce", "--feed", "simulator", "--metrics-port", "70000"], {}, "--metrics-port"),
        (["process"], {"MARKETPULSE_METRICS_PORT": "-1"}, "metrics_port"),
        (["sink", "postgres"], {"MARKETPULSE_METRICS_PORT": "nine"}, "metrics_port"),
    ],
)
def test_a_bad_metrics_port_is_one_line(args, env, words):
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", *args, "--bootstrap-servers", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=120, env=_env(**env), check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert words in lines[0]
