"""Database passwords never reach the terminal: `config show`, failed connects, bad URLs."""

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SECRET = "S3CRETpw"


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("name", "value", "readable"),
    [
        ("POSTGRES_URL", f"postgresql://app:{SECRET}@db:5432/market", "@db:5432/market"),
        ("POSTGRES_URL", f"postgresql://db/market?user=app&password={SECRET}", "user=app"),
        ("POSTGRES_URL", f"postgresql://db/m?sslpassword={SECRET}&sslmode=verify-full",
         "sslmode=verify-full"),
        ("POSTGRES_URL", f"host=db dbname=market password={SECRET}", "dbname=market"),
        ("POSTGRES_URL", f"host=db password='{SECRET} x' user=app", "user=app"),
        ("INFLUX_URL", f"http://admin:{SECRET}@influx:8086/market", "influx:8086/market"),
        ("INFLUX_URL", f"http://influx:8086/market?u=admin&p={SECRET}", "u=admin"),
        ("INFLUX_URL", f"http://influx:8086/market?token={SECRET}", "influx:8086"),
    ],
)  # fmt: skip
def test_config_show_masks_the_password_of_every_url_form(cli, name, value, readable):
    result = cli("config", "show", env={f"MARKETPULSE_{name}": value})
    assert SECRET not in result.stdout + result.stderr
    shown = json.loads(result.stdout)[name.lower()]
    assert readable in shown and "********" in shown


def test_a_failed_connect_never_shows_the_password(tmp_path):
    """Each command retries for 15 s and logs every attempt; all run at once."""
    port = _closed_port()
    commands = {
        "url query": ["db", "migrate", "--postgres-url",
                      f"postgresql://127.0.0.1:{port}/m?user=a&password={SECRET}"],
        "dsn": ["db", "migrate", "--postgres-url",
                f"host=127.0.0.1 port={port} user=a password='{SECRET} x'"],
        "url user part": ["db", "migrate", "--postgres-url",
                          f"postgresql://a:{SECRET}@127.0.0.1:{port}/m"],
        "influx": ["run", "--sink", "influx", "--duration", "1", "--port", "0", "--lake",
                   str(tmp_path / "lake"), "--influx-url",
                   f"http://a:{SECRET}@127.0.0.1:{port}/m?u=a&p={SECRET}"],
    }  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    running = {
        what: subprocess.Popen(
            [sys.executable, "-m", "marketpulse", *args],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for what, args in commands.items()
    }
    for what, process in running.items():
        out, err = process.communicate(timeout=120)
        assert process.returncode != 0, what
        lines = err.strip().splitlines()
        assert len(lines) > 1 and lines[-1].startswith("error:"), (what, err)  # attempts logged
        assert SECRET not in out + err, (what, err)
        assert "Traceback" not in err


def test_a_malformed_connection_string_is_refused_without_its_password(cli):
    bad = cli("db", "migrate", "--postgres-url", f"host=db password={SECRET} x", ok=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error:") and "Traceback" not in bad.stderr
    assert SECRET not in bad.stdout + bad.stderr
