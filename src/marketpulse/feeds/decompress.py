"""Read a file's bytes, decompressed, up to the first damage and no further.

A truncated or corrupt compressed file still gives every byte that can be
decoded before the damage; :attr:`Decompressed.broken` then says where the
damage is (byte offset in the file) and what it is. Gzip is decoded by ISA-L
(three times zlib's speed); at damage, the piece it rejected is decoded again
by zlib one byte at a time so that no decodable byte is lost. Multi-member gzip
(``cat a.gz b.gz``, bgzip) is read member after member; zero padding after the
last member is ignored.

Gzip checks its data only at the end of a member (CRC-32): damage inside the
compressed data is often decoded into wrong bytes without an error until then.
Those bytes are passed on (holding a whole member back would need its whole
size in memory); the damage then names the member's byte range.
"""

from __future__ import annotations

import bz2
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
from isal import isal_zlib

__all__ = ["Broken", "Decompressed"]

logger = logging.getLogger(__name__)

_PIECE = 1 << 16  # compressed bytes read at a time
_OUT = 1 << 20  # most decompressed bytes per call: a bomb never fills memory
_GZIP = 31  # wbits: gzip header and trailer


@dataclass(frozen=True, slots=True)
class Broken:
    """Where a file's bytes stop being readable.

    Attributes:
        offset: byte offset in the file where the damage was found.
        what: what is wrong, e.g. ``gzip data ends early (file truncated?)``.
        start: for damage found only by a gzip member's checksum, the offset
            where that member starts (its bytes may be wrong since there).
    """

    offset: int
    what: str
    start: int | None = None


