"""Lake files named by the bus offsets they hold: a replay rewrites, never adds.

A Kafka sink names each file ``part-p{partition:03d}-{first:012d}-{last:012d}.parquet``.
After a crash it reads the same offsets again: a file whose range an existing
file covers is not written, and a file written supersedes those within its range.
"""

from __future__ import annotations

import logging
import re

from marketpulse.sinks.lake_store import Store

__all__ = ["SOURCE_NAME", "covered", "remove_superseded"]

logger = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"part-p(\d{3,})-(\d{12,})-(\d{12,})\.parquet")


def covered(store: Store, directory: str, match: re.Match[str]) -> bool:
    """Return whether a file of ``directory`` already holds the offsets of ``match``."""
    partition, first, last = (int(g) for g in match.groups())
    for other in _source_files(store, directory, partition):
        if other[0] != match.string and other[1] <= first and last <= other[2]:
            return True
    return False


def remove_superseded(store: Store, directory: str, match: re.Match[str]) -> None:
    """Delete files whose offsets lie within the file just written.

    They are left by a flush that failed (or crashed) before its offsets were
    committed; the replay that wrote ``match`` holds their rows.
    """
    partition, first, last = (int(g) for g in match.groups())
    for name, other_first, other_last in _source_files(store, directory, partition):
        if name == match.string:
            continue
        if first <= other_first and other_last <= last:
            logger.info("remove %s/%s: superseded by %s", directory, name, match.string)
            store.remove(directory, name)
        elif other_first <= last and first <= other_last:
            logger.warning(
                "%s/%s overlaps %s: rows of offsets %d-%d may be duplicated",
                directory,
                name,
                match.string,
                max(first, other_first),
                min(last, other_last),
            )


def _source_files(store: Store, directory: str, partition: int) -> list[tuple[str, int, int]]:
    found = []
    for name in store.names(directory):
        m = SOURCE_NAME.fullmatch(name)
        if m and int(m.group(1)) == partition:
            found.append((name, int(m.group(2)), int(m.group(3))))
    return found
