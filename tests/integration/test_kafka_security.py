"""Every Kafka service on secured listeners: SASL_SSL with SCRAM-SHA-512, and mutual TLS.

One broker (scripts/kafka_secure_broker.py) serves both listeners, with certificates
made by ``openssl`` for this module. The services get only the documented
``MARKETPULSE_KAFKA_*`` variables. A refused login or TLS handshake must end the command
with one ``error:`` line, fast; the password must never show, even at debug level.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from .conftest import marketpulse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))
kafka_broker = importlib.import_module("kafka_broker")
kafka_secure_broker = importlib.import_module("kafka_secure_broker")

USER = "marketpulse-svc"
PASSWORD = f"pw-{uuid.uuid4().hex}"  # distinctive: searched for in every output
SYMBOLS = ("AAPL", "MSFT")
MINUTES = 3
#: Seconds a refused connection may take to be reported: under the connect timeout (15 s),
#: so the refusal was reported when the broker refused, not when the timeout ran out (a
#: margin below it failed on a busy CI machine: 11.0 s, Python's start-up included).
FAST = 15.0


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory):
    """A started broker with SASL_SSL (SCRAM-SHA-512) and mutual-TLS listeners."""
    home = tmp_path_factory.mktemp("secure-kafka")
    certificates = kafka_secure_broker.make_certificates(home / "certs")
    port, controller, sasl_ssl, ssl = kafka_broker.free_ports(4)
    broker = kafka_secure_broker.SecureBroker(
        home / "kafka", certificates, USER, PASSWORD, sasl_ssl_port=sasl_ssl, ssl_port=ssl,
        port=port, controller_port=controller, die_with_parent=True,
    )  # fmt: skip
    broker.start(timeout=120)
    try:
        yield broker
    finally:
        broker.stop()


def sasl_env(broker, prefix, **changes):
    """The documented variables for the SASL_SSL listener (debug logging on)."""
    env = {
        "MARKETPULSE_KAFKA_BOOTSTRAP": broker.sasl_ssl_bootstrap,
        "MARKETPULSE_KAFKA_TOPIC_PREFIX": prefix,
        "MARKETPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MARKETPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "MARKETPULSE_KAFKA_SASL_USERNAME": USER,
        "MARKETPULSE_KAFKA_SASL_PASSWORD": PASSWORD,
        "MARKETPULSE_KAFKA_SSL_CA": str(broker.certificates.ca),
        "MARKETPULSE_LOG_LEVEL": "DEBUG",
    }
    env.update(changes)
    return env


def tls_env(broker, prefix, **changes):
    """The documented variables for the mutual-TLS listener (debug logging on)."""
    certificates = broker.certificates
    env = {
        "MARKETPULSE_KAFKA_BOOTSTRAP": broker.ssl_bootstrap,
        "MARKETPULSE_KAFKA_TOPIC_PREFIX": prefix,
        "MARKETPULSE_KAFKA_SECURITY_PROTOCOL": "SSL",
        "MARKETPULSE_KAFKA_SSL_CA": str(certificates.ca),
        "MARKETPULSE_KAFKA_SSL_CERTIFICATE": str(certificates.client_certificate),
        "MARKETPULSE_KAFKA_SSL_KEY": str(certificates.client_key),
        "MARKETPULSE_LOG_LEVEL": "DEBUG",
    }
    env.update(changes)
    return env


def clean_env(env):
    """The test's environment without MARKETPULSE_* variables, then ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    return {**base, **env}


def ok(result):
    """Assert a command succeeded without leaking the password; return it."""
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert PASSWORD not in output
    return result


