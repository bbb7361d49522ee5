"""The compose stack's dashboard, scraped and probed as Prometheus and compose do.

compose.yaml runs ``marketpulse dashboard --host 0.0.0.0`` with a token;
deploy/prometheus/prometheus.yml scrapes its ``/metrics`` under the service's
name with that token as a bearer credentials file, and the compose health
check opens ``/healthz`` on localhost. Both are done here against a real
dashboard process (no containers).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "compose-t0ken"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dashboard(tmp_path):
    """The dashboard as compose starts it (on an empty lake, on a free port): its port."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    args = list(services["dashboard"]["command"])
    args = args[: args.index("--kafka")] + args[args.index("--kafka") + 2 :]  # no broker here
    port = _free_port()
    args[args.index("--port") + 1] = str(port)
    args[args.index("--lake") + 1] = str(tmp_path / "lake")
    (tmp_path / "lake").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    env["MARKETPULSE_DASHBOARD_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", *args],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    line = process.stdout.readline()
    if not re.match(r"dashboard: http://0\.0\.0\.0:\d+/", line):
        process.kill()
        pytest.fail(f"no URL printed: {line!r} {process.stderr.read()}")
    try:
        yield port, services
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)
        finally:
            process.kill()
        assert process.returncode == 130, err
        assert "Traceback" not in err


def _scrape_job() -> dict:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    return next(j for j in config["scrape_configs"] if j["job_name"] == "marketpulse-dashboard")


def test_prometheus_scrapes_the_dashboard_with_the_token_file_compose_writes(dashboard, tmp_path):
    port, services = dashboard
    job = _scrape_job()
    # compose.yaml's prometheus command writes the token with printf %s (no newline).
    command = services["prometheus"]["command"][0]
    assert 'printf %s "$$MARKETPULSE_DASHBOARD_TOKEN" > ' + job["authorization"][
        "credentials_file"
    ] in " ".join(command.split())
    token_file = tmp_path / "dashboard-token"
    subprocess.run(
        ["sh", "-c", f'printf %s "$MARKETPULSE_DASHBOARD_TOKEN" > {token_file}'],
        env={"MARKETPULSE_DASHBOARD_TOKEN": TOKEN}, check=True,
    )  # fmt: skip
    host = job["static_configs"][0]["targets"][0].split(":")[0]
    url = f"http://127.0.0.1:{port}{job['metrics_path']}"
    headers = {"Host": f"{host}:{port}", "Authorization": f"Bearer {token_file.read_text()}"}
    scraped = httpx.get(url, headers=headers, timeout=10)
    assert scraped.status_code == 200, scraped.text
    names = {f.name for f in text_string_to_metric_families(scraped.text)}
    assert "marketpulse_dashboard_clients" in names


def test_a_scrape_without_the_token_is_refused(dashboard):
    port, _ = dashboard
    refused = httpx.get(
        f"http://127.0.0.1:{port}/metrics", headers={"Host": f"dashboard:{port}"}, timeout=10
    )
    assert refused.status_code == 401


def test_the_compose_healthcheck_passes_on_a_serving_dashboard_and_fails_without_one(dashboard):
    port, services = dashboard
    test = services["dashboard"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    probe = test[3].replace("localhost:8050", f"localhost:{port}")
    assert probe != test[3]
    assert subprocess.run([sys.executable, "-c", probe], timeout=30, check=False).returncode == 0
    dead = test[3].replace("localhost:8050", f"localhost:{_free_port()}")
    failed = subprocess.run(
        [sys.executable, "-c", dead], capture_output=True, timeout=30, check=False
    )
    assert failed.returncode != 0
