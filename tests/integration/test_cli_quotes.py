"""End to end: the simulator's quotes give bars their quote columns in the lake and SQL.

The reference is DuckDB's own ASOF JOIN of the lake's trades to its quotes
(the last quote at or before each trade, per symbol), classified by the
quote rule of Lee and Ready (1991, J. Finance 46(2)): the simulator prints
every trade at the bid or the ask in force, never at the mid.
"""

import pyarrow.parquet as pq
import pytest

from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.serve.lake_data import LakeData

pytestmark = pytest.mark.integration


REFERENCE = """
WITH joined AS (
    SELECT t.dataset, t.symbol, t.ts, t.size, t.price, q.bid, q.ask
    FROM trades t ASOF JOIN quotes q
      ON t.dataset = q.dataset AND t.symbol = q.symbol AND t.ts >= q.ts
), per_bar AS (
    SELECT symbol, time_bucket(INTERVAL 1 second, ts) AS bar_start, count(*) AS n,
           sum(size) FILTER (WHERE price > (bid + ask) / 2) AS buy,
           sum(size) FILTER (WHERE price < (bid + ask) / 2) AS sell
    FROM joined GROUP BY ALL
)
SELECT b.symbol, b.bar_start, b.trades, r.n, b.buy_volume, r.buy, b.sell_volume, r.sell,
       b.order_flow_imbalance, b.spread_twa, b.mid_twa, b.last_bid, b.last_ask
FROM bars b JOIN per_bar r ON b.symbol = r.symbol AND b.bar_start = r.bar_start
WHERE b.timeframe = '1s'
"""


