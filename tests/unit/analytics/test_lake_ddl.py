"""``external_table_ddl``: Athena/Glue tables matching the lake's layout (see also
tests/integration/test_lake_dialects.py, which parses it and queries real tables)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from marketpulse.analytics import AnalyticsError
from marketpulse.analytics.lake_admin import external_table_ddl, lake_timeframes
from marketpulse.sinks import LakeSink
from marketpulse.sinks.lake_format import LAKE_SCHEMAS
from marketpulse.sinks.lake_store import LocalStore


def _statement(ddl: str, table: str) -> str:
    start = ddl.index(f"CREATE EXTERNAL TABLE IF NOT EXISTS md.{table} (")
    return ddl[start : ddl.index(";", start)]


def test_every_table_then_the_joined_view():
    ddl = external_table_ddl("s3://bucket/lake/", "md", ["1m", "1d"])
    assert ddl.count("CREATE EXTERNAL TABLE") == len(LAKE_SCHEMAS)
    assert ddl.rstrip().endswith("USING (dataset, symbol, timeframe, bar_start);")
    assert "CREATE OR REPLACE VIEW md.bars_with_indicators AS" in ddl
    assert "i.vwap AS session_vwap" in ddl


def test_bars_have_timestamps_and_the_layout_s_partitions():
    bars = _statement(external_table_ddl("s3://bucket/lake/", "md", ["1m", "1d"]), "bars")
    assert "  bar_start timestamp,\n  bar_end timestamp," in bars
    assert "PARTITIONED BY (dataset string, timeframe string, period date)" in bars
    assert "'projection.dataset.type' = 'injected'" in bars
    assert "'projection.timeframe.values' = '1d,1m'" in bars
    assert "LOCATION 's3://bucket/lake/bars/'" in bars
    assert ("'storage.location.template' = "
            "'s3://bucket/lake/bars/dataset=${dataset}/timeframe=${timeframe}/period=${period}/'"
            ) in bars  # fmt: skip
    assert "bigint" not in bars.split("trades bigint")[0]  # only the count of trades


def test_trades_have_no_timeframe_and_exchange_is_escaped():
    trades = _statement(external_table_ddl("s3://bucket/lake", "md"), "trades")
    assert "PARTITIONED BY (dataset string, period date)" in trades
    assert "timeframe" not in trades
    assert "  `exchange` string," in trades and "  ts timestamp," in trades


def test_alert_details_are_a_map():
    alerts = _statement(external_table_ddl("s3://bucket/lake", "md"), "alerts")
    assert "  details map<string,double>\n)" in alerts


@pytest.mark.parametrize(
    ("database", "timeframes", "message"),
    [
        ("my-db", ["1d"], "--database: expected a plain name"),
        ("md", ["1d", "one day"], "not a timeframe: 'one day'"),
    ],
)
def test_names_that_would_need_quoting_are_refused(database, timeframes, message):
    with pytest.raises(AnalyticsError, match=message):
        external_table_ddl("s3://bucket/lake", database, timeframes)


def test_the_lake_s_timeframes_come_from_its_paths(tmp_path, make_rows):
    assert lake_timeframes(LocalStore(tmp_path)) == set()
    rows = make_rows("bars", 4)
    rows = rows.set_column(
        rows.schema.get_field_index("timeframe"), "timeframe", pa.array(["1m", "5m", "1d", "1m"])
    )
    with LakeSink(tmp_path) as sink:
        sink.write("bars", rows)
    assert lake_timeframes(LocalStore(tmp_path)) == {"1m", "5m", "1d"}