class Decompressed:
    """The decompressed bytes of a file, in pieces, stopping at damage.

    Args:
        path: the file.
        compression: ``"gzip"``, ``"bz2"``, ``"zstd"`` or ``None`` (plain).

    Attributes:
        position: bytes of the file consumed so far (for progress).
        broken: the damage that stopped the reading, ``None`` while there is none.
    """

    def __init__(self, path: str, compression: str | None) -> None:
        self._path = path
        self._compression = compression
        self._file: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.position = 0
        self.broken: Broken | None = None

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def pieces(self) -> Iterator[bytes]:
        """Yield the decompressed bytes in pieces of at most about 1 MiB."""
        if self._compression == "gzip":
            return self._gzip()
        if self._compression == "bz2":
            return self._bz2()
        if self._compression is None:
            return self._plain()
        return self._arrow(self._compression)

    def _read(self, size: int | None = None) -> bytes:
        try:
            data = self._file.read(_PIECE if size is None else size)
        except OSError as exc:
            self.broken = Broken(self.position, f"cannot read the file ({exc.strerror or exc})")
            return b""
        self.position += len(data)
        return data

    def _plain(self) -> Iterator[bytes]:
        while data := self._read(_OUT):
            yield data

    def _gzip(self) -> Iterator[bytes]:
        inflate = isal_zlib.decompressobj(_GZIP)
        member = member_out = 0  # where the current member starts, bytes it gave
        started = False  # the current member has had input
        data, fed = b"", 0  # input not yet decompressed, and its offset in the file
        while True:
            if not data:
                fed = self.position
                data = self._read()
                if not data:
                    break
            if not started and not data.strip(b"\0"):
                data = b""  # zero padding after the last member
                continue
            if not started:
                if fed and not b"\x1f\x8b".startswith(data[:2]):
                    self.broken = Broken(fed, "the bytes after the gzip data are not gzip")
                    return
                member, started = fed, True
            try:
                out = inflate.decompress(data, _OUT)
            except (isal_zlib.error, zlib.error) as exc:
                yield from self._gzip_recover(member, member_out, fed, _reason(exc))
                return
            if out:
                member_out += len(out)
                yield out
            if inflate.eof:  # the next member, if any, starts in the unused data
                data = inflate.unused_data
                fed = self.position - len(data)
                inflate, member_out, started = isal_zlib.decompressobj(_GZIP), 0, False
                continue
            tail = inflate.unconsumed_tail
            fed += len(data) - len(tail)
            data = tail
        if started:
            out = inflate.flush()
            if out:
                yield out
            if not inflate.eof and self.broken is None:
                self.broken = Broken(self.position, "gzip data ends early (file truncated?)")

    def _gzip_recover(self, member: int, skip: int, fed: int, why: str) -> Iterator[bytes]:
        """Decode the current member again with zlib, giving the bytes past ``skip``.

        Bytes before ``fed`` decoded without error by ISA-L, so zlib takes them
        in pieces; where it does not (a checksum ISA-L read but had not yet
        checked), it starts again and stops before that piece. From there, one
        byte at a time, up to the byte zlib rejects.
        """
        logger.debug("%s: gzip error near byte %d (%s); decoding again", self._path, fed, why)
        done = 0  # bytes of output of this member already passed on or discarded

        def fresh(out: bytes) -> bytes:
            nonlocal done
            start = max(0, skip - done)
            done += len(out)
            return out[start:]

        while True:
            inflate = zlib.decompressobj(_GZIP)
            self._file.seek(member)
            offset, done, failed = member, 0, False
            while offset < fed:
                data = self._file.read(min(_PIECE, fed - offset))
                if not data:
                    break
                try:
                    out = fresh(inflate.decompress(data))
                except zlib.error:
                    failed = True
                    break
                offset += len(data)
                if out:
                    yield out
            if not failed:
                break
            skip, fed = max(skip, done), offset  # again, short of the piece zlib rejected
        self._file.seek(offset)
        while True:
            data = self._file.read(_PIECE)
            if not data:
                self.broken = Broken(offset, f"gzip data unreadable ({why})")
                return
            for i in range(len(data)):
                try:
                    out = fresh(inflate.decompress(data[i : i + 1]))
                except zlib.error as exc:
                    at = offset + i
                    checksum = "incorrect data check" in str(exc) or "incorrect length" in str(exc)
                    if checksum:
                        self.broken = Broken(
                            at,
                            "gzip checksum mismatch: the data of this gzip member is corrupt",
                            member,
                        )
                    else:
                        self.broken = Broken(at, f"corrupt gzip data ({_reason(exc)})")
                    self.position = at
                    return
                if out:
                    yield out
                if inflate.eof:  # ISA-L rejected what follows this member
                    self.broken = Broken(offset + i + 1, f"gzip data unreadable ({why})")
                    return
            offset += len(data)

    def _bz2(self) -> Iterator[bytes]:
        inflate = bz2.BZ2Decompressor()
        started = False  # the current stream has had input
        pending = b""  # input after the end of a stream
        while True:
            if pending:
                data, pending = pending, b""
            elif inflate.needs_input:
                data = self._read()
                if not data:
                    break
            else:
                data = b""
            if not started and data and not data.strip(b"\0"):
                continue  # zero padding after the last stream
            started = True
            try:
                out = inflate.decompress(data, _OUT)
            except (OSError, EOFError, ValueError) as exc:
                self.broken = Broken(self.position, f"corrupt bz2 data ({_reason(exc)})")
                return
            if out:
                yield out
            if inflate.eof:
                pending = inflate.unused_data
                inflate, started = bz2.BZ2Decompressor(), False
        if started and self.broken is None:
            self.broken = Broken(self.position, "bz2 data ends early (file truncated?)")

    def _arrow(self, codec: str) -> Iterator[bytes]:
        self._file.close()
        raw = pa.OSFile(self._path)
        try:
            stream = pa.CompressedInputStream(raw, codec)
            while True:
                try:
                    data = stream.read(_OUT)
                except (OSError, pa.ArrowException) as exc:
                    self.broken = Broken(raw.tell(), f"corrupt {codec} data ({_reason(exc)})")
                    return
                self.position = raw.tell()
                if not data:
                    return
                yield data
        finally:
            raw.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
