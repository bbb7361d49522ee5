import pyarrow as pa

from marketpulse.models import ALERT_SCHEMA, BAR_SCHEMA
from marketpulse.sinks.influx import line_protocol


def test_bars_become_points_with_tags_fields_and_time():
    bars = pa.table({"symbol": ["BRK A"], "interval": ["1m"], "start": [60_000_000_000],
                     "end": [120_000_000_000], "open": [1.5], "high": [2.0], "low": [1.0],
                     "close": [0.1], "volume": [3e-7], "vwap": [None], "trades": [4]},
                    schema=BAR_SCHEMA)  # fmt: skip
    assert line_protocol("bars", bars) == [
        r"bars,symbol=BRK\ A,interval=1m open=1.5,high=2.0,low=1.0,close=0.1,volume=3e-07,"
        "trades=4i,end=120000000000i 60000000000"
    ]


def test_alert_text_is_quoted_and_escaped():
    alerts = pa.table({"id": ["x1"], "rule": ["rsi,high"], "symbol": ["A"], "interval": ["1m"],
                       "ts": [5], "severity": ["warn"], "message": ['say "hi" \\ now'],
                       "values": ['{"rsi": 80}']}, schema=ALERT_SCHEMA)  # fmt: skip
    (line,) = line_protocol("alerts", alerts)
    assert line.startswith(r"alerts,symbol=A,interval=1m,rule=rsi\,high id=")
    assert r'message="say \"hi\" \\ now"' in line
    assert line.endswith(" 5")
