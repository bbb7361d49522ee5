"""The default alert rules on the simulator: news is caught within seconds, and only news."""

import pytest

from marketpulse.alerts import default_rules
from marketpulse.bus import Batch
from marketpulse.feeds import Simulator
from marketpulse.stream import Processor, ProcessorSettings

S = 10**9
START = 1_381_152_600 * S + 123_456_789  # 2013-10-07 09:30 New York, off the second
MINUTE = 60 * S
WINDOW = 10  # news_move: 10 bars of 1s


def first_minute(seed, seconds=60, **options):
    """The alerts and news items of a minute of `marketpulse run`'s market, on a virtual clock."""
    feed = Simulator(
        realtime=False,
        start_ts=START,
        seed=seed,
        intraday=False,
        max_events=5000 * seconds,
        **options,
    )  # `run`'s defaults: 50 symbols at 5,000 trades/s, flat activity
    processor = Processor(ProcessorSettings(intervals=("1s", "1m", "5m")), default_rules())
    alerts, offset, quotes = [], 0, 0
    for item in feed.batches():
        n = item.data.num_rows
        batch = Batch("ticks", 0, offset, offset + n - 1, item.kind, item.data)
        out = processor.process(batch)
        alerts += out.alerts
        quotes += n if item.kind == "quote" else 0
        offset += n
        if item.kind == "quote":  # the processor builds no bar from quotes
            assert out.bars.num_rows == 0 and not out.alerts and not out.dead
    alerts += processor.finish().alerts
    return feed, alerts, quotes


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_news_moves_raise_alerts_in_the_first_minute_and_nothing_else_does(seed):
    feed, alerts, _ = first_minute(seed)
    news = [(at, feed.tickers[target]) for at, target, _ in feed.news]
    assert len(news) >= 3  # the market of the first minute had news
    moves = [a for a in alerts if a.rule == "news_move"]
    assert moves and min(a.bar_end for a in moves) <= START + MINUTE
    for alert in moves:  # every alert follows a news item of its symbol
        assert alert.timeframe == "1s"
        assert any(
            symbol == alert.symbol and at <= alert.bar_end <= at + (WINDOW + 2) * S
            for at, symbol in news
        ), alert
    last_bar = START + MINUTE - 2 * S
    cooldown = 300 * S  # the rule's: a second news item of a symbol within it is held back
    for at, symbol in news:  # every news item with 10 s of bars before it is caught
        quiet = not any(a.symbol == symbol and at - cooldown < a.bar_end < at for a in moves)
        if START + (WINDOW + 2) * S <= at <= last_bar - 2 * S and quiet:
            assert any(a.symbol == symbol and at <= a.bar_end for a in moves), (at, symbol)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_readmes_half_minute_of_20_symbols_raises_news_alerts(seed):
    # README: `make run ARGS="--duration 30 --symbols 20"`; a market of 20 symbols
    # hears news as often as one of 50, so its first 30 s raise alerts too
    feed, alerts, _ = first_minute(seed, seconds=30, symbols=20)
    assert len(feed.news) >= 2
    moves = [a for a in alerts if a.rule == "news_move"]
    assert moves and max(a.bar_end for a in moves) <= START + 30 * S
    news = {feed.tickers[target] for _, target, _ in feed.news}
    assert {a.symbol for a in moves} <= news


def test_without_news_the_first_minute_raises_no_news_alert():
    # the proof that news is what the rule sees: a market without news is quiet
    _, alerts, _ = first_minute(0, news_every=0)
    assert not [a for a in alerts if a.rule == "news_move"]


def test_quotes_go_through_the_processor_without_changing_its_output():
    feed, alerts, quotes = first_minute(1, quotes=True)
    _, plain, _ = first_minute(1)
    assert quotes == 5000 * 60  # a quote beside each trade
    assert [a.id for a in alerts] == [a.id for a in plain]
