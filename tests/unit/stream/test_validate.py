"""Validation reasons of trades, one per row, in the order the checks apply."""

import math

import pyarrow as pa

from marketpulse.models import TRADE_SCHEMA
from marketpulse.stream.validate import REASONS, check_trades

INF, NAN = math.inf, math.nan


def test_each_bad_trade_gets_its_reason_and_good_ones_none():
    rows = [
        ("AAPL", 1, 10.0, 5.0, ""),
        ("AAPL", 1, NAN, 5.0, "nan"),
        ("AAPL", 1, 10.0, NAN, "nan"),
        ("AAPL", 1, 0.0, 5.0, "price"),
        ("AAPL", 1, -INF, 5.0, "price"),
        ("AAPL", 1, 10.0, -1.0, "size"),
        ("AAPL", 1, 10.0, -INF, "size"),
        ("AAPL", 1, INF, 5.0, "nan"),
        ("AAPL", 1, 10.0, INF, "nan"),
        ("AAPL", 1, 10.0, 0.0, ""),
        ("BAD SYMBOL", 1, NAN, 5.0, "symbol"),
        (None, 1, 10.0, 5.0, "symbol"),
        ("AAPL", None, -1.0, 5.0, "schema"),
    ]
    data = pa.RecordBatch.from_arrays(
        [
            pa.array([r[0] for r in rows], pa.string()).dictionary_encode(),
            pa.array([r[1] for r in rows], pa.int64()),
            pa.array([r[2] for r in rows], pa.float64()),
            pa.array([r[3] for r in rows], pa.float64()),
            pa.nulls(len(rows), pa.string()),
            pa.nulls(len(rows), pa.string()),
        ],
        schema=TRADE_SCHEMA,
    )
    assert [REASONS[c] for c in check_trades(data)] == [r[4] for r in rows]
