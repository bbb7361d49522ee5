"""End to end: the simulator's quotes give bars their quote columns in the lake and SQL.

The reference is DuckDB's own ASOF JOIN of the lake's trades to its quotes
(the last quote at or before each trade, per symbol), classified by the
quote rule of Lee and Ready (1991, J. Finance 46(2)): the simulator prints
every trade at the bid or the ask in force, never at the mid.
"""

import pytest

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
