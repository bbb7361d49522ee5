"""Keep lines pyarrow cannot read out of its way, one line at a time.

pyarrow's CSV reader fails a whole block on one invalid UTF-8 byte, runs an
unbalanced quote on across the following lines, and stops at a line longer
than its block. :class:`CleanLines` stands between the decompressed bytes and
the reader: each such line is replaced by a row of empty fields (the
delimiters alone, then the line's own line break, so the reader's line
numbers stay those of the file and a lone CR before it cannot join it into
one CRLF) and becomes a dead letter with its line number; pyarrow reads the
replacement as a blank row. An over-long line is skipped as it streams past,
never held whole.

Chunks of about 1 MiB that are valid UTF-8 with no NUL byte, no over-long line
and no quote other than around whole fields pass through untouched after a
few C-speed scans; only other chunks are examined line by line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import numpy as np

from marketpulse.feeds.decompress import Decompressed
from marketpulse.models import DeadLetter

__all__ = ["MAX_LINE", "CleanLines", "line_problem"]

logger = logging.getLogger(__name__)

#: Longest line read, in bytes (a market data row is well under 1 KiB); it
#: must stay well below the reader's smallest block (64 KiB).
MAX_LINE = 16 << 10
_CHUNK = 1 << 20
_VALUE_CAP = 4096  # bytes of a rejected line kept in its dead letter
_QUOTE = ord('"')
_SCRATCH = [np.empty(0, bool), np.empty(0, bool)]


def _balanced(delimiter: str) -> re.Pattern[bytes]:
    """A line in which every field opened by a quote is closed (pyarrow's quoting).

    A quote opens a quoted field only at the start of a field; inside, ``""``
    is a quote; after the closing quote the field goes on unquoted up to the
    delimiter, any quote there being an ordinary character.
    """
    d = re.escape(delimiter.encode())
    field = rb'(?:"(?:[^"]|"")*"(?!")[^' + d + rb"]*|[^\"" + d + rb"][^" + d + rb"]*|)"
    return re.compile(field + rb"(?:" + d + field + rb")*", re.DOTALL)


_PATTERNS: dict[str, re.Pattern[bytes]] = {}


def line_problem(content: bytes, delimiter: str = ",", limit: int = MAX_LINE) -> str | None:
    """Say why the reader cannot take this line (without its line break), or ``None``."""
    if len(content) > limit:
        return f"line longer than {limit:,} bytes ({len(content):,} bytes)"
    nul = content.find(b"\0")
    if nul >= 0:
        return f"NUL byte at byte {nul + 1} of the line"
    if not content.isascii():
        try:
            content.decode()
        except UnicodeDecodeError as exc:
            return f"invalid UTF-8 at byte {exc.start + 1} of the line"
    if _QUOTE in content:
        pattern = _PATTERNS.get(delimiter)
        if pattern is None:
            pattern = _PATTERNS[delimiter] = _balanced(delimiter)
        if pattern.fullmatch(content) is None:
            return "unbalanced quote: a quoted field does not end on its line"
    return None


def _lines_in(chunk: bytes) -> int:
    """Count the line breaks (LF, CRLF or a lone CR, as pyarrow reads them)."""
    codes = np.frombuffer(chunk, np.uint8)
    size = len(codes)
    if size > len(_SCRATCH[0]):
        _SCRATCH[:] = [np.empty(size, bool), np.empty(size, bool)]
    newline, ret = (scratch[:size] for scratch in _SCRATCH)  # no fresh pages per chunk
    lines = int(np.count_nonzero(np.equal(codes, 10, out=newline)))
    returns = int(np.count_nonzero(np.equal(codes, 13, out=ret)))
    if returns:  # those followed by "\\n" end no line of their own
        pairs = np.logical_and(ret[:-1], newline[1:], out=ret[: size - 1])
        lines += returns - int(np.count_nonzero(pairs))
    return lines


def _simply_quoted(chunk: bytes, delimiter: str) -> bool:
    """Say whether every quote of ``chunk`` (whole lines) is in a simple quoted field.

    Quotes taken in pairs in order: the first of a pair opens a field (at the
    start of a line or after a delimiter), the second closes it (before a
    delimiter or a line break), and no line break lies between them (an even
    number of quotes before each). Then no quoted field runs past its line.
    Other quoting (an escaped ``""``, a quote inside a field) is left to the
    line-by-line check.
    """
    codes = np.frombuffer(chunk, np.uint8)
    quotes = np.flatnonzero(codes == _QUOTE)
    if len(quotes) % 2 or quotes[-1] + 1 >= len(codes):
        return False  # a chunk of whole lines ends with a line break
    mark = ord(delimiter)
    opens, closes = quotes[0::2], quotes[1::2]
    before = codes[opens - 1]  # opens[0] == 0 reads the last byte: a line break
    after = codes[closes + 1]
    for side in (before, after):
        if not np.all((side == mark) | (side == 10) | (side == 13)):
            return False
    breaks = np.flatnonzero((codes == 10) | (codes == 13))
    return not np.any(np.searchsorted(quotes, breaks) % 2)


def _strip_break(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith((b"\n", b"\r")):
        return line[:-1]
    return line


class CleanLines:
    """A read-only file of the decompressed bytes with unreadable lines emptied.

    Args:
        source: the file's decompressed bytes.
        name: the file's name, for dead letters.
        delimiter: the CSV field separator (quotes are checked with it).
        limit: longest line accepted, in bytes.
        fields: fields of a row (a rejected line becomes a row of empty fields).

    Attributes:
        dead: dead letters for the lines emptied so far, in line order.
        lines: complete lines passed on so far (line 1 is the header).
        closed: whether :meth:`close` was called.
    """

    def __init__(
        self,
        source: Decompressed,
        name: str,
        delimiter: str = ",",
        limit: int = MAX_LINE,
        fields: int = 2,
    ) -> None:
        self._source = source
        self._pieces = source.pieces()
        self._name, self._delimiter, self._limit = name, delimiter, limit
        self._blank = delimiter.encode() * max(fields - 1, 1)
        self._window = max(limit // 2, 1)  # a longer line holds a window with no "\n"
        self.dead: list[DeadLetter] = []
        self.lines = 0
        self.closed = False
        self._pending = b""  # start of a line not yet ended
        self._skip: tuple[int, bytes, int] | None = None  # over-long line: number, head, size
        self._eat_lf = False  # a skipped line ended in "\r": a "\n" next is part of it
        self._out = b""
        self._at = 0
        self._told = 0
        self._ended = False

    # -- the file interface pyarrow uses ---------------------------------------

    def readable(self) -> bool:
        """Say that it can be read."""
        return True

    def seekable(self) -> bool:
        """Say that it cannot seek."""
        return False

    def writable(self) -> bool:
        """Say that it cannot be written."""
        return False

    def tell(self) -> int:
        """Return how many bytes were read."""
        return self._told

    def close(self) -> None:
        """Mark it closed (the source is closed by its owner)."""
        self.closed = True

    def read(self, size: int = -1) -> bytes:
        """Return ``size`` bytes (fewer only at the end; all that is left if negative).

        pyarrow takes a short read for the end of the file, so a read spanning
        two cleaned chunks joins them.
        """
        parts: list[bytes] = []
        wanted = size if size >= 0 else 1 << 62
        while wanted > 0:
            if self._at >= len(self._out):
                if self._ended:
                    break
                self._out, self._at = self._next(), 0
                continue
            if self._at == 0 and wanted >= len(self._out):
                part = self._out
            else:
                part = self._out[self._at : self._at + wanted]
            self._at += len(part)
            wanted -= len(part)
            parts.append(part)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._told += len(data)
        return data

    # -- cleaning ---------------------------------------------------------------

    def _next(self) -> bytes:
        """Return the next clean bytes (possibly empty); set ``_ended`` at the end."""
        parts = [self._pending] if self._pending else []
        size = len(self._pending)
        lead = b""
        end = False
        while True:  # at least one piece a call: a pending tail must meet its line break
            piece = next(self._pieces, None)
            if piece is None:
                end = True
                break
            if self._skip is not None:
                lead, piece = self._skip_through(piece)
                if self._skip is not None:
                    continue
                parts, size = [], 0
            elif self._eat_lf:
                self._eat_lf = False
                piece = piece[1:] if piece.startswith(b"\n") else piece
            parts.append(piece)
            size += len(piece)
            if lead or size >= _CHUNK:
                break
        buf = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pending = b""
        if end:
            self._ended = True
            return lead + self._finish(buf)
        # after the last line break; a final "\r" may precede a "\n" still to come
        cut = max(buf.rfind(b"\n"), buf.rfind(b"\r", 0, len(buf) - 1)) + 1
        complete, rest = buf[:cut], buf[cut:]
        out = lead + self._clean(complete) if complete else lead
        if len(rest) > self._limit:
            self._skip = (self.lines + 1, rest[:_VALUE_CAP], len(rest))
        else:
            self._pending = rest
        return out

    def _skip_through(self, piece: bytes) -> tuple[bytes, bytes]:
        """Drop ``piece`` up to the end of the over-long line; return (lead, rest)."""
        assert self._skip is not None
        number, head, size = self._skip
        newline, ret = piece.find(b"\n"), piece.find(b"\r")
        ends = [i for i in (newline, ret) if i >= 0]
        if not ends:
            self._skip = (number, head, size + len(piece))
            return b"", b""
        at = min(ends)
        self._skip = None
        self._reject(number, head, f"line longer than {self._limit:,} bytes ({size + at:,} bytes)")
        self.lines += 1
        step = 2 if piece[at : at + 2] == b"\r\n" else 1
        if piece[at] == ord("\r") and at == len(piece) - 1:
            self._eat_lf = True
        return self._blank + b"\n", piece[at + step :]

    def _clean(self, chunk: bytes) -> bytes:
        """Pass ``chunk`` (whole lines) on, its unreadable lines emptied."""
        if self._fast(chunk):
            self.lines += _lines_in(chunk)
            return chunk
        out: list[bytes] = []
        for line in chunk.splitlines(keepends=True):
            self.lines += 1
            content = _strip_break(line)
            problem = line_problem(content, self._delimiter, self._limit)
            if problem is None:
                out.append(line)
            else:
                self._reject(self.lines, content[:_VALUE_CAP], problem)
                out.append(self._blank + line[len(content) :])
        return b"".join(out)

    def _fast(self, chunk: bytes) -> bool:
        if b"\0" in chunk:
            return False
        if b'"' in chunk and not _simply_quoted(chunk, self._delimiter):
            return False
        if not chunk.isascii():
            try:
                chunk.decode()
            except UnicodeDecodeError:
                return False
        window = self._window
        return all(
            chunk.find(b"\n", start, start + window) >= 0
            for start in range(0, len(chunk) - window + 1, window)
        )

    def _finish(self, tail: bytes) -> bytes:
        """Handle the bytes after the last line break, at the end of the data."""
        broken = self._source.broken
        if self._skip is not None:
            number, head, size = self._skip
            self._skip = None
            if broken is not None:
                self._truncated(number, head, broken.offset)
            else:
                self._reject(number, head, f"line longer than {self._limit:,} bytes ({size:,})")
            return b""
        cut = max(tail.rfind(b"\n"), tail.rfind(b"\r")) + 1
        out = self._clean(tail[:cut]) if cut else b""
        last = tail[cut:]
        if not last:
            return out
        if broken is not None:
            self._truncated(self.lines + 1, last[:_VALUE_CAP], broken.offset)
            return out
        problem = line_problem(last, self._delimiter, self._limit)
        if problem is None:
            return out + last
        self._reject(self.lines + 1, last[:_VALUE_CAP], problem)
        return out

    def _truncated(self, number: int, head: bytes, offset: int) -> None:
        self.dead.append(
            DeadLetter(
                reason="truncated",
                error=f"line cut off where the file's data ends at byte {offset:,}",
                value=head,
                file=self._name,
                line=number,
            )
        )

    def _reject(self, number: int, head: bytes, problem: str) -> None:
        self.dead.append(
            DeadLetter(reason="parse", error=problem, value=head, file=self._name, line=number)
        )

    def __iter__(self) -> Iterator[bytes]:  # pragma: no cover - not used by pyarrow
        while chunk := self.read(_CHUNK):
            yield chunk
