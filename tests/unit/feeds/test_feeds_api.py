import marketpulse.feeds as feeds
from marketpulse.feeds import FileReplay, Simulator, detect_format, open_feed


def test_exports():
    assert set(feeds.__all__) == {
        "Feed",
        "FeedBatch",
        "FileReplay",
        "Simulator",
        "detect_format",
        "open_feed",
    }


def test_open_feed(lean_trades, kaggle_bars):
    assert isinstance(open_feed("simulator", realtime=False), Simulator)
    feed = open_feed(str(kaggle_bars), symbol="HSI")
    assert isinstance(feed, FileReplay) and feed.kind == "bar"
    assert detect_format(lean_trades) == "trades"
    assert detect_format(kaggle_bars) == "bars"
