"""End to end: the default alert rules fire on a first run and on a daily replay; quotes."""

import pytest

from .conftest import KAGGLE

pytestmark = pytest.mark.integration


@pytest.mark.timeout(240)
@pytest.mark.parametrize(
    ("symbols", "duration"),
    [
        (50, 60),  # `make run`: `marketpulse run` with the defaults, its first minute
        (20, 30),  # the README's `make run ARGS="--duration 30 --symbols 20"`
    ],
)
def test_the_first_minute_of_make_run_raises_alerts(cli, sql, tmp_path, symbols, duration):
    lake = tmp_path / "lake"
    given = [] if symbols == 50 else ["--symbols", symbols]  # the default: 50 at 5,000 trades/s
    result = cli("run", "--duration", duration, *given, "--no-dashboard", "--lake", lake)
    assert result.stdout.strip().splitlines()[-1].startswith("done: ")
    rows = sql(
        lake,
        "SELECT rule, symbol, timeframe, dataset, "
        "(SELECT min(bar_start) FROM bars) AS first_bar, bar_end FROM alerts",
    )
    assert rows, "no alert in the first minute"
    assert {r["dataset"] for r in rows} == {"simulator"}
    assert {(r["rule"], r["timeframe"]) for r in rows} >= {("news_move", "1s")}
    trades = sql(
        lake,
        "SELECT count(*) AS n, count(DISTINCT symbol) AS symbols, "
        "epoch_ns(max(ts)) - epoch_ns(min(ts)) AS span_ns FROM trades",
    )[0]
    assert trades["symbols"] == symbols
    # the announced rate, in the trades' own times (a busy machine delivers late, not fewer)
    assert trades["n"] / (trades["span_ns"] / 1e9) == pytest.approx(5000, rel=0.03)
    assert trades["span_ns"] > duration / 2 * 1e9  # the run traded for most of its time
    # quotes beside the trades, stored in their own table: each trade printed at the bid
    # or the ask in force at its time, never a crossed book
    book = sql(
        lake,
        "SELECT count(*) AS n, "
        "count(*) FILTER (WHERE EXISTS (SELECT 1 FROM quotes q WHERE q.dataset = t.dataset "
        "AND q.symbol = t.symbol AND q.ts = t.ts AND t.price IN (q.bid, q.ask))) AS at_touch, "
        "(SELECT count(*) FROM quotes WHERE bid >= ask) AS crossed, "
        "(SELECT count(*) FROM quotes WHERE dataset <> 'simulator') AS elsewhere "
        "FROM trades t",
    )[0]
    assert book["n"] == trades["n"]
    assert book["at_touch"] == book["n"] and book["crossed"] == 0 and book["elsewhere"] == 0


@pytest.mark.timeout(240)
def test_a_daily_replay_raises_daily_alerts(cli, sql, tmp_path):
    lines = KAGGLE.read_text().splitlines()
    header, nya = lines[0], [line for line in lines[1:] if line.startswith("NYA,")]
    assert len(nya) > 6000
    part = tmp_path / "nya.csv"  # 24 years of the NYSE composite, 1966-1989 (October 1987 included)
    part.write_text("\n".join([header, *nya[:6000]]) + "\n")
    lake = tmp_path / "lake"
    cli("replay", part, "--lake", lake)
    rows = sql(lake, "SELECT rule, symbol, timeframe, count(*) AS n FROM alerts GROUP BY ALL")
    fired = {(r["rule"], r["timeframe"]): r["n"] for r in rows}
    assert {r["symbol"] for r in rows} == {"NYA"}
    assert {"daily_move", "rsi_overbought", "rsi_oversold"} <= {rule for rule, _ in fired}
    assert {tf for _, tf in fired} == {"1d"}
    # a daily move of 3 % or more, as the file's closes say (its first day has none before it)
    closes = [float(line.split(",")[5]) for line in nya[:6000]]
    moves = sum(abs(b / a - 1) >= 0.03 for a, b in zip(closes, closes[1:], strict=False))
    assert fired[("daily_move", "1d")] == moves
