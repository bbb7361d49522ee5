"""Where a lake is: a local directory or ``s3://bucket/prefix``, with the settings that reach it.

Every reader and writer of the lake (the sinks, ``sql``, reports,
``backfill``, ``lake`` maintenance, the dashboard) works from one
:class:`LakeLocation`, so a lake on S3 is read and written with the same
endpoint and credentials everywhere. The location knows its pyarrow
filesystem and its root's path in it, lists and globs the files under it,
and registers Parquet files with a DuckDB connection (DuckDB's ``httpfs``
extension is not bundled and cannot be fetched offline, so S3 objects are
read by pyarrow and scanned by DuckDB as Arrow streams).

Its ``str`` is the root as users named it and never shows a secret.

Example::

    location = LakeLocation.of("s3://market/lake", settings.s3)
    location.glob("trades/dataset=lean/*/*.parquet")
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from marketpulse.config import S3Settings
from marketpulse.exceptions import ConfigError, MarketPulseError
from marketpulse.redaction import redact_url

if TYPE_CHECKING:  # imported by the readers that query: writers start without it
    import duckdb

__all__ = ["LakeAccessError", "LakeLocation", "LakeLocationError", "is_s3", "s3_filesystem"]

logger = logging.getLogger(__name__)

_S3_SCHEME = "s3:"
#: S3 bucket names: 3 to 63 lower-case letters, digits, dots and hyphens.
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
#: A file or directory name readers skip: writers' hidden temporaries, staging areas.
_HIDDEN = "."


class LakeLocationError(ConfigError):
    """A lake root that is neither a directory nor ``s3://bucket/prefix``."""


class LakeAccessError(MarketPulseError):
    """The lake's storage could not be listed or read."""


def is_s3(root: str | Path | LakeLocation) -> bool:
    """Return whether a lake root names an S3 location (``s3://...``)."""
    if isinstance(root, LakeLocation):
        return root.is_s3
    return str(root).strip().lower().startswith(_S3_SCHEME)


