"""Real PostgreSQL, InfluxDB and S3 API servers on loopback, for the storage tests.

PostgreSQL and InfluxDB come from Debian's packages (``postgresql``,
``influxdb``; `.ci/run` installs them), the S3 API from moto's server mode.
``MARKETPULSE_POSTGRES_URL`` (a URL whose user may create databases),
``MARKETPULSE_INFLUX_URL`` and ``MARKETPULSE_S3_ENDPOINT`` reuse running
servers instead; tests that stop a server always start their own.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

_PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up in {timeout:g} s")


class PostgresServer:
    """A PostgreSQL cluster in a temporary directory, run as the ``postgres`` user when root."""

    def __init__(self) -> None:
        versions = sorted(_PG_BIN.glob("*/bin/initdb"))
        if not versions:
            pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
        self.bin = versions[-1].parent
        self.home = Path(tempfile.mkdtemp(prefix="marketpulse-pg-"))
        self.port = free_port()
        self._as = []
        if os.geteuid() == 0:  # the server refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.home, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.home / "data"), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale", "C.UTF-8")  # fmt: skip
        self.start()

    @property
    def url(self) -> str:
        return f"postgresql://postgres:secret-pw@127.0.0.1:{self.port}/postgres"

    def _run(self, tool, *args):
        subprocess.run([*self._as, str(self.bin / tool), *args], check=True,
                       capture_output=True, cwd=self.home)  # fmt: skip

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 "
                   "-c max_connections=50 -c shared_buffers=64MB")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.home / "data"), "-o", options,
                  "-l", str(self.home / "log"), "-w", "-t", "60", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.home / "data"), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


def create_database(admin_url: str) -> str:
    """Create a database of a unique name; return its URL."""
    import psycopg

    name = f"mp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(admin_url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


class InfluxServer:
    """Debian's InfluxDB 1.x (``influxd``) with its data in a temporary directory."""

    def __init__(self) -> None:
        influxd = shutil.which("influxd")
        if influxd is None:
            pytest.fail("InfluxDB is not installed: apt-get install influxdb (.ci/run does)")
        self.home = Path(tempfile.mkdtemp(prefix="marketpulse-influx-"))
        self.port = free_port()
        config = self.home / "influxdb.conf"
        config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{self.home}/meta"\n'
            f'[data]\n  dir = "{self.home}/data"\n  wal-dir = "{self.home}/wal"\n'
            "  query-log-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
        )
        self._log = open(self.home / "log", "wb")  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen([influxd, "-config", str(config)], stdout=self._log,
                                      stderr=subprocess.STDOUT)  # fmt: skip
        _wait(self._ping, "influxd")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ping(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
            return response.status == 204

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)
        self._log.close()
        shutil.rmtree(self.home, ignore_errors=True)


class S3Server:
    """moto's S3 API server on loopback."""

    def __init__(self) -> None:
        self.port = free_port()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self._ping, "moto server")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ping(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2) as response:
            return response.status == 200

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)


def influx_query(base_url: str, database: str, query: str) -> list[dict]:
    """Run an InfluxQL query; return the series of its first statement."""
    import json

    params = urllib.parse.urlencode({"db": database, "q": query, "epoch": "ns"})
    with urllib.request.urlopen(f"{base_url}/query?{params}", timeout=30) as response:
        result = json.loads(response.read())["results"][0]
    if "error" in result:
        raise AssertionError(result["error"])
    return result.get("series", [])


def assert_influx_equals_lake(sql, lake, base_url: str, database: str, datasets: set[str]) -> None:
    """Every bars, indicators and alerts row of ``lake`` is a point of ``database``, field for
    field (the indicators' fields: the default declared set), and no other point is there;
    ``sql`` is the tests' DuckDB query fixture, ``datasets`` the dataset tags expected."""
    import json
    import math

    from marketpulse.models import INDICATOR_COLUMNS
    from marketpulse.sinks.influx import INFLUX_TABLES

    for table in ("bars", "indicators", "alerts"):
        tags, fields, _ = INFLUX_TABLES[table]
        if table == "indicators":  # the run's declared columns: the default set
            fields = (*fields, *INDICATOR_COLUMNS)
        columns = ", ".join(
            f"epoch_ns({c}) AS {c}" if c == "bar_end"
            else f"to_json({c})::VARCHAR AS {c}" if c == "details" else c
            for c in (*tags, *fields)
        )  # fmt: skip
        expected = sql(lake, f"SELECT {columns}, epoch_ns(bar_start) AS time FROM {table}")
        got = {}
        for series in influx_query(base_url, database, f"SELECT * FROM {table} GROUP BY *"):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True)) | series["tags"]
                got[tuple(row[c] for c in (*tags, "time"))] = row
        assert len(got) == len(expected) > 0, table
        assert {key[0] for key in got} == datasets  # the dataset tag
        for lake_row in expected:
            row = got[tuple(lake_row[c] for c in (*tags, "time"))]
            for column in fields:
                value = lake_row[column]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    assert row[column] is None, (table, column)
                elif column == "details":
                    assert json.loads(row[column]) == json.loads(value), (lake_row, row)
                else:
                    assert row[column] == value, (table, column, lake_row, row)


@pytest.fixture(scope="session")
def postgres_admin_url():
    """URL of a PostgreSQL server whose user may create databases."""
    if os.environ.get("MARKETPULSE_POSTGRES_URL"):
        yield os.environ["MARKETPULSE_POSTGRES_URL"]
        return
    server = PostgresServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def postgres_url(postgres_admin_url):
    """URL of a new, empty database for one test."""
    return create_database(postgres_admin_url)


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of this test alone (it may stop and start it)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def influx_base_url():
    """Base URL (no database) of an InfluxDB 1.x server."""
    if os.environ.get("MARKETPULSE_INFLUX_URL"):
        parts = urllib.parse.urlsplit(os.environ["MARKETPULSE_INFLUX_URL"])
        yield urllib.parse.urlunsplit(parts._replace(path="", query=""))
        return
    server = InfluxServer()
    try:
        yield server.url
    finally:
        server.close()


@pytest.fixture
def influx_url(influx_base_url):
    """URL of a database of its own for one test (the sink creates it)."""
    return f"{influx_base_url}/mp_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def s3_endpoint():
    """Endpoint of an S3 API server."""
    if os.environ.get("MARKETPULSE_S3_ENDPOINT"):
        yield os.environ["MARKETPULSE_S3_ENDPOINT"]
        return
    server = S3Server()
    try:
        yield server.endpoint
    finally:
        server.close()


def primary_key(conn, table: str) -> str:
    """The columns of ``table``'s primary key in PostgreSQL, comma-separated, in key order."""
    return conn.execute(
        "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i"
        " JOIN pg_class t ON t.oid = i.indrelid"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum"
        " WHERE i.indisprimary AND t.relname = %s",
        (table,),
    ).fetchone()[0]
