"""Tick-to-screen latency of the dashboard, and the server's CPU per connected browser.

The real-time simulator (each trade stamped with its scheduled wall-clock
time) feeds the embedded pipeline; the dashboard serves its watchlist at
``--updates-per-s`` updates per client; headless Chromium (Debian's, by path)
opens the page. An init script notes, for each row of each WebSocket update
whose trade stamp is new (a trade set the row's price since the last update),
when the frame that shows it was made: a ``requestAnimationFrame`` callback
queued on receipt runs in the same frame as the page's own drawing (queued
after it), and posts a message whose handler runs once that frame's
rendering is done; the latency is that moment minus the trade's stamp. It
includes the simulator's delivery grid (25 ms), the pipeline, the server's
conflation period (an update waits up to one period), the socket, the
page's parsing, drawing, style, layout and paint. Pipeline, server and
browser share the two cores.

Only rows in the viewport count (a row out of view is not on screen; the page
draws those at most once a second); their number is reported apart.

Where the time goes: each row also carries when the live view took its trade
and when the server read it for an update (``StampedMarket``), and the page
notes when it took the message and when its drawing script had run, so each
sample splits into consecutive parts (``PARTS``): ``pipeline`` (stamp -> the
view has the trade: the delivery grid and the pipeline), ``wait`` (-> the
server reads it: the update period), ``send`` (-> the page takes the message:
compose, serialise, send, socket, the page's queue), ``draw`` (-> the page's
``requestAnimationFrame`` drawing has run: parse, the wait for a frame, the
script) and ``render`` (-> the frame is done: style, layout, paint). Each
part's p50 and p99 are reported (``parts``). All marks are wall-clock times
of one machine (Python's ``time.time_ns``, the page's ``Date.now``, 1 ms).
The recorder runs on the page's thread too: it parses each message once more
(under 1 ms) and finds the rows in view by bisection.

Server CPU: the CPU time of this process (pipeline and server; the browsers
are processes of their own) per second of wall time, over ``--cpu-seconds``
with 0, 1, ... (``--browsers``) pages connected; the cost of a connected
browser is the least-squares slope over the counts from 1 on (the first page
also starts the updates, composed once for every page: the step from 0 to 1).

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
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.serve import Dashboard, LiveMarket, ServeSettings
from marketpulse.stream import ProcessorSettings

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

# Wraps the page's WebSocket: each received row with a new trade stamp gives one sample,
# taken once the frame that draws the update is done (rAF queued after the page's, then a
# message: its handler runs after that frame's rendering).
RECORD = """
window.__samples = [];
window.__offscreen = 0;
window.__seen = new Map();
const NativeSocket = window.WebSocket;
const channel = new MessageChannel();
const waiting = [];
// The rows in view are a run of the body's rows: found by bisection, not a rect per sample
// (this runs on the page's thread too; a rect per sample cost it ~3 ms per update).
const rowsSeen = new MutationObserver(() => { rowAt = null; });
let body = null, rowAt = null, trs = [];  // rowAt: symbol -> index in trs
function firstRow(test) {
  let lo = 0, hi = trs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (test(trs[mid].getBoundingClientRect())) hi = mid; else lo = mid + 1;
  }
  return lo;
}
channel.port1.onmessage = () => {
  const done = Date.now();
  const now = document.querySelector("#watchlist tbody");
  if (now !== body) {
    body = now;
    rowAt = null;
    rowsSeen.disconnect();
    if (body) rowsSeen.observe(body, { childList: true });
  }
  if (!rowAt) {
    trs = body ? [...body.rows] : [];
    rowAt = new Map(trs.map((tr, i) => [tr.getAttribute("data-symbol"), i]));
  }
  const top = firstRow((box) => box.bottom > 0);
  const end = firstRow((box) => box.top >= window.innerHeight);
  for (const sample of waiting.splice(0)) {
    const i = rowAt.get(sample[0]);
    if (i !== undefined && i >= top && i < end) {
      sample[0] = done;
      window.__samples.push(sample);
    } else {
      window.__offscreen += 1;
    }
  }
};
window.WebSocket = function (url, protocols) {
  const socket = new NativeSocket(url, protocols);
  socket.addEventListener("message", (event) => {
    const received = Date.now();
    const message = JSON.parse(event.data);
    if (message.type !== "update") return;
    const fresh = [];
    for (const row of message.rows) {
      if (row.ts && window.__seen.get(row.symbol) !== row.ts) {
        window.__seen.set(row.symbol, row.ts);
        fresh.push([row.symbol, row.ts / 1e6, row.seen / 1e6, row.read / 1e6, received]);
      }
    }
    if (!fresh.length) return;
    setTimeout(() => requestAnimationFrame(() => {
      const drawn = Date.now();
      for (const sample of fresh) sample.push(drawn);
      waiting.push(...fresh);
      channel.port2.postMessage(0);
    }), 0);
  });
  return socket;
};
window.WebSocket.prototype = NativeSocket.prototype;
window.WebSocket.OPEN = NativeSocket.OPEN;
"""


class StampedMarket(LiveMarket):
    """The live market, its rows also carrying when the trade that set the price was made.

    Each row carries ``ts`` (the trade's stamp), ``seen`` (when this view took the trade:
    after the feed's delivery and the pipeline) and ``read`` (when the server first read
    the row with that trade for an update), all in ns since the epoch. They change only
    when ``ts`` does, so the rows the server sends are those it would send anyway.
    """

    def __init__(self, interval: str, metrics: Metrics) -> None:
        super().__init__(interval, metrics)
        self._ts: dict[str, tuple[int, int]] = {}  # symbol -> (ts, seen)
        self._read: dict[str, tuple[int, int]] = {}  # symbol -> (ts, read)
        self._ts_lock = threading.Lock()  # a row's price and its stamps change together

    def trades(self, data: pa.RecordBatch) -> None:
        column = data.column("symbol")
        if not pa.types.is_dictionary(column.type):
            column = column.dictionary_encode()
        codes = column.indices.to_numpy(zero_copy_only=False)
        ts = data.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)
        names = column.dictionary.to_pylist()
        last_at = np.full(len(names), -1)
        last_at[codes] = np.arange(len(codes))
        with self._ts_lock:
            super().trades(data)
            seen = time.time_ns()
            for code in np.flatnonzero(last_at >= 0):
                self._ts[names[code]] = (int(ts[last_at[code]]), seen)

    def watchlist(self) -> list[dict]:
        with self._ts_lock:
            rows = super().watchlist()
            read = time.time_ns()
            for row in rows:
                stamps = self._ts.get(row["symbol"])
                if stamps is None:
                    row["ts"] = None
                    continue
                ts, seen = stamps
                first = self._read.get(row["symbol"])
                if first is None or first[0] != ts:
                    first = self._read[row["symbol"]] = (ts, read)
                row["ts"], row["seen"], row["read"] = ts, seen, first[1]
        return rows


# A sample's times (ms since the epoch), as the page notes them.
_DONE, _TS, _SEEN, _READ, _RECEIVED, _DRAWN = range(6)

#: The parts of the latency: name -> (from, to), consecutive, from the stamp to the frame.
PARTS = {
    "pipeline": (_TS, _SEEN),  # the feed's delivery grid and the pipeline, to the live view
    "wait": (_SEEN, _READ),  # until the server reads the view for an update (its period)
    "send": (_READ, _RECEIVED),  # compose, serialise, send, socket, the page's event queue
    "draw": (_RECEIVED, _DRAWN),  # parse, wait for a frame, the page's drawing script
    "render": (_DRAWN, _DONE),  # that frame's style, layout and paint
}


def _parts(stamps: np.ndarray) -> dict[str, dict[str, float]]:
    """Each part's p50 and p99 (ms) over the samples."""
    parts = {}
    for name, (start, end) in PARTS.items():
        spans = stamps[:, end] - stamps[:, start]
        p50, p99 = np.percentile(spans, [50, 99]) if spans.size else [np.nan] * 2
        parts[name] = {"p50_ms": round(float(p50), 1), "p99_ms": round(float(p99), 1)}
    return parts


