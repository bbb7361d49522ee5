"""``docker-compose config`` on compose.yaml (Debian's docker-compose, from ``make db-servers``).

It validates the file as Compose reads it, with the variables of .env.example,
and refuses it when the secrets are not set.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"


def _docker_compose(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    executable = shutil.which("docker-compose")
    assert executable, "docker-compose is not installed (make db-servers installs it)"
    return subprocess.run(
        [executable, "-f", str(COMPOSE), "--env-file", str(env_file), "config", *args],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip


def test_docker_compose_accepts_the_file_with_the_env_example():
    result = _docker_compose(ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    dashboard = resolved["services"]["dashboard"]["environment"]
    assert dashboard["MARKETPULSE_DASHBOARD_TOKEN"] == "change-me-dashboard-token"
    assert resolved["services"]["produce"]["command"] == ["produce", "--feed", "simulator"]


def test_docker_compose_refuses_it_without_the_secrets(tmp_path):
    env = tmp_path / "env"
    env.write_text("MARKETPULSE_SIMULATOR_RATE=5000\n")
    result = _docker_compose(env, "--quiet")
    assert result.returncode != 0
    assert "set " in result.stderr and "in .env" in result.stderr
