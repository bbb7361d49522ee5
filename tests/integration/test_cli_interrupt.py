"""Ctrl-C stops `marketpulse run` cleanly and flushes everything accepted."""

import os
import re
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from .conftest import marketpulse

pytestmark = pytest.mark.integration


def test_ctrl_c_stops_cleanly_and_flushes(tmp_path):
    lake = tmp_path / "lake"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETPULSE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "marketpulse", "run", "--symbols", "5", "--rate", "2000",
         "--lake", str(lake), "--alerts-file", str(tmp_path / "a.jsonl")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        # wait until the pipeline has written its first files (flushed every 5 s)
        while time.monotonic() < deadline and not list(lake.glob("trades/*/*.parquet")):
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.2)
        flushed = sum(pq.ParquetFile(f).metadata.num_rows for f in lake.glob("trades/*/*.parquet"))
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err  # 128 + SIGINT, after a clean stop
    assert "Traceback" not in err
    summary = out.strip().splitlines()[-1]
    assert summary.startswith("done: ticks in ")
    ticks_in = int(re.search(r"ticks in ([\d,]+), bars", summary).group(1).replace(",", ""))
    result = marketpulse(
        "sql", "SELECT count(*) AS n FROM trades", "--lake", lake, "--format", "csv"
    )
    stored = int(result.stdout.splitlines()[1])
    assert stored == ticks_in > 0  # every accepted tick reached the lake
    assert ticks_in > flushed  # ticks accepted but not yet flushed at Ctrl-C were flushed
