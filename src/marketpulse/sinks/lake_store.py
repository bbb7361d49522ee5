"""Where lake files live: a local directory or an S3-compatible bucket.

Both stores give the lake the same commit rule, a file appears whole or not
at all, by their own means:

- local: written under a hidden temporary name (``.<name>.<pid>.tmp``, which
  no ``*.parquet`` glob matches), fsynced, renamed into place, the directory
  fsynced;
- S3: uploaded under its final key in one PUT (an object becomes visible only
  once complete; multipart uploads only at their completion).

A writer killed mid-write leaves its hidden files behind; the next writer
(:class:`~.lake.LakeSink`) and ``lake compact`` delete those whose process is
gone (:meth:`Store.remove_stale_temporaries`).

Paths inside a store are relative to the lake's root, with ``/`` separators:
``bars/dataset=lean/timeframe=1m/period=2013-10-07/part-....parquet``.

:func:`open_store` is where every reader and writer opens a lake, so it is
where a lake of an earlier layout (``<table>/date=YYYY-MM-DD/``, integer
times) is recognised: :class:`OldLayoutError` says how to convert it.
"""

from __future__ import annotations

import ctypes
import io
import itertools
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from marketpulse.config import S3Settings
from marketpulse.sinks.exceptions import SinkError
from marketpulse.sinks.lake_location import LakeLocation, LakeLocationError

__all__ = [
    "TEMPORARY_NAME",
    "exchange_directories",
    "LocalStore",
    "OldLayoutError",
    "OpenFile",
    "S3Store",
    "Staged",
    "Store",
    "open_store",
]

logger = logging.getLogger(__name__)

#: The hidden files of a writer, named after its process: ``.part-<pid>-<n>.tmp``
#: (a file written row group by row group) and ``.<name>.<pid>.tmp`` (a staged file).
TEMPORARY_NAME = re.compile(r"\.(?:part-(\d+)-\d+|.+\.(\d+))\.tmp")

#: ``renameat2``'s flag that swaps two paths, and its "relative to the working directory".
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
#: Up to this many files per commit are fsynced one by one; beyond, one os.sync().
_SYNC_EACH_UP_TO = 16
_open_files = itertools.count()


#: The partition directories of the layout before datasets (``date=YYYY-MM-DD``).
OLD_PARTITION = re.compile(r"date=\d{4}-\d{2}-\d{2}")
#: The tables of that layout.
OLD_TABLES = ("trades", "bars", "indicators", "alerts", "dlq")


class OldLayoutError(SinkError):
    """The lake was written in the layout of an earlier MarketPulse."""

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"lake {uri} uses the layout of an earlier MarketPulse; convert it with: "
            f"marketpulse lake migrate --lake {uri}"
        )


@dataclass(slots=True)
class Staged:
    """A file written but not yet visible: its place, size and pending content."""

    directory: str
    name: str
    size: int
    pending: Path | bytes


class OpenFile:
    """A Parquet file being written, one row group per :meth:`write`, where no reader sees it.

    Args:
        directory: the file's directory in the store.
        where: the hidden temporary path (local) or an in-memory buffer (S3).
        schema: the file's columns.
        compression: the Parquet codec.
        statistics: the columns whose min/max each row group records.
    """

    def __init__(
        self,
        directory: str,
        where: Path | io.BytesIO,
        schema: pa.Schema,
        compression: str,
        statistics: list[str],
    ) -> None:
        self.directory = directory
        self._where = where
        self._writer = pq.ParquetWriter(
            where, schema, compression=compression, use_dictionary=_dictionary_columns(schema),
            write_statistics=statistics,
        )  # fmt: skip
        self.rows = 0

    def write(self, rows: pa.Table) -> None:
        """Append ``rows`` as one row group."""
        self._writer.write_table(rows, row_group_size=max(rows.num_rows, 1))
        self.rows += rows.num_rows
        if isinstance(self._where, Path):
            _start_writeback(self._where)

    def close(self, name: str) -> Staged:
        """Finish the file (its footer); it is to be published as ``name``."""
        self._writer.close()
        if isinstance(self._where, Path):
            return Staged(self.directory, name, self._where.stat().st_size, self._where)
        data = self._where.getvalue()
        return Staged(self.directory, name, len(data), data)

    def discard(self) -> None:
        """Drop the file and whatever it holds."""
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the file goes anyway; the first error was raised
            pass
        if isinstance(self._where, Path):
            self._where.unlink(missing_ok=True)


