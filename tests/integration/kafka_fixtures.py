"""Pytest fixtures for tests against a real Kafka broker (see scripts/kafka_broker.py).

conftest.py loads this module by path and re-exports the fixtures, so every test under
tests/integration can ask for them:

- ``kafka_bootstrap`` (session): bootstrap servers of a broker shared by the whole run.
  ``MARKETPULSE_KAFKA_BOOTSTRAP`` names an existing broker; otherwise one is started on a
  free port under a temporary directory and stopped when the session ends.
- ``topic_prefix``: a unique ``t<8 hex>.`` prefix, so each test owns its topic names.
- ``private_broker``: a started broker of the test's own (free ports, own home) that the
  test may ``stop()`` and ``start()`` again; its data survives since the home is kept.
"""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_ENV = "MARKETPULSE_KAFKA_BOOTSTRAP"


def _load_kafka_broker():
    """Import scripts/kafka_broker.py (not a package; its siblings beside it) once."""
    scripts = str(ROOT / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module("kafka_broker")


kafka_broker = _load_kafka_broker()
kafka_cluster = importlib.import_module("kafka_cluster")  # its sibling, the Cluster
Broker = kafka_broker.Broker


def new_broker(home: Path) -> Broker:
    """Return a (not yet started) broker under ``home`` on two free ports."""
    port, controller_port = kafka_broker.free_ports(2)
    return Broker(home, port=port, controller_port=controller_port, die_with_parent=True)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of the session's broker: ``$MARKETPULSE_KAFKA_BOOTSTRAP`` or our own."""
    existing = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if existing:
        yield existing
        return
    broker = new_broker(tmp_path_factory.mktemp("kafka"))
    broker.start(timeout=120)
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A prefix like ``t1a2b3c4d.`` unique to this test, for its topic names."""
    return f"t{uuid.uuid4().hex[:8]}."


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Broker]:
    """A started broker for this test alone; it may be stopped and started again."""
    broker = new_broker(tmp_path / "kafka")
    broker.start(timeout=120)
    try:
        yield broker
    finally:
        broker.stop()
