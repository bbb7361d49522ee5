"""`marketpulse dashboard` and `marketpulse run` serving the API, end to end.

The lake holds two datasets with a symbol in common, as after following the
README: a simulated market (`marketpulse run`, dataset `simulator`) and then
the Lean day of real trades (`marketpulse replay`, dataset
`lean-2013-10-07-trades`), SPY at about 586 in one and 167 in the other.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

pytestmark = pytest.mark.integration

LEAN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lean-2013-10-07"
SIMULATOR, REPLAY = "simulator", "lean-2013-10-07-trades"
#: An ISO 8601 UTC time as the API writes it.
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(tmp_path, *args, env=None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    environ.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", *map(str, args)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environ,
    )  # fmt: skip
    line = process.stdout.readline()
    match = re.match(r"dashboard: (http://\S+/)", line)
    if not match:
        process.kill()
        pytest.fail(f"no URL printed: {line!r} {process.stderr.read()}")
    return process, match.group(1)


def _stop(process):
    process.send_signal(signal.SIGINT)
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err  # stopped by Ctrl-C, cleanly
    assert "Traceback" not in err
    return out


def _poll(check, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """A lake written by `marketpulse run` for a few seconds, then by a replay of the Lean day."""
    work = tmp_path_factory.mktemp("run")
    lake = work / "lake"
    result = subprocess.run(
        [sys.executable, "-m", "marketpulse", "run", "--symbols", "8", "--rate", "2000",
         "--duration", "7", "--intervals", "1s,1m", "--lake", str(lake), "--alerts-file",
         str(work / "a.jsonl"), "--port", "0"],
        cwd=work, capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("dashboard: http://127.0.0.1:")
    assert lines[-1].startswith("done: ticks in ")
    replayed = subprocess.run(
        [sys.executable, "-m", "marketpulse", "replay", str(LEAN / "trades.csv.gz"),
         "--intervals", "1s,1m", "--lake", str(lake), "--alerts-file", str(work / "b.jsonl")],
        cwd=work, capture_output=True, text=True, timeout=300, env=_env(),
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    return lake


def _spy_prices() -> list[float]:
    """SPY's trade prices in the Lean file (the oracle for its bars)."""
    with gzip.open(LEAN / "trades.csv.gz", "rt") as lines:
        header = next(lines).strip().split(",")
        symbol, price = header.index("symbol"), header.index("price")
        return [float(f[price]) for f in (ln.split(",") for ln in lines) if f[symbol] == "SPY"]


def test_two_datasets_of_one_symbol_never_mix_and_times_are_iso(tmp_path, lake):
    process, url = _start(tmp_path, "dashboard", "--lake", lake, "--port", _free_port())
    try:
        listed = httpx.get(url + "api/datasets").json()
        assert [d["dataset"] for d in listed["datasets"]] == [REPLAY, SIMULATOR]
        # the replay was written last: it is read when no dataset is asked for
        assert listed["default"] == REPLAY and listed["default_is"] == "latest"
        spy = {}
        for dataset in (REPLAY, SIMULATOR):
            params = {"symbol": "SPY", "timeframe": "1s", "limit": 100_000, "dataset": dataset}
            response = httpx.get(url + "api/bars", params=params)
            assert response.headers["MarketPulse-Dataset"] == dataset
            spy[dataset] = bars = response.json()
            assert bars and {b["dataset"] for b in bars} == {dataset}
            assert all(ISO.match(b["bar_start"]) and ISO.match(b["bar_end"]) for b in bars)
            rows = httpx.get(url + "api/indicators", params=params).json()
            assert {r["dataset"] for r in rows} == {dataset}
            assert {r["bar_start"] for r in rows} <= {b["bar_start"] for b in bars}
        prices = _spy_prices()
        replay = spy[REPLAY]
        assert len(replay) == len({b["bar_start"] for b in replay})  # one bar per second
        assert all(b["bar_start"].startswith("2013-10-07T") for b in replay)
        assert min(b["low"] for b in replay) >= min(prices)
        assert max(b["high"] for b in replay) <= max(prices)
        # the simulator's SPY is nowhere near 2013's: one mixed-in bar would break this
        assert min(b["low"] for b in spy[SIMULATOR]) > max(prices)
        assert not any(b["bar_start"].startswith("2013-") for b in spy[SIMULATOR])
        default = httpx.get(
            url + "api/bars", params={"symbol": "SPY", "timeframe": "1s", "limit": 100_000}
        )
        assert default.headers["MarketPulse-Dataset"] == REPLAY and default.json() == replay
        alerts = httpx.get(url + "api/alerts", params={"dataset": REPLAY, "limit": 5}).json()
        assert alerts and all(isinstance(a["details"], dict) for a in alerts)
        assert {a["dataset"] for a in alerts} == {REPLAY}
        unknown = httpx.get(url + "api/bars", params={"symbol": "SPY", "dataset": "lean"})
        assert unknown.status_code == 404
        assert unknown.json()["detail"][0]["msg"] == (
            f"dataset: no dataset 'lean' (datasets: {REPLAY}, {SIMULATOR})"
        )
        bad = httpx.get(url + "api/bars", params={"symbol": "SPY", "dataset": "../lake"})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "dataset"]
    finally:
        _stop(process)


