"""Lake files named by the input lines they came from: a rerun of a replay replaces, never adds.

A file replay cuts its input into segments of consecutive lines, the same
ones on every run of the same input with the same options (the *origin*, 16
hex digits), and names each file after its origin and segment:
``part-f{origin}-{first:012d}-{last:012d}.parquet``. A rerun writes the same
names, so each of its files replaces the earlier run's at once (a rename over
it), whether that run finished or was killed. Files of the origin that a
rerun does not name alike (segments cut elsewhere: a paced or stopped run, a
compaction, dead letters dated by the wall clock) are removed when a file of
the rerun covers some of the same lines, and at the latest when the rerun has
written its last segment (:meth:`EarlierFiles.sweep`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import pyarrow.fs as pafs

from marketpulse.sinks.lake_store import Store

__all__ = ["FILE_NAME", "EarlierFiles", "segment_name"]

logger = logging.getLogger(__name__)

FILE_NAME = re.compile(r"part-f([0-9a-f]{16})-(\d{12,})-(\d{12,})\.parquet")


def segment_name(origin: str, first: int, last: int) -> str:
    """The file name of the rows of input lines ``first``-``last`` of ``origin``."""
    return f"part-f{origin}-{first:012d}-{last:012d}.parquet"


@dataclass(frozen=True, slots=True)
class _File:
    directory: str
    name: str
    first: int
    last: int


class EarlierFiles:
    """The files of one origin that were in the lake before this run, per table.

    Args:
        store: the lake.
        origin: the input's identity.
        tables: the tables to look in.
    """

    def __init__(self, store: Store, origin: str, tables: list[str]) -> None:
        self.store = store
        self.origin = origin
        self._files: dict[str, list[_File]] = {table: [] for table in tables}
        for table in tables:
            selector = pafs.FileSelector(store.path(table), allow_not_found=True, recursive=True)
            prefix = store.path(table) + "/"
            for info in store.filesystem.get_file_info(selector):
                match = FILE_NAME.fullmatch(info.base_name)
                if info.type != pafs.FileType.File or not match or match.group(1) != origin:
                    continue
                directory = f"{table}/{info.path.removeprefix(prefix).rpartition('/')[0]}"
                first, last = int(match.group(2)), int(match.group(3))
                self._files[table].append(_File(directory, info.base_name, first, last))
        found = sum(map(len, self._files.values()))
        if found:
            logger.info("lake: %d files of an earlier replay of input %s", found, origin)

    def replaced(self, table: str, directory: str, name: str, first: int, last: int) -> None:
        """Remove the earlier files of ``table`` whose lines overlap a file just written.

        The file written under the same name in the same directory replaced
        its namesake already; others overlapping lines first-last hold rows the
        new file (or another file of this run) holds again.
        """
        keep = []
        for file in self._files.get(table, []):
            if file.directory == directory and file.name == name:
                continue  # renamed over
            if file.first <= last and first <= file.last:
                logger.info("remove %s/%s: replaced by %s", file.directory, file.name, name)
                self.store.remove(file.directory, file.name)
            else:
                keep.append(file)
        self._files[table] = keep

    def sweep(self) -> int:
        """Remove every earlier file left: the run that ends wrote all of the input again."""
        removed = 0
        for table, files in self._files.items():
            for file in files:
                logger.info("remove %s/%s: not in the rerun of its input", file.directory,
                            file.name)  # fmt: skip
                self.store.remove(file.directory, file.name)
                removed += 1
            self._files[table] = []
        return removed
