"""A command loads only the libraries it uses: what keeps ``marketpulse --help`` and ``sql`` quick.

Each command runs in a fresh interpreter, as the console script runs it; the
modules loaded by the time it exits are compared with what it needs. An eager
import of a heavy library added anywhere on a command's path (a module-level
``import numba`` in a command module, ``pyarrow`` in the package root, a sink's
client library in the runner) fails here. Times are measured by
``bench/bench_startup.py``, not asserted.
"""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

#: Imported heavy libraries: numerical, storage, clients, servers, typer's pydantic.
HEAVY = (
    "numpy", "pyarrow", "numba", "pandas", "duckdb", "msgspec", "confluent_kafka",
    "prometheus_client", "pydantic", "httpx", "psycopg", "exchange_calendars", "fastapi",
    "uvicorn", "plotly",
)  # fmt: skip

_RUN = """
import json, sys
heavy = json.loads(sys.argv[1])
sys.argv = ["marketpulse", *sys.argv[2:]]
from marketpulse.cli import main
try:
    main()
finally:
    loaded = [m for m in heavy if m in sys.modules]
    print("LOADED " + json.dumps(loaded), file=sys.stderr)
"""


def loaded_by(*args, cwd):
    """Run ``marketpulse ARGS`` in a fresh interpreter; its exit code and heavy modules loaded."""
    result = subprocess.run(
        [sys.executable, "-c", _RUN, json.dumps(HEAVY), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    line = [x for x in result.stderr.splitlines() if x.startswith("LOADED ")]
    assert line, result.stderr[-3000:]
    return result.returncode, set(json.loads(line[-1][len("LOADED ") :]))


def test_help_loads_no_heavy_library(tmp_path):
    code, loaded = loaded_by("--help", cwd=tmp_path)
    assert code == 0
    assert loaded == set()


def test_a_bad_option_is_reported_without_heavy_libraries(tmp_path):
    code, loaded = loaded_by("--no-such-option", cwd=tmp_path)
    assert code == 2
    assert loaded == set()


def test_importing_the_package_root_loads_no_message_types(tmp_path):
    code = (
        "import sys, marketpulse; assert 'pyarrow' not in sys.modules, 'eager'; "
        "from marketpulse.models import Trade; assert marketpulse.Trade is Trade; "
        "assert 'Trade' in dir(marketpulse); print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "ok", result.stderr
    with pytest.raises(AttributeError):
        import marketpulse

        marketpulse.NoSuchName  # noqa: B018


def test_sql_loads_duckdb_and_arrow_but_no_kernels_or_clients(tmp_path):
    lake = tmp_path / "lake"
    lake.mkdir()
    code, loaded = loaded_by("sql", "SELECT count(*) FROM bars", "--lake", lake, cwd=tmp_path)
    assert code == 0
    assert {"duckdb", "pyarrow"} <= loaded  # the check sees what is there
    # pandas: pyarrow.dataset imports it where installed; sql reads local lakes without it
    unused = {"numba", "pandas", "confluent_kafka", "prometheus_client", "httpx", "psycopg",
              "exchange_calendars", "fastapi", "uvicorn", "plotly"}  # fmt: skip
    assert loaded & unused == set()


def test_replay_loads_no_database_client_nor_server(tmp_path):
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "timestamp,symbol,price,size\n"
        + "".join(f"2024-01-02T15:0{i}:00Z,AAA,{100 + i},100\n" for i in range(5))
    )
    lake = tmp_path / "lake"
    code, loaded = loaded_by("replay", trades, "--lake", lake, "--alerts-file", "", cwd=tmp_path)
    assert code == 0
    assert "numba" in loaded
    # the lake sink alone: no psycopg nor httpx (database sinks, notifiers), no servers, no SQL
    assert loaded & {"psycopg", "httpx", "duckdb", "fastapi", "uvicorn", "plotly"} == set()