@dataclass(frozen=True, slots=True)
class LakeLocation:
    """A lake's root with the storage settings that reach it.

    Args:
        root: a directory, or ``s3://bucket/prefix`` (the prefix may be empty).
        s3: endpoint, region and credentials of an S3 lake; empty values are
            left to the AWS SDK's own lookup (``AWS_*`` variables, ``~/.aws``).

    Raises:
        LakeLocationError: ``root`` is empty, has another scheme, names no
            bucket, or carries credentials (they belong in the ``[s3]`` settings).
    """

    root: str
    s3: S3Settings = field(default_factory=S3Settings)
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", _normalised(os.fspath(self.root)))

    @classmethod
    def of(cls, root: str | Path | LakeLocation, s3: S3Settings | None = None) -> LakeLocation:
        """The location of ``root`` (returned as is if it is one already)."""
        if isinstance(root, LakeLocation):
            return root
        return cls(str(root), s3 or S3Settings())

    def __str__(self) -> str:
        return self.root

    def __repr__(self) -> str:
        endpoint = f", endpoint={self.s3.endpoint!r}" if self.is_s3 and self.s3.endpoint else ""
        return f"LakeLocation({self.root!r}{endpoint})"

    @property
    def is_s3(self) -> bool:
        """Whether the lake is in an S3-compatible object store."""
        return self.root.startswith("s3://")

    @property
    def bucket(self) -> str:
        """The S3 bucket ("" for a local lake)."""
        return self.root[5:].partition("/")[0] if self.is_s3 else ""

    @property
    def prefix(self) -> str:
        """The key prefix of the lake in its bucket, without slashes at the ends ("" if local)."""
        return self.root[5:].partition("/")[2] if self.is_s3 else ""

    @property
    def local_path(self) -> Path:
        """The lake's directory.

        Raises:
            LakeLocationError: the lake is on S3.
        """
        if self.is_s3:
            raise LakeLocationError(f"lake {self}: not a local directory")
        return Path(self.root)

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem holding the lake (made once per location)."""
        fs = self._cache.get("fs")
        if fs is None:
            fs = self._cache["fs"] = (
                s3_filesystem(self.s3) if self.is_s3 else pafs.LocalFileSystem()
            )
        return fs

    @property
    def base(self) -> str:
        """The root's path in :attr:`filesystem`: an absolute directory, or ``bucket/prefix``."""
        if self.is_s3:
            return self.root[5:]
        return str(Path(self.root).resolve())

    def path(self, *parts: str) -> str:
        """The path of a sub-path (``bars``, ``bars/dataset=x``...) in :attr:`filesystem`."""
        return "/".join([self.base, *_relative(parts)])

    def uri(self, *parts: str) -> str:
        """A sub-path as users name it: ``s3://bucket/prefix/bars`` or ``<root>/bars``."""
        relative = _relative(parts)
        if self.is_s3:
            return "/".join([self.root, *relative])
        return str(Path(self.root, *relative))

    def joinpath(self, *parts: str) -> LakeLocation:
        """The location of a sub-path, with the same storage settings."""
        return LakeLocation(self.uri(*parts), self.s3)

    def exists(self) -> bool:
        """Whether the lake can be read: its directory exists, or its bucket does.

        An S3 prefix without objects exists (it is an empty lake).

        Raises:
            LakeAccessError: the store cannot be reached.
        """
        if not self.is_s3:
            return Path(self.root).is_dir()
        try:
            return self.filesystem.get_file_info(self.bucket).type != pafs.FileType.NotFound
        except OSError as exc:
            raise LakeAccessError(f"cannot reach the lake at {self}: {_message(exc)}") from None

    def entries(self, relative: str = "", *, recursive: bool = False) -> list[pafs.FileInfo]:
        """The files and directories under a sub-path (none if missing), hidden ones left out.

        Hidden names (starting with ``.``: writers' temporaries, staging
        areas) are skipped, and so is everything below a hidden directory.

        Raises:
            LakeAccessError: the store cannot be listed.
        """
        top = self.path(relative)
        selector = pafs.FileSelector(top, recursive=recursive, allow_not_found=True)
        try:
            infos = self.filesystem.get_file_info(selector)
        except OSError as exc:
            raise LakeAccessError(f"cannot list the lake at {self}: {_message(exc)}") from None
        start = len(top) + 1
        return [
            i for i in infos if not any(p.startswith(_HIDDEN) for p in i.path[start:].split("/"))
        ]

    def directories(self, relative: str = "") -> list[str]:
        """The names of the subdirectories of a sub-path, sorted."""
        found = self.entries(relative)
        return sorted(i.base_name for i in found if i.type == pafs.FileType.Directory)

    def glob(self, pattern: str) -> list[str]:
        """The files whose path under the root matches ``pattern``, sorted, as relative paths.

        ``pattern`` is ``/``-separated; each part may hold ``*``, ``?`` and
        ``[...]`` (as :mod:`fnmatch`), e.g. ``trades/dataset=lean/*/*.parquet``.
        Hidden files and directories never match.
        """
        parts = _relative([pattern])
        fixed = 0
        while fixed < len(parts) - 1 and not _has_magic(parts[fixed]):
            fixed += 1
        prefix, rest = "/".join(parts[:fixed]), parts[fixed:]
        if not self.is_s3:  # the operating system's listing is faster for big directories
            found = (
                str(p.relative_to(self.root)) for p in Path(self.root, prefix).glob("/".join(rest))
            )
            return sorted(f for f in found if _visible(f) and Path(self.root, f).is_file())
        matched = []
        for info in self.entries(prefix, recursive=len(rest) > 1):
            if info.type != pafs.FileType.File:
                continue
            names = info.path[len(self.path(prefix)) + 1 :].split("/")
            if len(names) == len(rest) and all(map(fnmatch.fnmatchcase, names, rest)):
                matched.append("/".join([prefix, *names]) if prefix else "/".join(names))
        return sorted(matched)

    def files(self, relative: str = "", suffix: str = "") -> list[str]:
        """Every file below a sub-path whose name ends with ``suffix``, sorted, as relative paths.

        Hidden files and directories are left out.
        """
        top = self.path(relative)
        return sorted(
            f"{relative.strip('/')}/{i.path[len(top) + 1 :]}".lstrip("/")
            for i in self.entries(relative, recursive=True)
            if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
        )

    def newest_change(self, relative: str = "") -> int:
        """When a sub-path last changed, in ns since the epoch (0 if it has nothing).

        Locally the newest modification of its directories (a file written,
        replaced or removed changes its directory); on S3, where directories
        do not exist, the newest object's.
        """
        if self.is_s3:
            infos = self.entries(relative, recursive=True)
            return max((i.mtime_ns or 0 for i in infos if i.type == pafs.FileType.File), default=0)
        newest, pending = 0, [self.uri(relative)]
        while pending:
            path = pending.pop()
            try:
                newest = max(newest, os.stat(path).st_mtime_ns)
                pending.extend(e.path for e in os.scandir(path) if e.is_dir(follow_symlinks=False))
            except OSError:  # removed meanwhile (a compaction, `lake drop`)
                continue
        return newest

    def delete_file(self, relative: str) -> None:
        """Delete one file; a missing one is fine."""
        try:
            self.filesystem.delete_file(self.path(relative))
        except FileNotFoundError:
            pass

    def delete_empty_directories(self, relative: str) -> None:
        """Remove the directories under a sub-path left without files (local lakes only).

        On S3 a "directory" is a key prefix, gone with its last object.
        """
        if self.is_s3:
            return
        top = Path(self.root, relative)
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()

    def parquet_scan(
        self,
        con: duckdb.DuckDBPyConnection,
        name: str,
        files: Sequence[str],
        columns: Sequence[str],
    ) -> str:
        """Make Parquet files of the lake readable by DuckDB; return the relation to select from.

        The relation has ``columns`` of the files, then ``filename`` (the
        file's path, as the files are ordered) and ``file_row_number``, so
        rows can be read back in the order they were written.

        Args:
            con: the connection that will run the query.
            name: a name for the registered source (S3).
            files: paths under the root (:meth:`glob`); at least one.
            columns: the columns to read.
        """
        if not files:
            raise ValueError("parquet_scan needs at least one file")
        if not self.is_s3:
            listed = ", ".join(_literal(self.path(f)) for f in files)
            return (
                f"(SELECT {', '.join(_ident(c) for c in columns)}, filename, file_row_number "
                f"FROM read_parquet([{listed}], filename = true, file_row_number = true))"
            )
        schema = self._file_schema(files[0], columns)
        reader = pa.RecordBatchReader.from_batches(schema, self._positioned(files, columns, schema))
        con.register(name, reader)
        return _ident(name)

    def _file_schema(self, first: str, columns: Sequence[str]) -> pa.Schema:
        with self.filesystem.open_input_file(self.path(first)) as file:
            schema = pq.ParquetFile(file).schema_arrow
        fields = [schema.field(c) for c in columns]
        return pa.schema([*fields, ("filename", pa.string()), ("file_row_number", pa.int64())])

    def _positioned(
        self, files: Sequence[str], columns: Sequence[str], schema: pa.Schema
    ) -> Iterator[pa.RecordBatch]:
        for relative in files:
            path = self.path(relative)
            with self.filesystem.open_input_file(path) as file:
                table = pq.read_table(file, columns=list(columns))
            start = 0
            for batch in table.to_batches():
                rows = batch.num_rows
                yield pa.RecordBatch.from_arrays(
                    [*batch.columns, pa.array([path] * rows, pa.string()),
                     pa.array(range(start, start + rows), pa.int64())],
                    schema=schema,
                )  # fmt: skip
                start += rows