def refused(result, elapsed, *words):
    """Assert one ``error:`` line (exit 2), soon, no traceback, no password; return it."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and PASSWORD not in output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, output
    assert result.stderr.strip().splitlines()[-1] == errors[0]
    for word in words:
        assert word in errors[0], (word, errors[0])
    assert elapsed < FAST, f"took {elapsed:.1f} s: {errors[0]}"
    return errors[0]


def timed(*args, **kwargs):
    began = time.monotonic()
    result = marketpulse(*args, timeout=120, **kwargs)
    return result, time.monotonic() - began


def write_trades(path: Path) -> None:
    """Trades every 5 s for 3 minutes per symbol, and one after to close the last minute."""
    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    lines = ["timestamp,symbol,price,size"]
    for second in [*range(0, MINUTES * 60, 5), MINUTES * 60 + 1]:
        for n, symbol in enumerate(SYMBOLS):
            ts = (t0 + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")
            lines.append(f"{ts},{symbol},{100 + n * 100 + second / 100:.2f},10")
    path.write_text("\n".join(lines) + "\n")


def bars(tmp_path, lake):
    result = ok(
        marketpulse(
            "sql", "SELECT symbol, timeframe, bar_start, volume, trades FROM bars "
            "ORDER BY symbol, timeframe, bar_start", "--lake", lake, "--format", "json",
            cwd=tmp_path,
        )
    )  # fmt: skip
    return json.loads(result.stdout)


def test_every_service_over_sasl_ssl_scram(secure_broker, topic_prefix, tmp_path):
    env = sasl_env(secure_broker, topic_prefix)
    trades, lake = tmp_path / "trades.csv", tmp_path / "lake"
    write_trades(trades)

    created = ok(marketpulse("topics", "create", "--partitions", 2, env=env, cwd=tmp_path))
    assert "11 created" in created.stdout
    produced = ok(marketpulse("produce", "--file", trades, env=env, cwd=tmp_path))
    assert f"produced {len(SYMBOLS) * (MINUTES * 12 + 1)} ticks" in produced.stdout
    ok(marketpulse(
        "process", "--group", f"{topic_prefix}p", "--exit-when-idle", 3, "--idle-timeout", 0,
        "--intervals", "1m", env=env, cwd=tmp_path,
    ))  # fmt: skip
    ok(marketpulse(
        "sink", "lake", "--lake", lake, "--group", f"{topic_prefix}s", "--exit-when-idle", 3,
        env=env, cwd=tmp_path,
    ))  # fmt: skip
    rows = bars(tmp_path, lake)
    # three closed minutes per symbol, every trade of them counted (the last one stays open)
    assert [(r["symbol"], r["timeframe"], r["volume"], r["trades"]) for r in rows] == [
        (symbol, "1m", 120.0, 12) for symbol in SYMBOLS for _ in range(MINUTES)
    ]
    described = ok(marketpulse("topics", "describe", env=env, cwd=tmp_path))
    assert f"{topic_prefix}bars: 2 partitions" in described.stdout
    shown = ok(marketpulse("config", "show", env=env, cwd=tmp_path)).stdout
    assert '"sasl_password": "********"' in shown and f'"sasl_username": "{USER}"' in shown
    # the dashboard follows the same topics (its bootstrap from --kafka, the rest from env)
    watchlist = dashboard_watchlist(secure_broker.sasl_ssl_bootstrap, env, tmp_path, lake)
    assert sorted(row["symbol"] for row in watchlist) == list(SYMBOLS)


def dashboard_watchlist(bootstrap, env, tmp_path, lake):
    """Start `dashboard --kafka`, wait for a watchlist row per symbol, stop it; the rows."""
    log = tmp_path / "dashboard.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "marketpulse", "dashboard", "--kafka", bootstrap, "--lake",
             lake, "--port", str(kafka_broker.free_port()), "--interval", "1m"],
            cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True, env=clean_env(env),
        )  # fmt: skip
        try:
            line = proc.stdout.readline()
            assert line.startswith("dashboard: http://"), line + log.read_text()
            url = line.split()[1]
            deadline, rows = time.monotonic() + 60, []
            while len(rows) < len(SYMBOLS) and time.monotonic() < deadline:
                time.sleep(0.3)
                with urllib.request.urlopen(f"{url}api/watchlist", timeout=10) as response:
                    rows = json.loads(response.read())
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            proc.kill()
    assert proc.returncode == 130, log.read_text()
    output = line + out + log.read_text()
    assert "Traceback" not in output and PASSWORD not in output
    return rows


def test_scram_sha_256_and_a_missing_mechanism(secure_broker, topic_prefix, tmp_path):
    env = sasl_env(secure_broker, topic_prefix, MARKETPULSE_KAFKA_SASL_MECHANISM="SCRAM-SHA-256")
    created = ok(marketpulse("topics", "create", "--partitions", 1, env=env, cwd=tmp_path))
    assert "11 created" in created.stdout
    # no mechanism: librdkafka's default, GSSAPI (Kerberos), which this broker does not offer
    del env["MARKETPULSE_KAFKA_SASL_MECHANISM"]
    result, elapsed = timed("topics", "describe", env=env, cwd=tmp_path)
    refused(result, elapsed, "GSSAPI")


def test_run_kafka_over_mutual_tls(secure_broker, topic_prefix, tmp_path):
    env = tls_env(secure_broker, topic_prefix)
    lake = tmp_path / "lake"
    ran = ok(marketpulse(
        "run", "--kafka", secure_broker.ssl_bootstrap, "--duration", 20, "--symbols", 3,
        "--rate", 300, "--lake", lake, "--no-dashboard", "--intervals", "1s",
        env=env, cwd=tmp_path, timeout=180,
    ))  # fmt: skip
    assert lake.is_dir(), ran.stdout + ran.stderr
    rows = bars(tmp_path, lake)
    assert {r["symbol"] for r in rows} and len({r["symbol"] for r in rows}) == 3
    assert all(r["timeframe"] == "1s" and r["trades"] > 0 for r in rows)
    assert len(rows) >= 6


def test_wrong_password_is_one_line_fast(secure_broker, topic_prefix, tmp_path):
    env = sasl_env(secure_broker, topic_prefix, MARKETPULSE_KAFKA_SASL_PASSWORD="not-" + PASSWORD)
    result, elapsed = timed("process", "--group", "g", env=env, cwd=tmp_path)
    refused(result, elapsed, "refused the credentials", "SCRAM-SHA-512")  # no wrong one either
    result, elapsed = timed("topics", "create", env={**env, "MARKETPULSE_KAFKA_SASL_USERNAME": "x"})
    refused(result, elapsed, secure_broker.sasl_ssl_bootstrap, "refused the credentials")


def test_untrusted_broker_certificate_is_one_line_fast(secure_broker, topic_prefix, tmp_path):
    other_ca = str(secure_broker.certificates.other_ca)
    for env in (
        tls_env(secure_broker, topic_prefix, MARKETPULSE_KAFKA_SSL_CA=other_ca),
        sasl_env(secure_broker, topic_prefix, MARKETPULSE_KAFKA_SSL_CA=other_ca),
    ):
        result, elapsed = timed("produce", "--feed", "simulator", "--duration", 1, env=env)
        refused(result, elapsed, "TLS with Kafka at", "certificate verify failed")


def test_missing_client_certificate_is_one_line_fast(secure_broker, topic_prefix, tmp_path):
    env = tls_env(secure_broker, topic_prefix)
    del env["MARKETPULSE_KAFKA_SSL_CERTIFICATE"], env["MARKETPULSE_KAFKA_SSL_KEY"]
    result, elapsed = timed("sink", "lake", "--lake", tmp_path / "lake", env=env, cwd=tmp_path)
    refused(result, elapsed, "TLS with Kafka at", "bad certificate")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"MARKETPULSE_KAFKA_SECURITY_PROTOCOL": "SASL-SSL"}, ("security.protocol",)),
        ({"MARKETPULSE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-1024"}, ("SCRAM-SHA-1024",)),
        ({"MARKETPULSE_KAFKA_SSL_CA": "/nonexistent/ca.pem"}, ("ssl.ca.location",)),
    ],
)
def test_invalid_security_settings_are_one_line(secure_broker, topic_prefix, changes, words):
    result, elapsed = timed(
        "topics", "describe", env=sasl_env(secure_broker, topic_prefix, **changes)
    )
    refused(result, elapsed, "Kafka client settings are not valid", *words)