def _cpu_rate(seconds: float) -> float:
    """CPU seconds this process uses per wall second, over ``seconds``."""
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall)


def measure(args: argparse.Namespace, updates_per_s: float) -> dict:
    """One pipeline and dashboard: the latency with one page, then CPU against pages."""
    from playwright.sync_api import sync_playwright

    symbols = args.symbols
    metrics = Metrics()
    market = StampedMarket("1s", metrics)
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as lake:
        feed = Simulator(symbols=symbols, rate=args.rate, seed=1, realtime=True)
        options = RunnerOptions(lake=lake, processor=ProcessorSettings(intervals=("1s", "1m")))
        pipeline = EmbeddedPipeline(feed, options, metrics, market)
        worker = threading.Thread(target=pipeline.run, args=(stop,), daemon=True)
        settings = ServeSettings(port=0, updates_per_s=updates_per_s)
        with Dashboard.for_pipeline(lake, market, settings) as board, sync_playwright() as p:
            worker.start()
            browser = p.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)

            def open_page():
                context = browser.new_context(
                    viewport={"width": 1400, "height": 900}, bypass_csp=True
                )
                page = context.new_page()
                page.add_init_script(RECORD)
                page.goto(board.url)
                page.wait_for_function(
                    f"document.querySelectorAll('#watchlist tbody tr').length >= {symbols}",
                    timeout=60_000,
                )
                return page

            time.sleep(args.settle)  # kernels loaded, the pipeline steady
            cpu = {0: _cpu_rate(args.cpu_seconds)}
            page = open_page()
            time.sleep(args.settle)  # the page steady
            page.evaluate("window.__samples = []; window.__offscreen = 0")
            ticks0, t0 = metrics.snapshot().ticks_in, time.monotonic()
            time.sleep(args.seconds)
            stamps = np.array(page.evaluate("window.__samples"), dtype=float).reshape(-1, 6)
            offscreen = int(page.evaluate("window.__offscreen"))
            ticks_per_s = (metrics.snapshot().ticks_in - ticks0) / (time.monotonic() - t0)
            pages = [page]
            for count in sorted(set(args.browsers) - {0}):
                while len(pages) < count:
                    pages.append(open_page())
                time.sleep(args.settle)
                cpu[count] = _cpu_rate(args.cpu_seconds)
            browser.close()
        stop.set()
        worker.join(60)
    counts = np.array(sorted(c for c in cpu if c > 0), float)
    rates = np.array([cpu[int(c)] for c in counts])
    # the first page also starts the updates (read once for every page): apart from the slope
    slope = float(np.polyfit(counts, rates, 1)[0]) if len(counts) > 1 else float("nan")
    samples = stamps[:, _DONE] - stamps[:, _TS]
    p50, p90, p99 = np.percentile(samples, [50, 90, 99]) if samples.size else [np.nan] * 3
    return {
        "symbols": symbols,
        "target_ticks_per_s": args.rate,
        "ticks_per_s": round(ticks_per_s),
        "updates_per_s": updates_per_s,
        "samples": int(samples.size),
        "p50_ms": round(float(p50), 1),
        "p90_ms": round(float(p90), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(samples.max()), 1) if samples.size else float("nan"),
        "cpu_per_s": {str(c): round(r, 3) for c, r in sorted(cpu.items())},
        "cpu_per_browser": round(slope, 4),
        "offscreen_rows": offscreen,
        "parts": _parts(stamps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--rate", type=float, default=10_000.0)
    parser.add_argument("--seconds", type=float, default=20.0, help="latency window")
    parser.add_argument("--updates-per-s", type=float, nargs="+", default=[20.0])
    parser.add_argument("--browsers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--cpu-seconds", type=float, default=8.0, help="CPU window per count")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    results = []
    for updates in args.updates_per_s:
        result = measure(args, updates)
        results.append(result)
        print(
            f"tick-to-screen, {result['symbols']} symbols at {result['ticks_per_s']:,} ticks/s, "
            f"{updates:g} updates/s per client: p50 {result['p50_ms']} ms, "
            f"p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms "
            f"({result['samples']:,} rows drawn in view, {result['offscreen_rows']:,} out of "
            f"view); parts p50/p99 ms: "
            + ", ".join(f"{k} {v['p50_ms']}/{v['p99_ms']}" for k, v in result["parts"].items())
            + "; server CPU s/s by pages "
            f"{result['cpu_per_s']}, per browser {result['cpu_per_browser']:.3f}",
            flush=True,
        )
    print(json.dumps({"dashboard": results}))


if __name__ == "__main__":
    main()
