"""Dataset names: what the rows of one run or stream are filed under.

Every stored row carries the ``dataset`` its input came from, so that the
simulator, a replayed file and a live vendor never mix in one chart, and one
of them can be dropped. ``--dataset NAME`` names it; without it the name
follows the source: ``simulator``, the vendor's name (``polygon``), or a
file's name without its directory and its format and compression extensions
(``indexProcessed.csv`` → ``indexProcessed``), led by the name of the file's
folder when the file's own name says nothing (``lean-2013-10-07/trades.csv.gz``
→ ``lean-2013-10-07-trades``).
"""

from __future__ import annotations

import re
from pathlib import Path

from marketpulse.exceptions import InputError
from marketpulse.models import is_dataset_name

__all__ = [
    "GENERIC_STEMS",
    "LIVE",
    "check_dataset",
    "feed_dataset",
    "file_dataset",
    "is_dataset_name",
]

#: The dataset of a Kafka ``ticks`` topic processed without a name given.
LIVE = "live"

#: File names that say what a file holds but not which data it is.
GENERIC_STEMS = frozenset({"trades", "quotes", "bars", "data", "minute_bars"})

_MAX = 64
#: Extensions a file's dataset name leaves out (format, then compression).
_EXTENSIONS = frozenset(
    {".csv", ".tsv", ".txt", ".parquet", ".pq", ".gz", ".gzip", ".bz2", ".zst", ".zstd", ".xz"}
)


def check_dataset(name: str, option: str = "--dataset") -> str:
    """Return ``name`` if it is a valid dataset name.

    Raises:
        InputError: it is not (one line naming ``option`` and the rule).
    """
    if not is_dataset_name(name):
        raise InputError(
            f"{option}: {name!r} is not a dataset name (1 to 64 letters, digits, '.', '_' or "
            "'-', beginning with a letter or digit)"
        )
    return name


def file_dataset(path: str | Path) -> str:
    """The default dataset name of a replayed file.

    The file's name without its directory and its format and compression
    extensions; when that is generic (:data:`GENERIC_STEMS`), the name of
    its folder, a hyphen, then the stem. Characters a dataset name cannot
    hold become ``-``; the result is always a valid name.
    """
    path = Path(path)
    stem = path.name
    while Path(stem).suffix.lower() in _EXTENSIONS and Path(stem).stem:
        stem = Path(stem).stem
    if stem.lower() in GENERIC_STEMS:
        parent = path.absolute().parent.name
        if parent:
            stem = f"{parent}-{stem}"
    return _valid(stem)


def _valid(name: str) -> str:
    """``name`` made a valid dataset name: other characters → ``-``, ends trimmed."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    name = re.sub(r"^[^A-Za-z0-9]+", "", name)[:_MAX].rstrip("-.")
    return name or "file"


def feed_dataset(feed: object) -> str:
    """The default dataset of a feed's rows: a file's (:func:`file_dataset`), else its name.

    The simulator's name is ``simulator``, a live vendor feed's its vendor
    (``binance``, ``polygon``, ...); a feed may also carry a ``dataset`` of its own.
    """
    own = getattr(feed, "dataset", None)
    if isinstance(own, str) and own:
        return check_dataset(own, f"{getattr(feed, 'name', 'feed')}: dataset")
    path = getattr(feed, "path", None)
    if isinstance(path, str | Path):
        return file_dataset(path)
    return _valid(str(getattr(feed, "name", "") or "feed"))
