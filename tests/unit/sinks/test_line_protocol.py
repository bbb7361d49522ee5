import json
import math
import re

import pyarrow as pa

from marketpulse.models import ALERT_SCHEMA, BAR_QUOTE_COLUMNS, BAR_SCHEMA, STORED_TIME
from marketpulse.sinks.influx import line_protocol


def _bars(**changes):
    columns = {"symbol": ["BRK A"], "timeframe": ["1m"], "bar_start": [60_000_000_000],
               "bar_end": [120_000_000_000], "open": [1.5], "high": [2.0], "low": [1.0],
               "close": [0.1], "volume": [3e-7], "vwap": [None], "trades": [4],
               "dataset": ["lean day"]}  # fmt: skip
    return pa.table(columns | changes, schema=BAR_SCHEMA)


def test_bars_become_points_with_tags_fields_and_time():
    assert line_protocol("bars", _bars()) == [
        r"bars,dataset=lean\ day,symbol=BRK\ A,timeframe=1m open=1.5,high=2.0,low=1.0,close=0.1,"
        "volume=3e-07,trades=4i,bar_end=120000000000i 60000000000"
    ]


def test_stored_timestamps_are_written_as_the_same_nanoseconds():
    bars = _bars(bar_start=[60_000_000_001])
    stored = bars.set_column(2, pa.field("bar_start", STORED_TIME),
                             bars["bar_start"].cast(STORED_TIME))  # fmt: skip
    stored = stored.set_column(3, pa.field("bar_end", pa.timestamp("us", tz="UTC")),
                               pa.array([120_000_000], pa.timestamp("us", tz="UTC")))  # fmt: skip
    assert line_protocol("bars", stored) == line_protocol("bars", bars)
    assert line_protocol("bars", bars)[0].endswith(",bar_end=120000000000i 60000000001")


def test_alert_text_is_quoted_and_escaped_and_details_are_a_json_object():
    details = pa.array([[("rsi_14", 81.5), ("change", math.nan)]],
                       pa.map_(pa.string(), pa.float64()))  # fmt: skip
    alerts = pa.table({"id": ["x1"], "rule": ["rsi,high"], "symbol": ["A"], "timeframe": ["1m"],
                       "bar_start": [5], "bar_end": [9], "severity": ["warn"],
                       "message": ['say "hi" \\ now'], "details": details,
                       "dataset": ["sim"]}, schema=ALERT_SCHEMA)  # fmt: skip
    (line,) = line_protocol("alerts", alerts)
    assert line.startswith(r"alerts,dataset=sim,symbol=A,timeframe=1m,rule=rsi\,high id=")
    assert r'message="say \"hi\" \\ now"' in line
    assert line.endswith(",bar_end=9i 5")
    quoted = re.search(r'details="((?:[^"\\]|\\.)*)"', line).group(1)
    assert json.loads(quoted.replace('\\"', '"')) == {"rsi_14": 81.5, "change": None}


def test_bars_with_quote_columns_add_the_non_null_ones_as_fields():
    bar = {"dataset": ["d"], "symbol": ["A"], "timeframe": ["1s"], "bar_start": [10**18],
           "bar_end": [10**18 + 10**9], "open": [1.0], "high": [1.0], "low": [1.0],
           "close": [1.0], "volume": [2.0], "vwap": [1.0], "trades": [1]}  # fmt: skip
    (plain,) = line_protocol("bars", pa.table(bar))
    values = [0.1, 10.05, 10.0, 10.1, 2.0, None, None]
    pairs = zip(BAR_QUOTE_COLUMNS, values, strict=True)
    quoted = pa.table({**bar, **{n: pa.array([v], pa.float64()) for n, v in pairs}})
    (line,) = line_protocol("bars", quoted)
    head, fields, ts = line.split(" ")
    assert (head, ts) == tuple(plain.split(" ")[::2])
    assert fields == plain.split(" ")[1] + (
        ",spread_twa=0.1,mid_twa=10.05,last_bid=10.0,last_ask=10.1,buy_volume=2.0"
    )  # the null sell_volume and order_flow_imbalance are left out
