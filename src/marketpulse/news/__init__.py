"""News: headlines from vendors or files, scored for sentiment as they arrive, and stored.

- :mod:`~marketpulse.news.sentiment`: the scorer interface (a batch of headlines
  in, a score from -1 to 1 each out), VADER behind it, and a user's own;
- :mod:`~marketpulse.news.files`: headlines from CSV or JSON Lines files;
- :mod:`~marketpulse.news.scoring`: a feed of headlines, scored and deduplicated;
- :mod:`~marketpulse.news.store`: into the sinks' ``news`` table, or the ``news`` topic.

The vendors' news feeds are :func:`marketpulse.feeds.vendors.news.open_news`;
``marketpulse backtest --news`` (:mod:`marketpulse.analytics.news_study`) measures
what prices did after positive, neutral and negative headlines.
"""

from marketpulse.news.files import NewsFile
from marketpulse.news.scoring import ScoredNews
from marketpulse.news.sentiment import Scorer, ScorerError, Vader, classify, load_scorer
from marketpulse.news.store import NewsStats, publish_news, store_news, stored_keys

__all__ = [
    "NewsFile",
    "NewsStats",
    "ScoredNews",
    "Scorer",
    "ScorerError",
    "Vader",
    "classify",
    "load_scorer",
    "publish_news",
    "store_news",
    "stored_keys",
]