def test_dashboard_dataset_option_picks_what_the_live_pages_show(tmp_path, lake):
    process, url = _start(
        tmp_path, "dashboard", "--lake", lake, "--port", _free_port(), "--dataset", SIMULATOR
    )
    try:
        listed = httpx.get(url + "api/datasets").json()
        assert listed["default"] == SIMULATOR and listed["default_is"] == "live"
        watchlist = httpx.get(url + "api/watchlist")
        assert watchlist.headers["MarketPulse-Dataset"] == SIMULATOR
        symbols = httpx.get(url + "api/symbols", params={"dataset": SIMULATOR}).json()
        assert {r["symbol"] for r in watchlist.json()} == {s["symbol"] for s in symbols}
        assert len(symbols) == 8
        with connect(url.replace("http", "ws") + "ws") as ws:
            assert json.loads(ws.recv(timeout=30))["dataset"] == SIMULATOR
    finally:
        _stop(process)
    for name, why in [("nosuch", f"no dataset 'nosuch' in {lake} (datasets: {REPLAY}, "
                                 f"{SIMULATOR})"), ("a b", "is not a dataset name")]:  # fmt: skip
        refused = subprocess.run(
            [sys.executable, "-m", "marketpulse", "dashboard", "--lake", str(lake), "--port",
             str(_free_port()), "--dataset", name, "--duration", "1"],
            cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env(),
        )  # fmt: skip
        assert refused.returncode == 2
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith("error: --dataset: ") and why in line
    # following topics, the live pages show what the topics carry: no --dataset to give
    refused = subprocess.run(
        [sys.executable, "-m", "marketpulse", "dashboard", "--kafka", "127.0.0.1:1", "--lake",
         str(lake), "--dataset", SIMULATOR, "--duration", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --dataset: the live pages of --kafka show the dataset the topics carry"
    ]


def test_dashboard_over_a_lake_of_the_earlier_layout_says_how_to_convert_it(tmp_path):
    old = tmp_path / "old"
    (old / "bars" / "date=2024-03-05").mkdir(parents=True)
    pq.write_table(pa.table({"symbol": ["SPY"], "start": [0]}),
                   old / "bars" / "date=2024-03-05" / "part-0.parquet")  # fmt: skip
    refused = subprocess.run(
        [sys.executable, "-m", "marketpulse", "dashboard", "--lake", str(old), "--port",
         str(_free_port()), "--duration", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=_env(),
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"error: lake {old} uses the layout of an earlier MarketPulse; convert it with: "
        f"marketpulse lake migrate --lake {old}"
    ]


def test_dashboard_command_serves_the_lake(tmp_path, lake):
    process, url = _start(tmp_path, "dashboard", "--lake", lake, "--port", _free_port())
    try:
        symbols = httpx.get(url + "api/symbols", params={"dataset": SIMULATOR}).json()
        assert len(symbols) == 8
        symbol = symbols[0]["symbol"]
        params = {"symbol": symbol, "timeframe": "1s", "dataset": SIMULATOR}
        bars = httpx.get(url + "api/bars", params=params).json()
        assert len(bars) >= 3 and all(b["symbol"] == symbol for b in bars)
        bad = httpx.get(url + "api/bars", params={**params, "timeframe": "2x"})
        assert bad.status_code == 422 and "timeframe" in bad.json()["detail"][0]["msg"]
        assert httpx.get(url + "readyz").status_code == 200
        with connect(url.replace("http", "ws") + "ws") as ws:
            snapshot = json.loads(ws.recv(timeout=30))
        assert snapshot["type"] == "snapshot"
        # the live pages show the most recently written dataset: the replay's
        assert snapshot["dataset"] == REPLAY
        assert {r["symbol"] for r in snapshot["rows"]} == {"SPY", "IBM", "AIG", "BAC"}
        assert all(r["last"] > 0 for r in snapshot["rows"])
    finally:
        out = _stop(process)
    assert "dashboard stopped" in out


def test_dashboard_serves_only_its_own_names_and_origin(tmp_path, lake):
    process, url = _start(tmp_path, "dashboard", "--lake", lake, "--port", _free_port())
    try:
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        rebound = httpx.get(url + "api/symbols", headers={"Host": f"evil.example:{port}"})
        assert rebound.status_code == 421
        local = httpx.get(url + "api/symbols", headers={"Host": f"localhost:{port}"})
        assert local.status_code == 200 and len(local.json()) == 4  # the replay's
        for header in ("content-security-policy", "x-content-type-options", "x-frame-options",
                       "referrer-policy"):  # fmt: skip
            assert header in local.headers and header in rebound.headers
        socket_url = url.replace("http", "ws") + "ws"
        with pytest.raises(InvalidStatus) as refused:
            with connect(socket_url, origin="http://evil.example", open_timeout=30) as ws:
                ws.recv(timeout=10)
        assert refused.value.response.status_code == 403
        with connect(socket_url, origin=url.rstrip("/"), open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "snapshot"
        ready = httpx.get(url + "readyz")
        assert ready.status_code == 200 and str(lake) not in ready.text
        too_far = httpx.get(url + "api/bars", params={"symbol": "AAPL", "start": "9" * 40})
        assert too_far.status_code == 422 and too_far.json()["detail"][0]["loc"][-1] == "start"
    finally:
        _stop(process)


def test_dashboard_beyond_loopback_needs_a_token(tmp_path, lake):
    refused = subprocess.run(
        [sys.executable, "-m", "marketpulse", "dashboard", "--lake", str(lake), "--host",
         "0.0.0.0", "--port", str(_free_port()), "--duration", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")},
    )  # fmt: skip
    assert refused.returncode == 2
    assert "--host 0.0.0.0" in refused.stderr and "token" in refused.stderr
    process, url = _start(
        tmp_path, "dashboard", "--lake", lake, "--host", "0.0.0.0", "--port", _free_port(),
        env={"MARKETPULSE_DASHBOARD_TOKEN": "t0ken"},
    )  # fmt: skip
    try:
        assert url.startswith("http://0.0.0.0:")
        local = url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(local + "api/symbols").status_code == 401
        ok = httpx.get(local + "api/symbols", headers={"Authorization": "Bearer t0ken"})
        assert ok.status_code == 200 and len(ok.json()) == 4
        with pytest.raises(Exception, match="403"):
            with connect(local.replace("http", "ws") + "ws") as ws:
                ws.recv(timeout=10)
        with connect(local.replace("http", "ws") + "ws?token=t0ken") as ws:
            assert '"snapshot"' in ws.recv(timeout=30)
    finally:
        _stop(process)


def test_run_serves_live_metrics_until_stopped(tmp_path):
    process, url = _start(
        tmp_path, "run", "--symbols", "5", "--rate", "1000", "--lake", tmp_path / "lake",
        "--alerts-file", tmp_path / "a.jsonl", "--port", _free_port(), "--dataset", "live-1",
    )  # fmt: skip
    try:

        def ticks():
            text = httpx.get(url + "metrics").text
            found = re.search(r"^marketpulse_ticks_total (\S+)$", text, re.M)
            return found and float(found.group(1)) > 0

        _poll(ticks, "ticks counted in /metrics")
        rows = _poll(lambda: httpx.get(url + "api/watchlist").json(), "live rows")
        assert len(rows) == 5 and all(r["last"] > 0 for r in rows)
        # the live view, and the API by default, are the run's dataset
        assert httpx.get(url + "api/watchlist").headers["MarketPulse-Dataset"] == "live-1"
        listed = httpx.get(url + "api/datasets").json()
        assert listed["default"] == "live-1" and listed["default_is"] == "live"
        with connect(url.replace("http", "ws") + "ws") as ws:
            assert json.loads(ws.recv(timeout=30))["dataset"] == "live-1"
    finally:
        out = _stop(process)
    assert out.strip().splitlines()[-1].startswith("done: ticks in ")
    with pytest.raises(httpx.ConnectError):  # the dashboard stops with the pipeline
        httpx.get(url + "healthz")


def test_run_beyond_loopback_needs_a_token_and_a_busy_port_only_warns(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    base = [
        sys.executable, "-m", "marketpulse", "run", "--symbols", "3", "--rate", "500",
        "--lake", str(tmp_path / "lake"), "--alerts-file", str(tmp_path / "a.jsonl"),
    ]  # fmt: skip
    refused = subprocess.run(
        [*base, "--host", "0.0.0.0", "--duration", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: --host 0.0.0.0: serving beyond this machine requires a token "
        "(--token or MARKETPULSE_DASHBOARD_TOKEN)"
    ]
    assert not (tmp_path / "lake").exists()  # refused before anything ran
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [*base, "--port", str(taken.getsockname()[1]), "--duration", "2"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
    assert busy.returncode == 0, busy.stderr
    assert "running without the dashboard" in busy.stderr
    assert "dashboard:" not in busy.stdout
    assert busy.stdout.strip().splitlines()[-1].startswith("done: ticks in ")


def test_dashboard_follows_the_output_topics_of_a_pipeline_on_kafka(
    tmp_path, kafka_bootstrap, topic_prefix
):
    lake = tmp_path / "lake"
    pipeline, _ = _start(
        tmp_path, "run", "--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix,
        "--symbols", "6", "--rate", "2000", "--intervals", "1s,1m", "--lake", lake,
        "--alerts-file", tmp_path / "a.jsonl", "--port", "0", "--duration", "120",
    )  # fmt: skip
    try:
        process, url = _start(
            tmp_path, "dashboard", "--kafka", kafka_bootstrap, "--topic-prefix", topic_prefix,
            "--lake", lake, "--port", _free_port(), "--interval", "1s",
        )  # fmt: skip
        try:
            # the indicators topic may be read before the bars topic: a row can show an
            # RSI a moment before its price, so the poll waits for every row's price
            rows = _poll(
                lambda: (
                    (r := httpx.get(url + "api/watchlist").json())
                    and len(r) == 6
                    and all(x["last"] is not None for x in r)
                    and r
                ),
                "a row per symbol with its price from the bars topic",
            )
            assert all(r["last"] > 0 and r["volume"] > 0 for r in rows)
            figures = _poll(
                lambda: (
                    (f := httpx.get(url + "api/pipeline").json()["figures"]).get("lag")
                    and f["ticks_in"] > 0
                    and f
                ),
                "lag and a tick count",
            )
            assert {name.split("[")[0] for name in figures["lag"]} == {
                f"{topic_prefix}{t}" for t in ("bars", "indicators", "alerts", "dlq")
            }
            assert figures["bars"] > 0 and figures["undecodable"] == 0
            _poll(
                lambda: any(r["rsi"] is not None for r in httpx.get(url + "api/watchlist").json()),
                "RSI from the indicators topic",
            )
        finally:
            out = _stop(process)
        assert "dashboard stopped" in out
    finally:
        _stop(pipeline)
