"""Replace every row of some tables of one dataset, one partition at a time, whole.

A backfill recomputes a dataset's bars, indicators and alerts and replaces
all of them. On a local lake the new files are written beside the tables
(``<root>/.replace/<dataset>/``, which no reader lists), then each partition
directory is swapped in with one ``renameat2(RENAME_EXCHANGE)`` (or renamed
into place where the lake had none), and the dataset's partitions the new
rows left empty are renamed out: a reader sees each partition's old rows or
its new ones, never both and never neither, and a row's key lies in one
partition. On S3, which cannot swap, the new objects are written first, then
the old ones deleted. The caller holds the dataset's lock
(:class:`~.lake_lock.DatasetLock`): no other command writes it meanwhile.

Files are named after the input the rows came from when it has an identity
(``part-f<origin>-<first>-<last>``, :mod:`.lake_segments`): a later replay of
that input then replaces them, as it replaces its own.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from marketpulse.sinks.base import InputSegment
from marketpulse.sinks.lake import LakeSink
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_segments import segment_name
from marketpulse.sinks.lake_store import exchange_directories

__all__ = ["InputLines", "replace_dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputLines:
    """The input rows came from: its identity (:func:`~.lake_segments.segment_name`), its lines."""

    origin: str
    first: int
    last: int


def replace_dataset(
    lake: LakeLocation, dataset: str, rows: dict[str, pa.Table], source: InputLines | None
) -> None:
    """Make ``rows`` (by table) the only rows of ``dataset`` in those tables.

    Args:
        lake: the lake.
        dataset: the dataset replaced (``rows`` carry it in their partitions).
        rows: the new rows of each table replaced; an empty table empties it.
        source: the input they came from (``None``: one without an identity,
            whose files get names of their own).
    """
    if lake.is_s3:
        _replace_in_place(lake, dataset, rows, source)
        return
    root = lake.local_path
    staging = root / ".replace" / dataset
    shutil.rmtree(staging, ignore_errors=True)  # a killed backfill's: the lock is ours now
    try:
        _write(LakeLocation.of(staging), rows, source)
        for table in rows:
            _swap_dataset(root, staging, f"{table}/dataset={dataset}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_if_empty(staging.parent, staging.parent)


def _write(lake: LakeLocation, rows: dict[str, pa.Table], source: InputLines | None) -> None:
    sink = LakeSink(lake)
    try:
        segment = InputSegment(source.origin, source.first) if source else None
        for table, data in rows.items():
            if data.num_rows:
                sink.write(table, data, segment)
        if source is not None:
            sink.end_segment(source.origin, source.first, source.last)
        sink.flush()
    finally:
        sink.close()


def _swap_dataset(root: Path, staging: Path, folder: str) -> None:
    """Swap in each new partition of ``folder``; take its old partitions left over out."""
    new, old = _partitions(staging / folder), _partitions(root / folder)
    for partition in new:
        live = root / folder / partition
        if live.exists():
            exchange_directories(staging / folder / partition, live)
        else:
            live.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging / folder / partition, live)
            _fsync(live.parent)
    gone = staging / ".gone" / folder
    for partition in sorted(old - new):
        (gone / partition).parent.mkdir(parents=True, exist_ok=True)
        os.rename(root / folder / partition, gone / partition)  # whole: all its rows or none
        _fsync((root / folder / partition).parent)
    for directory in sorted({(root / folder / p).parent for p in old - new}, reverse=True):
        _remove_if_empty(directory, root / folder)
    logger.debug("lake %s: %s replaced (%d partitions, %d removed)", root, folder, len(new),
                 len(old - new))  # fmt: skip


def _partitions(folder: Path) -> set[str]:
    """The partition directories under ``folder`` that hold files, relative to it."""
    found = set()
    for directory, _, names in os.walk(folder):
        if names and not Path(directory).name.startswith("."):
            found.add(os.path.relpath(directory, folder))
    return found


def _remove_if_empty(directory: Path, top: Path) -> None:
    while directory != top.parent and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def _replace_in_place(
    lake: LakeLocation, dataset: str, rows: dict[str, pa.Table], source: InputLines | None
) -> None:
    """Write the new files into the lake, then delete the dataset's others (S3: no swap)."""
    folders = [f"{table}/dataset={dataset}" for table in rows]
    before = {f for folder in folders for f in lake.files(folder, ".parquet")}
    _write(lake, rows, source)
    kept = segment_name(source.origin, source.first, source.last) if source else None
    for old in before:
        if old.rpartition("/")[2] != kept:  # a file of that name was written over
            lake.delete_file(old)
    for folder in folders:
        lake.delete_empty_directories(folder)


def _fsync(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