def _start_writeback(path: Path) -> None:
    """Have the kernel start writing ``path``'s data to disk now, without waiting for it.

    A flush makes its files durable before it publishes them; data written out
    as its row groups came is then mostly on disk already (a replay's final
    ``sync`` took 28 ms, 3 ms so). Linux starts the writeback of a file's dirty
    pages on ``POSIX_FADV_DONTNEED``, as PostgreSQL's ``pg_flush_data`` relies on
    where it has no ``sync_file_range``. Advice only: where it does nothing or
    fails, the flush's own fsync or sync does all the work, as before.
    """
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


class Store:
    """Files of a lake: stage, make durable, publish, list, remove."""

    #: Where the lake is, with the settings that reach it.
    location: LakeLocation
    #: The lake's root as users name it (a directory, or ``s3://bucket/prefix``).
    uri: str
    #: The pyarrow filesystem and the root's path in it, for readers.
    filesystem: pafs.FileSystem
    base: str

    def ensure_dir(self, directory: str) -> None:
        """Make ``directory`` exist (a no-op where directories are implicit)."""

    def stage(self, directory: str, name: str, rows: pa.Table, compression: str) -> Staged:
        """Write ``rows`` as Parquet, not yet visible under ``name``."""
        raise NotImplementedError

    def open_file(
        self, directory: str, schema: pa.Schema, compression: str, statistics: list[str]
    ) -> OpenFile:
        """Start a Parquet file in ``directory`` that no reader sees until published."""
        return OpenFile(directory, io.BytesIO(), schema, compression, statistics)

    def make_durable(self, staged: list[Staged]) -> None:
        """Make staged files survive a crash (before they are published)."""

    def publish(self, staged: Staged) -> None:
        """Make a staged file visible under its name, whole."""
        raise NotImplementedError

    def finish(self, staged: list[Staged]) -> None:
        """Make the publications durable."""

    def remove_stale_temporaries(self) -> int:
        """Delete hidden files that writers no longer running left behind; return how many.

        Only local lakes have them (an S3 file is one PUT).
        """
        return 0

    def names(self, directory: str) -> list[str]:
        """The file names in ``directory`` (none if it does not exist)."""
        selector = pafs.FileSelector(self.path(directory), allow_not_found=True)
        return [info.base_name for info in self.filesystem.get_file_info(selector)
                if info.type == pafs.FileType.File]  # fmt: skip

    def directories(self, directory: str) -> list[str]:
        """The subdirectory names of ``directory``."""
        selector = pafs.FileSelector(self.path(directory), allow_not_found=True)
        return [info.base_name for info in self.filesystem.get_file_info(selector)
                if info.type == pafs.FileType.Directory]  # fmt: skip

    def old_partitions(self, table: str) -> list[str]:
        """The ``date=YYYY-MM-DD`` directories of ``table`` (the layout before datasets)."""
        return sorted(n for n in self.directories(table) if OLD_PARTITION.fullmatch(n))

    def is_old_layout(self) -> bool:
        """Return whether some table still has partitions of the layout before datasets."""
        return any(self.old_partitions(table) for table in OLD_TABLES)

    def sizes(self, directory: str) -> dict[str, int]:
        """File name → size in bytes, for the ``*.parquet`` files of ``directory``."""
        selector = pafs.FileSelector(self.path(directory), allow_not_found=True)
        infos = self.filesystem.get_file_info(selector)
        files = [i for i in infos if i.type == pafs.FileType.File]
        return {i.base_name: int(i.size or 0) for i in files if i.base_name.endswith(".parquet")}

    def remove(self, directory: str, name: str) -> None:
        """Delete a file; a missing one is fine."""
        try:
            self.filesystem.delete_file(self.path(f"{directory}/{name}"))
        except FileNotFoundError:
            pass

    def path(self, relative: str) -> str:
        """The path of ``relative`` in :attr:`filesystem`."""
        return f"{self.base}/{relative}".rstrip("/") if relative else self.base


