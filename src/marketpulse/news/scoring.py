"""Headlines scored as they arrive: a feed of ``news`` batches with sentiment and dataset set.

:class:`ScoredNews` wraps a feed of headlines (a vendor's, a file's): every
batch leaves it with each headline's score from the scorer, the dataset, and
each article about each symbol once. Vendors' polls overlap, and a stream sends
an article again after a reconnect: a (symbol, id) seen before is dropped and
counted (:attr:`ScoredNews.duplicates`). The keys already stored can be given
at the start (:func:`marketpulse.news.store.stored_keys`), so that reading the
same file or period again stores nothing twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator

import pyarrow as pa

from marketpulse.feeds.base import Feed, FeedBatch
from marketpulse.models import NEWS_SCHEMA
from marketpulse.news.sentiment import Scorer, score_headlines

__all__ = ["ScoredNews"]

#: Keys remembered for the dedupe: a few days of a busy watchlist's articles.
_REMEMBERED = 500_000


class ScoredNews:
    """A feed of headlines, scored, stamped with ``dataset``, each (symbol, id) once.

    Args:
        feed: the headlines (batches of kind ``news``; a vendor's other kinds are dropped,
            their dead letters kept).
        scorer: scores a batch of headlines (:mod:`marketpulse.news.sentiment`).
        dataset: the dataset every item belongs to.
        seen: (symbol, id) keys already stored: not passed on again.
        seen_dead: a file's dead letters already stored, as (line, error): not passed on
            again either (a file read twice stores its bad rows once).
    """

    def __init__(self, feed: Feed, scorer: Scorer, dataset: str,
                 seen: Iterable[tuple[str, str]] = (),
                 seen_dead: Iterable[tuple[int, str]] = ()) -> None:  # fmt: skip
        self.feed = feed
        self._seen_dead = set(seen_dead)
        self.name = feed.name
        self.realtime = getattr(feed, "realtime", True)
        self.scorer = scorer
        self.dataset = dataset
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict.fromkeys(seen)
        self.items = 0
        self.duplicates = 0

    def batches(self) -> Iterator[FeedBatch]:
        """Yield each batch of new headlines, scored (dead letters pass as they came)."""
        for batch in self.feed.batches():
            news = batch.kind == "news"
            table = pa.Table.from_batches([batch.data]) if news else NEWS_SCHEMA.empty_table()
            scored = self._score(self._fresh(table))
            self.items += scored.num_rows
            dead = [d for d in batch.dead if (d.line, d.error) not in self._seen_dead]
            self.duplicates += len(batch.dead) - len(dead)
            yield FeedBatch("news", _one_batch(scored), dead, batch.done, batch.total)

    def close(self) -> None:
        """Close the feed."""
        self.feed.close()

    def _fresh(self, data: pa.Table) -> pa.Table:
        """The rows whose (symbol, id) is new; remembers them."""
        if not data.num_rows:
            return data
        keep = []
        for index, key in enumerate(zip(data.column("symbol").to_pylist(),
                                        data.column("id").to_pylist(), strict=True)):  # fmt: skip
            if key in self._seen:
                self.duplicates += 1
                continue
            self._seen[key] = None
            keep.append(index)
        while len(self._seen) > _REMEMBERED:
            self._seen.popitem(last=False)
        return data if len(keep) == data.num_rows else data.take(pa.array(keep, pa.int64()))

    def _score(self, data: pa.Table) -> pa.Table:
        """Set ``sentiment`` (each distinct headline scored once) and ``dataset``."""
        if not data.num_rows:
            return data
        headlines = data.column("headline").to_pylist()
        distinct = list(dict.fromkeys(headlines))
        scores = dict(zip(distinct, score_headlines(self.scorer, distinct), strict=True))
        sentiment = pa.array([scores[h] for h in headlines], pa.float64())
        dataset = pa.array([self.dataset] * data.num_rows, pa.string())
        data = data.set_column(NEWS_SCHEMA.get_field_index("sentiment"), "sentiment", sentiment)
        return data.set_column(NEWS_SCHEMA.get_field_index("dataset"), "dataset", dataset)


def _one_batch(data: pa.Table) -> pa.RecordBatch:
    """The table as one record batch of :data:`NEWS_SCHEMA` (empty when it has no rows)."""
    if not data.num_rows:
        return pa.RecordBatch.from_pylist([], schema=NEWS_SCHEMA)
    return data.cast(NEWS_SCHEMA).combine_chunks().to_batches()[0]