@pytest.mark.timeout(240)
def test_run_with_the_simulator_stores_quote_columns_that_sql_shows(cli, sql, tmp_path):
    lake = tmp_path / "lake"
    result = cli("run", "--duration", 8, "--no-dashboard", "--lake", lake, "--symbols", 4,
                 "--rate", 200)  # fmt: skip
    assert result.stdout.strip().splitlines()[-1].startswith("done: ")
    rows = sql(lake, REFERENCE)
    complete = [r for r in rows if r["trades"] == r["n"]]  # no trade of the bar came late
    assert len(complete) >= 4, rows
    for r in complete:
        assert r["buy_volume"] == pytest.approx(r["buy"] or 0.0, rel=1e-12)
        assert r["sell_volume"] == pytest.approx(r["sell"] or 0.0, rel=1e-12)
        total = r["buy_volume"] + r["sell_volume"]
        assert total > 0
        ofi = (r["buy_volume"] - r["sell_volume"]) / total
        assert r["order_flow_imbalance"] == pytest.approx(ofi, rel=1e-12, abs=1e-15)
        assert 0 < r["spread_twa"] < 0.01 * r["mid_twa"]
        assert r["last_bid"] < r["last_ask"]
    # the text output of `marketpulse sql` names the columns
    shown = cli("sql", "SELECT spread_twa, mid_twa, last_bid, last_ask, buy_volume, sell_volume, "
                "order_flow_imbalance FROM bars LIMIT 1", "--lake", lake).stdout  # fmt: skip
    assert "order_flow_imbalance" in shown and "spread_twa" in shown
    # a bad use: a quote column misspelt is one line naming it, no traceback
    bad = cli("sql", "SELECT order_flow FROM bars", "--lake", lake, ok=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr + bad.stdout
    (line,) = [x for x in bad.stderr.splitlines() if x.startswith("error:")]
    assert "order_flow" in line


def test_a_trades_only_replay_keeps_its_bars_and_null_quote_columns(cli, sql, tmp_path):
    trades = tmp_path / "t.csv"
    trades.write_text("symbol,ts,price,size\nAAA,2024-01-02T15:00:00Z,10,5\n"
                      "AAA,2024-01-02T15:00:01.5Z,11,5\n")  # fmt: skip
    lake = tmp_path / "lake"
    cli("replay", trades, "--lake", lake)
    rows = sql(lake, "SELECT trades, spread_twa, buy_volume, order_flow_imbalance FROM bars "
                     "WHERE timeframe = '1s' ORDER BY bar_start")  # fmt: skip
    assert [r["trades"] for r in rows] == [1, 1]
    assert all(r["spread_twa"] is None and r["buy_volume"] is None for r in rows)
    # a lake written before quotes: its bars files lack the columns; queries still work
    for path in (lake / "bars").rglob("*.parquet"):
        table = pq.read_table(path)
        assert "spread_twa" in table.column_names
        pq.write_table(table.drop_columns(list(BAR_QUOTE_COLUMNS)), path)
    again = sql(lake, "SELECT trades, spread_twa, order_flow_imbalance FROM bars "
                      "WHERE timeframe = '1s' ORDER BY bar_start")  # fmt: skip
    assert again == [{"trades": 1, "spread_twa": None, "order_flow_imbalance": None}] * 2
    api = LakeData(lake).bars("t", "AAA", "1s", None, None, 10)
    assert [r["trades"] for r in api] == [1, 1]
    assert all(r["spread_twa"] is None and r["last_bid"] is None for r in api)


QUOTED_TRADES = """symbol,ts,price,size,bid,ask,bid_size
XYZ,2024-01-02T15:00:00.100Z,10.10,100,10.00,10.10,5
XYZ,2024-01-02T15:00:00.500Z,10.10,200,10.00,10.20,5
XYZ,2024-01-02T15:00:00.600Z,10.05,300,10.00,10.20,
XYZ,2024-01-02T15:00:00.800Z,10.15,50,n/a,,
XYZ,2024-01-02T15:00:01.100Z,10.20,10,10.10,10.20,1
"""


def test_replay_of_trades_with_bid_and_ask_columns(cli, sql, tmp_path):
    """Worked by hand (Lee and Ready 1991, J. Finance 46(2)), 1 s bar at 15:00:00.

    Quotes: 10.00/10.10 from .1 s (no weight before it), 10.00/10.20 from .5 s
    (and again at .6 s); row .8 s has no usable quote (its trade stays). Spread
    (0.4 x 0.10 + 0.5 x 0.20) / 0.9; mid (0.4 x 10.05 + 0.5 x 10.10) / 0.9.
    Trades: 10.10 > mid 10.05: buy 100; 10.10 at the mid 10.10, no price change
    yet: unclassified; 10.05 < 10.10: sell 300; 10.15 > 10.10: buy 50.
    """
    (tmp_path / "xyz.csv").write_text(QUOTED_TRADES)
    cli("replay", "xyz.csv", "--lake", "lake")
    rows = sql(tmp_path / "lake", "SELECT bar_start, trades, spread_twa, mid_twa, last_bid, "
               "last_ask, buy_volume, sell_volume, order_flow_imbalance FROM bars "
               "WHERE timeframe = '1s' ORDER BY bar_start")  # fmt: skip
    first, second = rows
    assert first["trades"] == 4  # the row without a quote is still a trade
    assert first["spread_twa"] == pytest.approx((0.4 * 0.10 + 0.5 * 0.20) / 0.9, rel=1e-9)
    assert first["mid_twa"] == pytest.approx((0.4 * 10.05 + 0.5 * 10.10) / 0.9, rel=1e-12)
    assert (first["last_bid"], first["last_ask"]) == (10.0, 10.2)
    assert (first["buy_volume"], first["sell_volume"]) == (150.0, 300.0)
    assert first["order_flow_imbalance"] == pytest.approx(-1 / 3, rel=1e-12)
    assert (second["buy_volume"], second["sell_volume"], second["order_flow_imbalance"]) == (
        10.0, 0.0, 1.0,
    )  # fmt: skip
    quotes = sql(tmp_path / "lake", "SELECT bid, bid_size, ask, ask_size FROM quotes ORDER BY ts")
    assert [q["bid"] for q in quotes] == [10.0, 10.0, 10.0, 10.1]  # the .8 s row has none
    assert [q["bid_size"] for q in quotes] == [5.0, 5.0, None, 1.0]
    assert all(q["ask_size"] is None for q in quotes)
    # the REST API's bar rows carry the columns
    api = LakeData(tmp_path / "lake").bars("xyz", "XYZ", "1s", None, None, 10)
    assert [r["buy_volume"] for r in api] == [150.0, 10.0]
    assert api[0]["spread_twa"] == pytest.approx(first["spread_twa"], rel=1e-12)
