"""What ISO-8601 times would cost on the Kafka wire: msgspec JSON with int64 ns vs timestamps.

The trades are real (the Lean day, ``../shared/data/lean-2013-10-07/trades.csv.gz``).
Each route encodes every trade as a ``ticks`` record and decodes it back, the
way ``produce`` and ``process`` do, once with the time as integer epoch
nanoseconds (the wire format) and once as an RFC 3339 string with nanoseconds
(what a reader-friendly wire would carry; msgspec has no ``datetime`` with
nanoseconds, so the string is formatted and parsed as the processor would
have to). Best of ``--repeat`` runs.

    python bench/bench_wire_times.py [--trades 388417] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


class IntTrade(msgspec.Struct, tag="trade", tag_field="type"):
    symbol: str
    ts: int
    price: float
    size: float


class IsoTrade(msgspec.Struct, tag="trade", tag_field="type"):
    symbol: str
    ts: str
    price: float
    size: float


def load(trades: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Symbols, times (ns), prices and sizes of the first ``trades`` Lean trades."""
    table = pcsv.read_csv(DATA / "lean-2013-10-07" / "trades.csv.gz")
    table = table.slice(0, trades)
    ts = pc.cast(pc.cast(table["timestamp"], pa.timestamp("ns")), pa.int64())
    return (
        table["symbol"].to_pylist(),
        ts.to_numpy(),
        table["price"].to_numpy(),
        table["size"].to_numpy().astype(np.float64),
    )


def iso(ns: np.ndarray) -> list[str]:
    """RFC 3339 strings with nanoseconds, UTC."""
    seconds = ns.astype("datetime64[ns]").astype(str)
    return [s + "Z" for s in seconds]


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=388_417)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    symbols, ns, prices, sizes = load(args.trades)
    n = len(symbols)
    ints = [
        IntTrade(s, int(t), float(p), float(q))
        for s, t, p, q in zip(symbols, ns, prices, sizes, strict=True)
    ]
    texts = iso(ns)
    isos = [
        IsoTrade(s, t, float(p), float(q))
        for s, t, p, q in zip(symbols, texts, prices, sizes, strict=True)
    ]
    encoder = msgspec.json.Encoder()
    int_decoder, iso_decoder = msgspec.json.Decoder(IntTrade), msgspec.json.Decoder(IsoTrade)
    int_wire = [encoder.encode(m) for m in ints]
    iso_wire = [encoder.encode(m) for m in isos]

    def int_route() -> None:
        [encoder.encode(m) for m in ints]
        np.fromiter((m.ts for m in map(int_decoder.decode, int_wire)), np.int64, n)

    def iso_route() -> None:
        # producing: epoch ns to text; consuming: text back to epoch ns for the windows
        [
            encoder.encode(IsoTrade(m.symbol, t, m.price, m.size))
            for m, t in zip(ints, iso(ns), strict=True)
        ]
        stamps = [m.ts[:-1] for m in map(iso_decoder.decode, iso_wire)]
        np.array(stamps, dtype="datetime64[ns]").astype(np.int64)

    int_s, iso_s = best(int_route, args.repeat), best(iso_route, args.repeat)
    result = {
        "trades": n,
        "int_seconds": round(int_s, 4),
        "iso_seconds": round(iso_s, 4),
        "int_per_s": round(n / int_s),
        "iso_per_s": round(n / iso_s),
        "int_bytes": sum(map(len, int_wire)) / n,
        "iso_bytes": sum(map(len, iso_wire)) / n,
        "repeat": args.repeat,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
