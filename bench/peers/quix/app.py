"""The Quix Streams peer of bench/bench_peers.py: 1-minute bars and EMA/MACD/RSI per symbol.

Runs in its own virtual environment (bench/peers/.venvs/quix, from
requirements.txt beside this file), written the way Quix Streams' documentation
shows: a JSON topic with an event-time timestamp extractor, a tumbling window
of one minute with no grace period, aggregated with ``Earliest``/``Max``/``Min``/
``Latest``/``Sum`` and emitted when it closes (``.final()``), then a stateful
per-key step for the indicators, and the bars produced to an output topic.
Every other setting is Quix's default (commit interval 5 s, RocksDB state with
changelog topics).

A window closes when a message of the same symbol stamped at or after its end
arrives (grace 0), so each symbol's last window is never emitted: the
benchmark leaves those out of the comparison for every engine.

Prints a JSON line ``{"ready": T}`` once the application is built and
``{"done": T}`` when it has stopped (``T``: ``time.time()``); it stops after
``--idle`` seconds without a new message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta

from quixstreams import Application
from quixstreams.dataframe.windows import Earliest, Latest, Max, Min, Sum


def ema(previous: float | None, value: float, span: int) -> float:
    """The exponential moving average of ``span`` periods after ``value`` (seeded with it)."""
    if previous is None:
        return value
    alpha = 2.0 / (span + 1)
    return previous + alpha * (value - previous)


def indicators(bar: dict, state) -> dict:
    """EMA 12, MACD 12/26/9 and RSI 14 (Wilder) on the bar's close; state kept per symbol."""
    close = bar["close"]
    s = state.get("ind", None) or {}
    ema12, ema26 = ema(s.get("ema12"), close, 12), ema(s.get("ema26"), close, 26)
    macd = ema12 - ema26
    signal = ema(s.get("signal"), macd, 9)
    gain, loss, rsi = s.get("gain", 0.0), s.get("loss", 0.0), None
    if "close" in s:
        change = close - s["close"]
        up, down = max(change, 0.0), max(-change, 0.0)
        n = s.get("n", 0) + 1
        if n <= 14:  # the first averages are the plain means of 14 changes
            gain, loss = gain + up / 14, loss + down / 14
        else:
            gain, loss = (gain * 13 + up) / 14, (loss * 13 + down) / 14
        if n >= 14:
            rsi = 100.0 if loss == 0 else 100.0 - 100.0 / (1.0 + gain / loss)
        s["n"] = n
    state.set("ind", {**s, "ema12": ema12, "ema26": ema26, "signal": signal, "close": close,
                      "gain": gain, "loss": loss})  # fmt: skip
    return {**bar, "ema12": ema12, "macd": macd, "macd_signal": signal, "rsi14": rsi}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True, help="the preloaded ticks topic")
    parser.add_argument("--output", required=True, help="the topic the bars go to")
    parser.add_argument("--group", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--guarantee", choices=("at-least-once", "exactly-once"), required=True)
    parser.add_argument("--idle", type=float, default=2.0, help="stop after this idle time")
    args = parser.parse_args()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    ticks = app.topic(
        args.topic,
        value_deserializer="json",
        # event time: the trade's own stamp (epoch ns), in milliseconds
        timestamp_extractor=lambda value, headers, timestamp, kind: value["ts"] // 1_000_000,
    )
    bars_topic = app.topic(args.output, value_serializer="json")
    sdf = app.dataframe(ticks)
    sdf = (
        sdf.tumbling_window(timedelta(minutes=1), grace_ms=0)
        .agg(
            open=Earliest("price"),
            high=Max("price"),
            low=Min("price"),
            close=Latest("price"),
            volume=Sum("size"),
        )
        .final()
    )
    sdf = sdf.apply(indicators, stateful=True)
    sdf.to_topic(bars_topic)
    print(json.dumps({"ready": time.time()}), flush=True)
    app.run(timeout=args.idle, collect=False)
    print(json.dumps({"done": time.time()}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