class LocalStore(Store):
    """A lake in a local directory."""

    def __init__(self, root: str | Path | LakeLocation) -> None:
        self.location = LakeLocation.of(root)
        self.root = self.location.local_path
        self.uri = self.location.root
        self.filesystem = self.location.filesystem
        self.base = self.location.base
        self._dirs: set[str] = set()
        self._new_dirs: set[Path] = set()

    def ensure_dir(self, directory: str) -> None:
        """Create ``directory``; remember new ones, whose parents need an fsync."""
        if directory in self._dirs:
            return
        path = self.root / directory
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
            self._new_dirs.add(path.parent)
        self._dirs.add(directory)

    def stage(self, directory: str, name: str, rows: pa.Table, compression: str) -> Staged:
        """Write a hidden temporary file beside the final name."""
        tmp = self._tmp(directory, name)
        try:
            _write_parquet(rows, tmp, compression)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return Staged(directory, name, tmp.stat().st_size, tmp)

    def make_durable(self, staged: list[Staged]) -> None:
        """Fsync the temporary files (one ``sync`` for many: daily data touches thousands)."""
        if len(staged) > _SYNC_EACH_UP_TO:
            os.sync()
        else:
            for file in staged:
                assert isinstance(file.pending, Path)
                _fsync(file.pending)

    def publish(self, staged: Staged) -> None:
        """Rename the temporary file to its name."""
        assert isinstance(staged.pending, Path)
        os.replace(staged.pending, self.root / staged.directory / staged.name)

    def finish(self, staged: list[Staged]) -> None:
        """Fsync the directories that got new entries."""
        if len(staged) > _SYNC_EACH_UP_TO:
            os.sync()
        else:
            for directory in {self.root / s.directory for s in staged} | self._new_dirs:
                _fsync(directory)
        self._new_dirs.clear()

    def open_file(
        self, directory: str, schema: pa.Schema, compression: str, statistics: list[str]
    ) -> OpenFile:
        """Start a hidden temporary file in ``directory``."""
        tmp = self.root / directory / f".part-{os.getpid()}-{next(_open_files)}.tmp"
        try:
            return OpenFile(directory, tmp, schema, compression, statistics)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def directories(self, directory: str) -> list[str]:
        """The subdirectory names of ``directory`` (none if it does not exist)."""
        return [p.name for p in _subdirectories(self.root / directory)]

    def remove_stale_temporaries(self) -> int:
        """Delete the hidden ``*.tmp`` files in the tables' partitions whose writer is gone.

        A temporary file names its writer's process; one that no longer
        exists (killed mid-write) will never publish it. Files of a live
        process, this one included, are left alone.
        """
        removed = 0
        for table in _subdirectories(self.root):
            for partition, _, names in os.walk(table):
                if partition == str(table) or "/." in partition.removeprefix(str(self.root)):
                    continue
                for name in names:
                    entry = os.path.join(partition, name)
                    match = TEMPORARY_NAME.fullmatch(name)
                    if match and not _alive(int(match.group(1) or match.group(2))):
                        Path(entry).unlink(missing_ok=True)
                        logger.info("removed %s: its writer (pid %s) is gone", entry,
                                    match.group(1) or match.group(2))  # fmt: skip
                        removed += 1
        return removed

    def _tmp(self, directory: str, name: str) -> Path:
        return self.root / directory / f".{name}.{os.getpid()}.tmp"

    def names(self, directory: str) -> list[str]:
        """The entries of ``directory`` (faster than pyarrow's listing for big directories)."""
        try:
            return [entry.name for entry in os.scandir(self.root / directory) if entry.is_file()]
        except FileNotFoundError:
            return []


