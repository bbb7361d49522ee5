import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
LEAN_TRADES = DATA / "lean-2013-10-07" / "trades.csv.gz"
LEAN_BARS = DATA / "lean-2013-10-07" / "minute_bars.csv.gz"
KAGGLE = DATA / "kaggle-stock-exchange" / "indexProcessed.csv"


def _load_beside(name):
    """Load a module beside this file (pytest runs with --import-mode=importlib)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"marketpulse_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Kafka broker fixtures: pytest collects fixtures found in a conftest's namespace.
_kafka_fixtures = _load_beside("kafka_fixtures")
kafka_bootstrap = _kafka_fixtures.kafka_bootstrap
topic_prefix = _kafka_fixtures.topic_prefix
private_broker = _kafka_fixtures.private_broker


# PostgreSQL, InfluxDB and S3 API servers (Debian packages, moto)
_db_fixtures = _load_beside("db_fixtures")
postgres_admin_url = _db_fixtures.postgres_admin_url
postgres_url = _db_fixtures.postgres_url
private_postgres = _db_fixtures.private_postgres
influx_base_url = _db_fixtures.influx_base_url
influx_url = _db_fixtures.influx_url
s3_endpoint = _db_fixtures.s3_endpoint


def marketpulse(*args, cwd=None, timeout=600, env=None):
    """Run the marketpulse command as a user would; return the completed process."""
    command = [sys.executable, "-m", "marketpulse", *map(str, args)]
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    environ.update(env or {})
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=environ
    )


@pytest.fixture
def cli(tmp_path):
    """Run marketpulse in a fresh working directory; fail on a non-zero exit unless told."""

    def run(*args, ok=True, **kwargs):
        result = marketpulse(*args, cwd=kwargs.pop("cwd", tmp_path), **kwargs)
        if ok:
            assert result.returncode == 0, result.stderr + result.stdout
        return result

    return run


@pytest.fixture
def sql(cli):
    """Query a lake through `marketpulse sql --format json`."""
    import json

    def query(lake, text):
        return json.loads(cli("sql", text, "--lake", lake, "--format", "json").stdout)

    return query


@pytest.fixture(scope="session")
def lean_default_reference(kafka_bootstrap):
    """Records sent and outputs of one uninterrupted `process` run with the default settings."""
    from .kafka_tools import lean_default_outputs

    return lean_default_outputs(kafka_bootstrap, LEAN_TRADES)


@pytest.fixture(scope="session")
def lean_reference(kafka_bootstrap):
    """Records sent and outputs of one uninterrupted `process` run over the Lean day."""
    from .kafka_tools import lean_reference_outputs

    return lean_reference_outputs(kafka_bootstrap, LEAN_TRADES)
