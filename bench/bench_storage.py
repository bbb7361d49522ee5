"""Storage: PostgreSQL sink rows/s, lake writes to S3 (moto), `marketpulse sql` over a Lean day.

Run: PYTHONPATH=src python bench/bench_storage.py [--rows N]

PostgreSQL is Debian's, started privately (initdb in a temporary directory,
default settings: fsync and synchronous commit on) unless MARKETPULSE_POSTGRES_URL
names a server whose user may create databases. The S3 API is moto's server
on loopback. Prints a human-readable report, then one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_lake import bars  # noqa: E402

from marketpulse.analytics import query  # noqa: E402
from marketpulse.config import S3Settings, Secret  # noqa: E402
from marketpulse.models import INDICATOR_COLUMNS, INDICATOR_SCHEMA  # noqa: E402
from marketpulse.sinks import LakeSink, PostgresSink  # noqa: E402

LEAN = ROOT.parent / "shared" / "data" / "lean-2013-10-07" / "trades.csv.gz"
SQL = ("SELECT symbol, count(*) AS trades, sum(price * size) / sum(size) AS vwap, min(price),"
       " max(price) FROM trades WHERE period = '2013-10-07' GROUP BY symbol ORDER BY symbol")  # fmt: skip


def _servers():
    path = ROOT / "tests" / "integration" / "db_fixtures.py"
    spec = importlib.util.spec_from_file_location("bench_db_servers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def indicators(batch: pa.Table, rng: np.random.Generator) -> pa.Table:
    n = batch.num_rows
    columns = {"symbol": batch["symbol"], "timeframe": batch["timeframe"],
               "bar_start": batch["bar_start"], "bar_end": batch["bar_end"],
               "close": batch["close"]}  # fmt: skip
    for name in INDICATOR_COLUMNS:
        columns[name] = pa.array(rng.random(n) * 100)
    columns["dataset"] = batch["dataset"]
    return pa.table(columns, schema=INDICATOR_SCHEMA)


def postgres(url: str, rows: int, batch: int) -> dict:
    rng = np.random.default_rng(1)
    all_bars = bars(rows, rng)
    all_ind = indicators(all_bars, rng)
    results = {}
    for label in ("insert", "upsert"):  # new keys, then the same keys again
        sink = PostgresSink(url, max_rows=200_000).open()
        started = time.perf_counter()
        for offset in range(0, rows, batch):
            sink.write("bars", all_bars.slice(offset, batch))
            sink.write("indicators", all_ind.slice(offset, batch))
        sink.close()
        seconds = time.perf_counter() - started
        results[label] = {"rows": 2 * rows, "seconds": seconds, "rows_per_s": 2 * rows / seconds}
    return results


def s3_lake(endpoint: str, rows: int) -> dict:
    settings = S3Settings(endpoint=endpoint, region="us-east-1", access_key_id="bench",
                          secret_access_key=Secret("bench"))  # fmt: skip
    pafs.S3FileSystem(endpoint_override=endpoint.split("://")[1], scheme="http",
                      access_key="bench", secret_key="bench", region="us-east-1",
                      allow_bucket_creation=True).create_dir("bench")  # fmt: skip
    table = bars(rows, np.random.default_rng(2))
    started = time.perf_counter()
    with LakeSink("s3://bench/lake", max_rows=rows // 2, s3=settings) as sink:
        for offset in range(0, rows, 10_000):
            sink.write("bars", table.slice(offset, 10_000))
    seconds = time.perf_counter() - started
    stats = sink.stats
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "files": stats.files, "bytes": stats.bytes}  # fmt: skip


def sql_over_lean(workdir: Path) -> dict:
    lake = workdir / "lean-lake"
    subprocess.run([sys.executable, "-m", "marketpulse", "replay", str(LEAN), "--lake", str(lake)],
                   check=True, capture_output=True, cwd=workdir)  # fmt: skip
    command = [sys.executable, "-m", "marketpulse", "sql", SQL, "--lake", str(lake)]
    cli = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=workdir)
        cli.append(time.perf_counter() - started)
    inner = []
    for _ in range(5):
        started = time.perf_counter()
        result = query(lake, SQL)
        inner.append(time.perf_counter() - started)
    trades = sum(result["trades"].to_pylist())
    return {"trades": trades, "cli_s": min(cli), "query_s": min(inner)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="bars (and indicator rows)")
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    servers = _servers()
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as tmp:
        pg_server = None
        admin = os.environ.get("MARKETPULSE_POSTGRES_URL")
        if not admin:
            pg_server = servers.PostgresServer()
            admin = pg_server.url
        s3 = servers.S3Server()
        try:
            pg = postgres(servers.create_database(admin), args.rows, args.batch)
            lake = s3_lake(s3.endpoint, args.rows)
        finally:
            s3.close()
            if pg_server is not None:
                pg_server.close()
        lean = sql_over_lean(Path(tmp))
    for label, r in pg.items():
        print(f"postgres {label}: {r['rows']:,} rows (bars + indicators) in {r['seconds']:.2f} s"
              f" = {r['rows_per_s']:,.0f} rows/s")  # fmt: skip
    print(f"s3 lake: {lake['rows']:,} bars in {lake['seconds']:.2f} s = {lake['rows_per_s']:,.0f}"
          f" rows/s; {lake['files']} objects, {lake['bytes'] / 1e6:.1f} MB")  # fmt: skip
    print(f"marketpulse sql over {lean['trades']:,} Lean trades: {lean['cli_s']:.2f} s command,"
          f" {lean['query_s'] * 1000:.0f} ms query")  # fmt: skip
    load = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    print(f"load average (1 min) at start and end: {load[0]}, {load[1]}")
    print(json.dumps({"postgres": pg, "s3_lake": lake, "sql": lean, "load": load}))


if __name__ == "__main__":
    main()
