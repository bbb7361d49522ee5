"""The Parquet lake: one directory per table, Hive-partitioned by dataset, timeframe and period.

Layout (:mod:`.lake_layout` says why)::

    <root>/<bars|indicators|alerts>/dataset=<name>/timeframe=<tf>/period=YYYY-MM-DD/<file>.parquet
    <root>/<trades|quotes|dlq>/dataset=<name>/period=YYYY-MM-DD/<file>.parquet

``period`` is the UTC day of the row's event time
(:data:`~marketpulse.sinks.base.TIME_COLUMNS`), or the first day of its decade
for ``1d`` and longer timeframes. Partition values live only in the path:
files hold the table's other columns (:data:`.lake_format.LAKE_SCHEMAS`), with event
times as UTC timestamps (``timestamp[ns, UTC]``: the in-flight int64
nanoseconds, cast without a copy), and readers such as DuckDB add
``dataset``, ``timeframe`` and ``period`` from the path. Rows with a null
event time go to the period of the wall-clock time when written.

Files are written under a hidden temporary name (``.part-<pid>-<n>.tmp``,
which no ``*.parquet`` glob matches), one row group at a time as rows arrive,
then fsynced and renamed into place at a flush, so a reader never sees a
partial file; on S3 (``s3://bucket/prefix``) each file is one PUT
of its final key, which is visible only once complete (:mod:`.lake_store`).
Names are deterministic when the caller gives the bus offsets of the rows
(``part-p{partition:03d}-{first:012d}-{last:012d}.parquet``), so a replay after
a crash rewrites the same file instead of adding one; likewise for the segment
of a replayed input file the rows came from
(``part-f{origin}-{first:012d}-{last:012d}.parquet``, :mod:`.lake_segments`).
A new sink deletes the hidden files of writers that were killed.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from marketpulse.config import S3Settings
from marketpulse.models import BAR_QUOTE_COLUMNS
from marketpulse.sinks.base import (
    TABLES,
    InputSegment,
    Sink,
    SinkStats,
    SourceRange,
)
from marketpulse.sinks.lake_format import (
    PARQUET_COMPRESSION,
    PARQUET_COMPRESSIONS,
    SORT_KEYS,
    STATISTICS,
)
from marketpulse.sinks.lake_layout import PERIOD, ROW_SCHEMAS, indicator_row_schema, split
from marketpulse.sinks.lake_location import LakeLocation
from marketpulse.sinks.lake_offsets import SOURCE_NAME, covered, remove_superseded
from marketpulse.sinks.lake_segments import EarlierFiles, segment_name
from marketpulse.sinks.lake_space import full_disk_error
from marketpulse.sinks.lake_store import OpenFile, Staged, open_store

__all__ = ["PERIOD", "SOURCE_NAME", "LakeSink"]

logger = logging.getLogger(__name__)

_POOL = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="lake")

_instances = itertools.count()


#: Rows of a buffer written out as a row group once this many wait: a flush
#: then has little left to write (row groups of 32k to 1M rows cost the same to
#: write, and DuckDB reads them in parallel).
ROW_GROUP_ROWS = 65_536
#: Files a sink keeps open for rows written ahead, at most.
MAX_OPEN_FILES = 64


#: What a buffer holds rows of: a bus partition (``None``: none given), or an input segment.
_Key = int | InputSegment | None


@dataclass(slots=True)
class _Buffer:
    """Rows of one table (and one source partition) waiting for a flush.

    ``chunks[:written]`` are in ``files`` already, as row groups of unpublished
    files; every chunk stays until the flush publishes, so that a failed flush
    can start its files again.
    """

    since: float
    chunks: list[pa.Table] = field(default_factory=list)
    rows: int = 0
    first_offset: int | None = None
    last_offset: int | None = None
    names: dict[str, str] = field(default_factory=dict)  # by directory, kept across failed flushes
    written: int = 0
    unwritten_rows: int = 0
    files: dict[str, OpenFile] = field(default_factory=dict)  # by directory
    ahead: bool = True  # False: too many partitions to keep files open, all wait for the flush


@dataclass(slots=True)
class _Flush:
    """One buffer's part of a flush (:meth:`LakeSink._flush_buffers`)."""

    table: str
    partition: _Key
    buf: _Buffer
    last_line: int  # an input segment's last line (0: not a segment)
    directories: list[str]
    parts: dict[str, pa.Table]  # the last rows, by directory
    files: dict[str, OpenFile]  # the files written ahead, by directory
    involved: list[OpenFile] = field(default_factory=list)  # every file to drop on failure
    staged: list[Staged] = field(default_factory=list)


