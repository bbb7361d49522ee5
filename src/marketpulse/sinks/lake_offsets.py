"""Lake files named by the bus offsets they hold: a replay rewrites, never adds.

A Kafka sink names each file ``part-p{partition:03d}-{first:012d}-{last:012d}.parquet``.
After a crash, or a commit that failed (a broker away), it reads again from the
last committed offset, and its flushes need not end where the first ones did.
Every file that starts at or after a new file's first offset holds offsets read
before that read again: the new file supersedes it, whole, even where it ends
past the new file (those rows come again in the next files). A file with the
very range of an existing one is not written again. So no offset is ever held
by two files.
"""

from __future__ import annotations

import logging
import re

from marketpulse.sinks.lake_store import Store

__all__ = ["SOURCE_NAME", "covered", "remove_superseded"]

logger = logging.getLogger(__name__)

SOURCE_NAME = re.compile(r"part-p(\d{3,})-(\d{12,})-(\d{12,})\.parquet")


def covered(store: Store, directory: str, match: re.Match[str]) -> bool:
    """Return whether a file of ``directory`` already holds exactly the offsets of ``match``.

    One that holds more is not enough: the flushes after it, reading on from
    ``match``'s end, would then write offsets it holds a second time.
    """
    partition, first, last = (int(g) for g in match.groups())
    for other in _source_files(store, directory, partition):
        if other[0] != match.string and other[1] == first and last == other[2]:
            return True
    return False


def remove_superseded(store: Store, directory: str, match: re.Match[str]) -> None:
    """Delete files that start within the offsets of the file just written.

    They are left by a flush that failed (or crashed) before its offsets were
    committed: the read again that wrote ``match`` holds their rows, or holds
    them in its next files (those past ``match``'s end).
    """
    partition, first, last = (int(g) for g in match.groups())
    for name, other_first, other_last in _source_files(store, directory, partition):
        if name == match.string:
            continue
        if first <= other_first <= last:
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
