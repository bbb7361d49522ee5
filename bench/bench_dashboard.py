"""Tick-to-screen latency of the dashboard: a trade in, the update received by the page.

The simulator (stamping each trade with the wall clock) feeds the embedded
pipeline; the dashboard serves its watchlist; headless Chromium (Debian's, by
path) opens the page. An init script records, for each row of each WebSocket
update the page receives, the time since the trade that set that row's price.
Rendering after receipt is not included. The figures include the server's
conflation period (--updates-per-s): an update waits up to one period.

Prints a line per setting, then the figures as JSON on the last line (run_all.py
convention). Example:

    .venv/bin/python bench/bench_dashboard.py --symbols 500 --rate 10000 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time

import numpy as np
import pyarrow as pa

from marketpulse.feeds import Simulator
from marketpulse.runtime import Metrics
from marketpulse.runtime.embedded import EmbeddedPipeline, PipelineOptions
from marketpulse.serve import Dashboard, LiveMarket, ServeSettings
from marketpulse.stream import ProcessorSettings

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Wraps the page's WebSocket: each received update row with a trade time gives one sample.
RECORD = """
window.__latencies = [];
const NativeSocket = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const socket = new NativeSocket(url, protocols);
  socket.addEventListener("message", (event) => {
    const now = Date.now();
    const message = JSON.parse(event.data);
    if (message.type !== "update") return;
    for (const row of message.rows) if (row.ts) window.__latencies.push(now - row.ts / 1e6);
  });
  return socket;
};
window.WebSocket.prototype = NativeSocket.prototype;
window.WebSocket.OPEN = NativeSocket.OPEN;
"""


class StampedMarket(LiveMarket):
    """The live market, its rows also carrying the time of the trade that set the price."""

    def __init__(self, interval: str, metrics: Metrics) -> None:
        super().__init__(interval, metrics)
        self._ts: dict[str, int] = {}
        self._ts_lock = threading.Lock()

    def trades(self, data: pa.RecordBatch) -> None:
        super().trades(data)
        column = data.column("symbol")
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        codes = column.indices.to_numpy(zero_copy_only=False)
        ts = data.column("ts").to_numpy(zero_copy_only=False)
        names = column.dictionary.to_pylist()
        last_at = np.full(len(names), -1)
        last_at[codes] = np.arange(len(codes))
        with self._ts_lock:
            for code in np.flatnonzero(last_at >= 0):
                self._ts[names[code]] = int(ts[last_at[code]])

    def watchlist(self) -> list[dict]:
        rows = super().watchlist()
        with self._ts_lock:
            for row in rows:
                row["ts"] = self._ts.get(row["symbol"])
        return rows


def measure(symbols: int, rate: float, seconds: float, updates_per_s: float, chromium: str) -> dict:
    from playwright.sync_api import sync_playwright

    metrics = Metrics()
    market = StampedMarket("1s", metrics)
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as lake:
        feed = Simulator(symbols=symbols, rate=rate, seed=1, realtime=True)
        options = PipelineOptions(lake=lake, processor=ProcessorSettings(intervals=("1s", "1m")))
        pipeline = EmbeddedPipeline(feed, options, metrics, market)
        worker = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
        settings = ServeSettings(port=0, updates_per_s=updates_per_s)
        with Dashboard.for_pipeline(lake, market, settings) as board, sync_playwright() as p:
            worker.start()
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = browser.new_page(
                viewport={"width": 1400, "height": 900},
                bypass_csp=True,  # the harness evaluates its probes as strings; the page is unchanged
            )
            page.add_init_script(RECORD)
            page.goto(board.url)
            page.wait_for_function(
                f"document.querySelectorAll('#watchlist tbody tr').length >= {symbols}",
                timeout=60_000,
            )
            time.sleep(3.0)  # warm up: kernels compiled, page steady
            page.evaluate("window.__latencies = []")
            ticks0, t0 = metrics.snapshot().ticks_in, time.monotonic()
            time.sleep(seconds)
            samples = np.array(page.evaluate("window.__latencies"), dtype=float)
            ticks_per_s = (metrics.snapshot().ticks_in - ticks0) / (time.monotonic() - t0)
            browser.close()
        stop.set()
        worker.join(60)
    return {
        "symbols": symbols,
        "target_ticks_per_s": rate,
        "ticks_per_s": round(ticks_per_s),
        "updates_per_s": updates_per_s,
        "samples": int(samples.size),
        "p50_ms": round(float(np.percentile(samples, 50)), 1),
        "p99_ms": round(float(np.percentile(samples, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--updates-per-s", type=float, nargs="+", default=[4.0, 20.0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    results = []
    for updates in args.updates_per_s:
        result = measure(args.symbols, args.rate, args.seconds, updates, args.chromium)
        results.append(result)
        print(
            f"tick-to-screen, {result['symbols']} symbols at {result['ticks_per_s']:,} ticks/s, "
            f"{updates:g} updates/s per client: p50 {result['p50_ms']} ms, "
            f"p99 {result['p99_ms']} ms ({result['samples']:,} rows received)",
            flush=True,
        )
    print(json.dumps({"dashboard": results}))


if __name__ == "__main__":
    main()