class LakeSink(Sink):
    """Write output tables as Parquet files of a Hive-partitioned lake.

    Rows are buffered per table and per source partition, and published as
    one file per partition when a buffer holds ``max_rows`` rows, when its oldest
    row has waited ``max_age_s`` seconds (:meth:`due` tells; the runner then calls
    :meth:`flush`), and on :meth:`flush` and :meth:`close`. Meanwhile every ``row_group_rows``
    buffered rows are written to the hidden files as a row group, so that a
    flush (the end of a run above all) has little left to do. Files are
    zstd-compressed.

    Pass ``source`` to :meth:`write` only when bus offsets are stable across
    runs (Kafka): a rewrite of the same offsets replaces the earlier file. Rows
    written with an :class:`~.base.InputSegment` wait for
    :meth:`end_segment`, not for size or age, and their files replace those
    of an earlier replay of the same input (:mod:`.lake_segments`).

    Args:
        root: the lake's location, or its root directory (created if missing)
            or ``s3://bucket/prefix``.
        max_rows: buffered rows of one table that trigger a flush.
        max_age_s: age of the oldest buffered row that triggers a flush.
        row_group_rows: buffered rows written ahead of a flush as one row group.
        compression: Parquet codec of the files (zstd by default: small and fast).
        clock: monotonic clock in seconds, replaceable in tests.
        s3: endpoint and credentials when ``root`` is ``s3://bucket/prefix`` text
            (a :class:`~marketpulse.sinks.lake_location.LakeLocation` carries its own).
    """

    name = "lake"

    def __init__(
        self,
        root: str | Path | LakeLocation,
        max_rows: int = 1_000_000,
        max_age_s: float = 5.0,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        compression: str = PARQUET_COMPRESSION,
        clock: Callable[[], float] = time.monotonic,
        s3: S3Settings | None = None,
    ) -> None:
        if max_rows < 1 or max_age_s < 0:
            raise ValueError("max_rows must be >= 1 and max_age_s >= 0")
        if compression not in PARQUET_COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(PARQUET_COMPRESSIONS)}")
        self.compression = compression
        self.store = open_store(root, s3)
        self.location = self.store.location
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.row_group_rows = max(1, row_group_rows)
        self._open_files = 0
        self._clock = clock
        self._buffers: dict[tuple[str, _Key], _Buffer] = {}
        self._earlier: dict[str, EarlierFiles] = {}
        if self.store.remove_stale_temporaries():
            logger.info("lake %s: removed hidden files of writers that were killed", self.location)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self._run_id = f"{stamp}-{os.getpid()}-{next(_instances)}"
        self._seq = itertools.count(1)
        self._rows = dict.fromkeys(TABLES, 0)
        self._files = self._bytes = self._flushes = 0
        self._stored_nbytes = 0  # in memory, of the rows stored: how files compare to it
        self._closed = False

    def write(
        self,
        table: str,
        data: pa.Table | pa.RecordBatch,
        source: SourceRange | InputSegment | None = None,
    ) -> None:
        """Buffer rows of one table; flush its buffer if it reaches ``max_rows``.

        Rows of an input segment wait for :meth:`end_segment` instead.
        """
        if self._closed:
            raise ValueError("write to a closed LakeSink")
        rows = _conform(table, data)
        if rows.num_rows == 0:
            return
        segment = isinstance(source, InputSegment)
        if isinstance(source, InputSegment):
            key: tuple[str, _Key] = (table, source)
            if source.origin not in self._earlier:
                self._earlier[source.origin] = EarlierFiles(self.store, source.origin, list(TABLES))
        else:
            key = (table, source.partition if source else None)
        buf = self._buffers.get(key)
        if buf is None:
            buf = self._buffers[key] = _Buffer(since=self._clock())
        buf.chunks.append(rows)
        buf.rows += rows.num_rows
        buf.unwritten_rows += rows.num_rows
        if isinstance(source, SourceRange):
            first, last = source.first_offset, source.last_offset
            buf.first_offset = first if buf.first_offset is None else min(buf.first_offset, first)
            buf.last_offset = last if buf.last_offset is None else max(buf.last_offset, last)
        if buf.rows >= self.max_rows and not segment:
            self._flush_buffers([key])
        elif buf.ahead and buf.unwritten_rows >= self.row_group_rows:
            try:
                self._write_ahead(table, buf)
            except BaseException as exc:
                self._start_over(buf)
                self._raise_if_full(exc)
                raise

    def due(self, now: float | None = None) -> bool:
        """Return whether a buffer is full or older than ``max_age_s``."""
        return bool(self._due_keys(now))

    def flush(self) -> None:
        """Write every buffered row to the lake, but those of input segments not yet ended."""
        keys = [key for key in self._buffers if not isinstance(key[1], InputSegment)]
        if keys:
            self._flush_buffers(keys)

    def end_segment(self, origin: str, first: int, last: int) -> None:
        """Write the rows of input lines ``first``-``last`` of ``origin``, one file per partition.

        Each file replaces the file of the same name that an earlier replay of
        the same input wrote, and the earlier files of its table that hold
        some of the same lines.
        """
        segment = InputSegment(origin, first)
        keys = [k for k in self._buffers if k[1] == segment]
        if keys:
            self._flush_buffers(keys, last)

    def end_source(self, origin: str) -> None:
        """Remove what earlier replays of ``origin`` left that this one did not write again."""
        earlier = self._earlier.get(origin) or EarlierFiles(self.store, origin, list(TABLES))
        if any(isinstance(k[1], InputSegment) and k[1].origin == origin for k in self._buffers):
            raise ValueError(f"input {origin}: a segment was not ended")
        removed = earlier.sweep()
        if removed:
            logger.info("lake: removed %d files of an earlier replay of input %s", removed, origin)

    def close(self) -> None:
        """Flush, segments not ended too (named after their first line); later writes raise."""
        if not self._closed:
            self.flush()
            for segment in dict.fromkeys(key[1] for key in self._buffers):
                assert isinstance(segment, InputSegment)
                self._flush_buffers([k for k in self._buffers if k[1] == segment])
            self._closed = True

    @property
    def stats(self) -> SinkStats:
        """Rows, files and bytes written so far, and rows still buffered."""
        buffered = dict.fromkeys(TABLES, 0)
        for (table, _), buf in self._buffers.items():
            buffered[table] += buf.rows
        return SinkStats(dict(self._rows), buffered, self._files, self._bytes, self._flushes)

    def _due_keys(self, now: float | None) -> list[tuple[str, _Key]]:
        now = self._clock() if now is None else now
        return [
            key
            for key, buf in self._buffers.items()
            if not isinstance(key[1], InputSegment)
            and (buf.rows >= self.max_rows or now - buf.since >= self.max_age_s)
        ]

    def _start_over(self, buf: _Buffer) -> None:
        """Drop a buffer's unpublished files: its next flush writes every chunk again."""
        for file in buf.files.values():
            file.discard()
        self._open_files -= len(buf.files)
        buf.files.clear()
        buf.written = 0
        buf.unwritten_rows = buf.rows
        buf.ahead = True

    def _raise_if_full(self, exc: BaseException) -> None:
        """Raise :class:`StorageFullError` in place of ``exc`` when the disk is full."""
        root = self.location.root if self.location.is_s3 else self.location.local_path
        size = sum(c.nbytes for buf in self._buffers.values() for c in buf.chunks)
        ratio = self._bytes / self._stored_nbytes if self._stored_nbytes else None
        full = full_disk_error(exc, root, size, ratio)
        if full is not None:
            raise full from exc

    def _rows_by_partition(self, table: str, buf: _Buffer) -> list[tuple[str, pa.Table]]:
        """The buffer's unwritten rows, in file order, by partition directory."""
        rows = pa.concat_tables(buf.chunks[buf.written :], promote_options="default")
        return split(table, rows, SORT_KEYS[table])

    def _write_ahead(self, table: str, buf: _Buffer) -> None:
        """Write the buffer's unwritten chunks as a row group of each partition's file.

        Files written ahead stay open until the flush; rows spanning more
        partitions than :data:`MAX_OPEN_FILES` allows wait for the flush
        instead, which writes each file whole.
        """
        parts = self._rows_by_partition(table, buf)
        new = [directory for directory, _ in parts if directory not in buf.files]
        if self._open_files + len(new) > MAX_OPEN_FILES:
            buf.ahead = False
            return
        schemas = {directory: rows.schema for directory, rows in parts}
        for directory in new:
            buf.files[directory] = self._open(table, directory, schemas[directory])
            self._open_files += 1
        _each(lambda job: buf.files[job[0]].write(job[1]), parts)
        buf.written = len(buf.chunks)
        buf.unwritten_rows = 0

    def _flush_buffers(self, keys: list[tuple[str, _Key]], last_line: int | None = None) -> None:
        """Write and publish the buffers of ``keys`` together: all of their files, or none.

        Every file of every buffer is finished in the pool's threads, then all
        are made durable at once (one ``sync`` when many), published, and
        their directories made durable. An input segment's files are named
        after its lines, up to ``last_line`` (default: its first).
        """
        store = self.store
        flushes: list[_Flush] = []
        try:
            for key in keys:
                flushes.append(self._flush_of(key, last_line))
            jobs = [(flush, directory) for flush in flushes for directory in flush.directories]
            finished = _each(lambda job: self._finish(*job), jobs)
            for (flush, _), file in zip(jobs, finished, strict=True):
                if file is not None:
                    flush.staged.append(file)
            staged = [file for flush in flushes for file in flush.staged]
            store.make_durable(staged)
        except BaseException as exc:
            for flush in flushes:
                for file in flush.involved:
                    file.discard()
                self._start_over(flush.buf)
            if len(flushes) < len(keys):  # its own files are still the buffer's
                self._start_over(self._buffers[keys[len(flushes)]])
            self._raise_if_full(exc)
            raise
        for flush in flushes:
            for file in flush.staged:
                self._publish(file)
                if isinstance(flush.partition, InputSegment):
                    self._earlier[flush.partition.origin].replaced(
                        flush.table, file.directory, file.name, flush.partition.first,
                        flush.last_line,
                    )  # fmt: skip
        store.finish(staged)
        # Dropped only once every file is in place: after a failure the rows stay
        # buffered, and a retry rewrites the same names instead of adding files.
        for key, flush in zip(keys, flushes, strict=True):
            del self._buffers[key]
            self._rows[flush.table] += flush.buf.rows
            self._stored_nbytes += sum(chunk.nbytes for chunk in flush.buf.chunks)
            self._flushes += 1

    def _flush_of(self, key: tuple[str, _Key], last_line: int | None) -> _Flush:
        """What flushing one buffer writes: its last rows by directory, its open files, names."""
        table, partition = key
        buf = self._buffers[key]
        parts = dict(self._rows_by_partition(table, buf)) if buf.unwritten_rows else {}
        directories = sorted(set(buf.files) | set(parts))
        last = 0
        if isinstance(partition, InputSegment):
            last = partition.first if last_line is None else last_line
        for directory in directories:
            if isinstance(partition, InputSegment):
                buf.names[directory] = segment_name(partition.origin, partition.first, last)
            elif partition is not None or directory not in buf.names:
                buf.names[directory] = self._file_name(partition, buf)
        flush = _Flush(table, partition, buf, last, directories, parts, buf.files)
        flush.involved.extend(buf.files.values())
        buf.files = {}
        self._open_files -= len(flush.files)
        return flush

    def _finish(self, flush: _Flush, directory: str) -> Staged | None:
        """Write a partition's last rows and close its file (a whole file if none is open)."""
        name, file = flush.buf.names[directory], flush.files.get(directory)
        match = SOURCE_NAME.fullmatch(name)
        if match and covered(self.store, directory, match):
            logger.debug("skip %s/%s: its offsets are in an existing file", directory, name)
            if file is not None:
                file.discard()
            return None
        if file is None:
            file = self._open(flush.table, directory, flush.parts[directory].schema)
            flush.involved.append(file)  # list.append holds the GIL: safe from the pool
        if directory in flush.parts:
            file.write(flush.parts[directory])
        return file.close(name)

    def _open(self, table: str, directory: str, schema: pa.Schema) -> OpenFile:
        """Start the hidden file of one partition directory of ``table``, of ``schema``.

        The schema is the table's (:data:`.lake_format.LAKE_SCHEMAS`) but for ``indicators``,
        whose files hold the indicators their rows were declared with.
        """
        self.store.ensure_dir(directory)
        return self.store.open_file(directory, schema, self.compression, STATISTICS[table])

    def _file_name(self, partition: int | None, buf: _Buffer) -> str:
        if partition is None or buf.first_offset is None or buf.last_offset is None:
            return f"part-{self._run_id}-{next(self._seq):06d}.parquet"
        return f"part-p{partition:03d}-{buf.first_offset:012d}-{buf.last_offset:012d}.parquet"

    def _publish(self, file: Staged) -> None:
        """Make a durable staged file visible under its final name."""
        self.store.publish(file)
        match = SOURCE_NAME.fullmatch(file.name)
        if match:
            remove_superseded(self.store, file.directory, match)
        self._files += 1
        self._bytes += file.size
        logger.debug("wrote %s/%s (%d bytes)", file.directory, file.name, file.size)


def _each(work: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``work`` on every item, in threads when several (pyarrow writes without the GIL).

    Every call has ended when this returns or raises (the first error): a
    failed flush may then discard the files safely.
    """
    if len(items) < 2:
        return [work(item) for item in items]
    futures = [_POOL.submit(work, item) for item in items]
    wait(futures)
    return [future.result() for future in futures]


def _conform(table: str, data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return ``data`` as a table of exactly the columns of ``table``, times as timestamps."""
    schema = ROW_SCHEMAS.get(table)
    if schema is None:
        raise ValueError(f"unknown table {table!r} (known: {', '.join(TABLES)})")
    if table == "indicators":
        schema = indicator_row_schema(data.column_names)
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    if table == "bars":  # bars of a partition without quotes: their quote columns are null
        for name in BAR_QUOTE_COLUMNS:
            if name not in data.column_names:
                data = data.append_column(name, pa.nulls(data.num_rows, pa.float64()))
    missing = [name for name in schema.names if name not in data.column_names]
    if missing:
        raise ValueError(f"{table}: missing columns {', '.join(missing)}")
    try:
        return data.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{table}: columns do not match the schema: {exc}") from exc