def s3_filesystem(settings: S3Settings) -> pafs.S3FileSystem:
    """A pyarrow S3 filesystem for the settings (path-style addressing for custom endpoints)."""
    options: dict[str, object] = {}
    if settings.endpoint:
        endpoint = urllib.parse.urlsplit(settings.endpoint)
        options["endpoint_override"] = endpoint.netloc or settings.endpoint
        options["scheme"] = endpoint.scheme or "https"
        options["force_virtual_addressing"] = False
    if settings.region:
        options["region"] = settings.region
    if settings.access_key_id:
        options["access_key"] = settings.access_key_id
        options["secret_key"] = settings.secret_access_key.reveal()
    return pafs.S3FileSystem(**options)


def _normalised(root: str) -> str:
    """The root in its one spelling: ``s3://bucket/prefix`` (no slash at the end) or a path."""
    text = root.strip()
    if not text:
        raise LakeLocationError("lake: empty location; expected a directory or s3://bucket/prefix")
    scheme, sep, _ = text.partition("://")
    if not sep and not text.lower().startswith(_S3_SCHEME):
        return root
    shown = redact_url(text)
    if scheme.lower() != "s3" or not sep:
        raise LakeLocationError(f"lake {shown}: expected a directory or s3://bucket/prefix")
    parts = urllib.parse.urlsplit(text)
    if "@" in parts.netloc:
        raise LakeLocationError(
            f"lake {shown}: credentials go in the [s3] settings (MARKETPULSE_S3_*), not the URL"
        )
    if parts.query or parts.fragment:
        raise LakeLocationError(f"lake {shown}: expected s3://bucket/prefix, without ? or #")
    if not _BUCKET.fullmatch(parts.netloc) or ".." in parts.netloc:
        raise LakeLocationError(f"lake {shown}: {parts.netloc!r} is not an S3 bucket name")
    prefix = "/".join(p for p in parts.path.split("/") if p)
    if any(p in (".", "..") for p in prefix.split("/")):
        raise LakeLocationError(f"lake {shown}: '.' and '..' have no meaning in an S3 prefix")
    return f"s3://{parts.netloc}/{prefix}".rstrip("/")


def _relative(parts: Sequence[str]) -> list[str]:
    return [p for part in parts for p in str(part).split("/") if p]


def _has_magic(part: str) -> bool:
    return any(c in part for c in "*?[")


def _visible(relative: str) -> bool:
    return not any(p.startswith(_HIDDEN) for p in relative.split("/"))


def _message(exc: OSError) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