class S3Store(Store):
    """A lake under ``s3://bucket/prefix`` of an S3-compatible object store.

    Args:
        uri: ``s3://bucket/prefix``, or its location.
        settings: endpoint, region and credentials (of a ``uri`` given as text);
            empty ones are left to the AWS SDK's own lookup (``AWS_*``
            variables, ``~/.aws``).

    Raises:
        LakeLocationError: ``uri`` is not ``s3://bucket/prefix``.
    """

    def __init__(self, uri: str | LakeLocation, settings: S3Settings | None = None) -> None:
        self.location = LakeLocation.of(uri, settings)
        if not self.location.is_s3:
            raise LakeLocationError(f"lake {self.location}: expected s3://bucket/prefix")
        self.uri = self.location.root
        self.base = self.location.base
        self.filesystem = self.location.filesystem

    def stage(self, directory: str, name: str, rows: pa.Table, compression: str) -> Staged:
        """Encode the file in memory."""
        buffer = io.BytesIO()
        _write_parquet(rows, buffer, compression)
        data = buffer.getvalue()
        return Staged(directory, name, len(data), data)

    def publish(self, staged: Staged) -> None:
        """Upload under the final key: the object appears whole once the PUT completes."""
        assert isinstance(staged.pending, bytes)
        key = f"{staged.directory}/{staged.name}"
        try:
            with self.filesystem.open_output_stream(self.path(key)) as out:
                out.write(staged.pending)
        except OSError as exc:
            raise SinkError(f"lake {self.uri}: cannot write {key}: {exc}") from exc


def open_store(
    root: str | Path | LakeLocation, s3: S3Settings | None = None, *, old_layout: bool = False
) -> Store:
    """The store of a lake: S3 for ``s3://...``, else a local directory.

    Args:
        root: the lake's location, or its root directory or ``s3://bucket/prefix``.
        s3: endpoint and credentials of an S3 lake given as text.
        old_layout: open a lake of the layout before datasets too (to convert it).

    Raises:
        LakeLocationError: ``root`` is neither a directory nor ``s3://bucket/prefix``.
        OldLayoutError: the lake has partitions of the earlier layout (unless ``old_layout``).
    """
    location = LakeLocation.of(root, s3)
    store = S3Store(location) if location.is_s3 else LocalStore(location)
    if not old_layout and store.is_old_layout():
        raise OldLayoutError(store.uri)
    return store


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    # dictionary pages for the repetitive text columns only: numbers rarely repeat
    return [f.name for f in schema if pa.types.is_string(f.type)]


def _write_parquet(rows: pa.Table, where: Path | io.BytesIO, compression: str) -> None:
    pq.write_table(
        rows, where, compression=compression, use_dictionary=_dictionary_columns(rows.schema)
    )


def _subdirectories(path: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(path) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    """Return whether process ``pid`` exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    except OverflowError:
        return False
    return True


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def exchange_directories(a: Path, b: Path) -> None:
    """Swap two directories in one atomic step (``renameat2(RENAME_EXCHANGE)``), durably.

    A reader listing ``b`` sees either its old files or ``a``'s, never both,
    never neither (Linux, glibc 2.28 or later).

    Raises:
        SinkError: the system cannot swap paths, or refused this swap.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        raise SinkError("swapping lake partitions needs renameat2 (Linux, glibc 2.28 or later)")
    code = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if code != 0:
        raise SinkError(f"cannot swap {b} with its new copy: {os.strerror(ctypes.get_errno())}")
    _fsync(b.parent)
