"""Scored news: each headline scored once, stamped with its dataset, each (symbol, id) once."""

import pyarrow as pa

from marketpulse.feeds.base import FeedBatch
from marketpulse.models import NEWS_SCHEMA, DeadLetter
from marketpulse.news.scoring import ScoredNews


class ListFeed:
    name = "test"
    realtime = False

    def __init__(self, batches):
        self._batches = batches
        self.closed = False

    def batches(self):
        yield from self._batches

    def close(self):
        self.closed = True


def _batch(*items, dead=()):
    rows = [dict(id=i, symbol=s, ts=t, headline=h, source=None, url=None, sentiment=None,
                 dataset=None) for i, s, t, h in items]  # fmt: skip
    return FeedBatch("news", pa.RecordBatch.from_pylist(rows, schema=NEWS_SCHEMA), list(dead))


def test_headlines_are_scored_and_an_article_seen_again_is_dropped():
    calls = []

    def scorer(headlines):
        calls.append(list(headlines))
        return [0.5 if "up" in h else -0.5 for h in headlines]

    letter = DeadLetter(reason="parse", error="bad", value=b"x")
    feed = ListFeed([
        _batch(("v:1", "AAPL", 1, "Apple up"), ("v:1", "MSFT", 1, "Apple up"),
               ("v:2", "AAPL", 2, "Apple down")),
        _batch(("v:1", "AAPL", 1, "Apple up"), ("v:3", "AAPL", 3, "Apple up"), dead=[letter]),
        FeedBatch("trade", pa.RecordBatch.from_pylist([], schema=pa.schema([("x", pa.int64())])),
                  [letter]),
    ])  # fmt: skip
    news = ScoredNews(feed, scorer, "lean", seen=[("AAPL", "v:3")])
    out = list(news.batches())
    rows = [r for b in out for r in b.data.to_pylist()]
    assert [(r["id"], r["symbol"], r["sentiment"], r["dataset"]) for r in rows] == [
        ("v:1", "AAPL", 0.5, "lean"), ("v:1", "MSFT", 0.5, "lean"), ("v:2", "AAPL", -0.5, "lean"),
    ]  # fmt: skip
    assert news.duplicates == 2  # v:1 of AAPL again, and v:3 stored before the run
    assert calls == [["Apple up", "Apple down"]]  # one call a batch, each headline once
    assert [len(b.dead) for b in out] == [0, 1, 1]  # dead letters pass, a vendor's other kinds too
    assert all(b.kind == "news" and b.data.schema == NEWS_SCHEMA for b in out)
    news.close()
    assert feed.closed
