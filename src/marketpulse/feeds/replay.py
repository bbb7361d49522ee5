"""Replay a file of trades or OHLCV bars (CSV, gzip CSV or Parquet) as a feed.

CSV is streamed with ``pyarrow.csv`` in serial mode, the only mode in which
pyarrow reports the line of a row with a wrong number of fields; every cell is
read as text (the symbol straight into a dictionary) and converted column by
column, so a bad cell costs its row, never its block. Before pyarrow sees the
bytes, :mod:`~marketpulse.feeds.decompress` decodes them up to any damage and
:mod:`~marketpulse.feeds.sanitise` empties the lines pyarrow cannot read
(invalid UTF-8, NUL, over-long, unbalanced quote), so a bad line costs only
itself. Rows that cannot be read become ``DeadLetter(reason="parse")`` with
their line (``"truncated"`` for a last line cut off by damage); the others
carry their line in an extra ``line`` column. Blank lines are skipped and
counted, found column-wise before any conversion (so a file of them costs no
more than its bytes). Damage that ends the reading
early (a truncated or corrupt gzip, an unreadable Parquet row group) is kept
in :attr:`FileReplay.damage`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from marketpulse.exceptions import InputError
from marketpulse.feeds.adjust import ADJUST_MODES, SplitHistory
from marketpulse.feeds.base import FeedBatch
from marketpulse.feeds.columns import (
    Converted,
    Options,
    checked_text,
    convert_bars,
    convert_trades,
    value_at,
)
from marketpulse.feeds.conditions import (
    CONDITION_PRESETS,
    condition_rule,
    excluded_rows,
    lean_excludes_price,
)
from marketpulse.feeds.damage import Damage
from marketpulse.feeds.decompress import Broken, Decompressed
from marketpulse.feeds.formats import Layout, Source, resolve_layout, sniff
from marketpulse.feeds.sanitise import MAX_LINE, CleanLines
from marketpulse.feeds.timestamps import CONVERT_ERRORS
from marketpulse.models import BAR_SCHEMA, TRADE_SCHEMA, DeadLetter
from marketpulse.timeframes import is_interval

__all__ = ["CONDITION_PRESETS", "FileReplay", "detect_format", "lean_excludes_price"]

logger = logging.getLogger(__name__)

_LINE = pa.field("line", pa.int64())
_SCHEMAS = {"trades": TRADE_SCHEMA.append(_LINE), "bars": BAR_SCHEMA.append(_LINE)}
_CONDITION = TRADE_SCHEMA.get_field_index("condition")
_MAX_BLOCK = 1 << 20  # larger CSV blocks parse slower (cache) and delay the first batch
_MIN_BLOCK = 64 << 10
assert _MIN_BLOCK >= 4 * MAX_LINE  # a line always fits in a block

# A raw batch as read from the file: cells, the line of each row, dead letters
# for rows the reader itself rejected, bytes of the file consumed.
_Raw = tuple[pa.RecordBatch, np.ndarray, list[DeadLetter], int]


def detect_format(
    path: str | Path, columns: dict[str, str] | None = None
) -> Literal["trades", "bars"]:
    """Tell whether ``path`` holds trades or bars, from its columns.

    Raises:
        InputError: the file cannot be read or its columns fit neither layout.
    """
    return resolve_layout(sniff(path), None, columns, symbol="").kind


class FileReplay:
    """A feed that reads a trades or bars file from start to end.

    Trades follow ``models.TRADE_SCHEMA``, bars ``models.BAR_SCHEMA`` (``bar_start``
    is the time in the file, ``bar_end = bar_start + interval``, ``vwap`` null unless
    the file has one, ``trades`` 0 unless the file has one, ``volume`` 0.0 when
    the file has none); ``dataset`` is null (the processor stamps its own); both
    get an int64 ``line`` column (CSV: line in the file, header = 1; Parquet:
    1-based row number).

    Every row that can be read is yielded; a line that cannot (invalid UTF-8,
    a NUL byte, longer than 16 KiB, an unbalanced quote, a wrong number of
    fields, a bad value) goes to the dead letters with its line number, and
    the reading goes on at the next line. A truncated or corrupt compressed
    file gives every row before the damage, and :attr:`damage` says where it
    is; so does an unreadable Parquet row group, whose rows are then skipped.

    The file is identified when the feed is made, so a bad path or layout fails
    early; it is opened by :meth:`batches`, once per call.

    Args:
        path: a CSV (plain, gzip, bz2 or zstd, detected by content) or Parquet file.
        format: ``"trades"`` or ``"bars"``; ``None`` detects it from the columns.
        symbol: the instrument of a file without a symbol column (Yahoo layout);
            for a file with one, only the rows of this symbol are replayed.
        columns: file column name → our column name (``{"px": "price"}``) for
            names not recognised (matching of standard names ignores case).
        batch_size: most rows per batch.
        interval: interval of bars (``"1d"``, ``"1m"``, ...); ``"auto"`` (the default):
            inferred from the spacing of the file's first bars.
        include_suspicious: keep trades whose ``suspicious`` column is set
            (dropped and counted by default, as Lean does for its bars).
        shift_days: add this many days to every timestamp.
        exclude_conditions: leave out trades by their ``condition`` column
            (trades files only; the file needs a condition column). ``None``
            (default): keep every trade. A collection of codes: drop the trades
            whose condition is exactly one of them. ``"lean"``: drop the trades
            whose price QuantConnect Lean leaves out of its bars (see
            :func:`lean_excludes_price`): on AlgoSeek/Lean US equity data,
            intermarket sweep and trade-through-exempt prints without a regular,
            extended-hours, cash, next-day or auction flag. Lean still adds their
            volume to its bars; a dropped trade loses its volume too, so bars
            built from this feed get Lean's open, high, low and close but less
            volume (about 40% of a regular session's volume on the sample day).
        adjust: bar files with an adjusted close (Yahoo's ``Adj Close``):
            ``"none"`` (default) replays the raw prices, ``"all"`` scales each
            row by ``adj_close / close``, ``"splits"`` by the splits only (see
            :mod:`~marketpulse.feeds.adjust`; it reads the file twice).

    Raises:
        InputError: the file is missing, unreadable, of unknown format, or its
            columns do not fit (the message names the file and the columns).

    Attributes:
        name: the path as given, for logs and dead letters.
        format: ``"trades"`` or ``"bars"``; ``kind`` is the matching FeedBatch kind.
        rows: rows yielded by the current (or last) replay.
        dead: rows of it sent to the dead letters.
        suspicious: trades of it left out as suspicious.
        excluded: trades of it left out by ``exclude_conditions``.
        blank: blank lines of it skipped (CSV lines with no field or only empty
            fields), as CSV readers skip them: neither rows nor dead letters.
        quotes: quotes of it: a trades file with ``bid`` and ``ask`` columns (the
            quote in force at each trade) yields them as ``quote`` batches before
            the trades of their rows (rows without both: no quote).
        damage: :class:`~marketpulse.feeds.damage.Damage` found by it (empty
            for a sound file); ``str()`` of each is one line for a person.
    """

    realtime = False  # as fast as it is read; `--speed N` paces it in the pipeline

    def __init__(
        self,
        path: str | Path,
        format: Literal["trades", "bars"] | None = None,
        symbol: str | None = None,
        columns: dict[str, str] | None = None,
        batch_size: int = 65536,
        interval: str = "auto",
        include_suspicious: bool = False,
        shift_days: int = 0,
        exclude_conditions: Iterable[str] | str | None = None,
        adjust: str = "none",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        exclude = condition_rule(exclude_conditions)
        self.path = Path(path)
        self.name = str(path)
        if interval != "auto" and not is_interval(interval):
            raise InputError(
                f"{self.name}: unknown bar interval {interval!r} (a whole number of s, m or h, "
                "as 15m, 4h; or 1d, 1w)"
            )
        self._source: Source = sniff(self.path)
        self._layout = resolve_layout(self._source, format, columns, symbol)
        self._adjust = self._adjusting(adjust)
        self.format: Literal["trades", "bars"] = self._layout.kind
        self.kind: Literal["trade", "bar"] = "trade" if self.format == "trades" else "bar"
        self.batch_size = batch_size
        self._symbol, self._interval = symbol, interval
        self._include_suspicious, self._shift_days = include_suspicious, shift_days
        if exclude is not None and self.format != "trades":
            raise ValueError(f"{self.name}: exclude_conditions applies to trades, not bars")
        if exclude is not None and "condition" not in self._layout.fields:
            found = ", ".join(self._source.header)
            raise InputError(
                f"{self.name}: exclude_conditions needs a condition column (columns found: "
                f"{found}); map another name with columns="
            )
        self._exclude = exclude
        self._excluded = (
            exclude_conditions
            if exclude_conditions is None or isinstance(exclude_conditions, str)
            else sorted(exclude_conditions)
        )
        self._fields = dict(self._layout.fields)  # our name -> column of the batches read
        self._cells = self._source.header  # names of the columns of the batches read
        if self._source.container == "parquet":
            self._parquet_columns()
        self._open: list[Any] = []
        self.rows = self.dead = self.suspicious = self.excluded = self.quotes = self.blank = 0
        self.damage: list[Damage] = []

    def __repr__(self) -> str:
        return f"FileReplay({self.name!r}, format={self.format!r})"

    def identity(self) -> str:
        """What the rows of a replay depend on: the file's content and the options.

        A digest of the whole file (not of its name, size or time, which a
        copy or a touch changes) and of every option that shapes the rows;
        two replays of the same identity yield the same rows.
        """
        try:
            with self.path.open("rb") as file:
                content = hashlib.file_digest(file, "blake2b").hexdigest()
        except OSError as exc:
            raise InputError(f"{self.name}: cannot read ({exc.strerror or exc})") from None
        options = (self.format, self._symbol, sorted(self._layout.fields.items()), self._interval,
                   self._include_suspicious, self._shift_days, self._excluded,
                   self._adjust)  # fmt: skip
        return f"{content}:{options!r}"

    def batches(self) -> Iterator[FeedBatch]:
        """Yield the file's rows in file order, with dead letters and progress in bytes."""
        opts = Options(
            self._symbol,
            self._include_suspicious,
            self._shift_days * 86_400 * 1_000_000_000,
            self._interval,
            adjust=self._adjust,
        )
        if self._adjust == "splits":
            opts.splits = self._splits(opts)
        self.rows = self.dead = self.suspicious = self.excluded = self.quotes = self.blank = 0
        self.damage = []
        raw = self._parquet() if self._source.container == "parquet" else self._csv()
        convert = convert_trades if self.format == "trades" else convert_bars
        try:
            for cells, lines, dead, done in raw:
                fields = {name: cells.column(i) for name, i in self._fields.items()}
                try:
                    converted = convert(fields, cells.num_rows, opts)
                except CONVERT_ERRORS as exc:  # a column of a type no converter takes
                    self._lost_rows(lines, _first_line(exc))
                    if dead:
                        self.dead += len(dead)
                        yield FeedBatch(self.kind, self._empty(), dead, done, self._source.size)
                    continue
                yield from self._emit(cells, lines, dead, done, converted)
        finally:
            self.close()
        for damage in self.damage:
            logger.warning("%s", damage)
        logger.info(
            "%s: %d rows replayed, %d to dead letters, %d suspicious left out, "
            "%d left out by condition, %d blank lines skipped",
            self.name,
            self.rows,
            self.dead,
            self.suspicious,
            self.excluded,
            self.blank,
        )

    def _adjusting(self, adjust: str) -> str:
        """Check ``adjust`` against the file; read the adjusted close only when adjusting."""
        if adjust not in ADJUST_MODES:
            raise ValueError(f"adjust must be one of {', '.join(ADJUST_MODES)}, not {adjust!r}")
        fields = self._layout.fields
        if adjust == "none":
            if "adj_close" in fields:
                kept = {name: i for name, i in fields.items() if name != "adj_close"}
                self._layout = Layout(self._layout.kind, kept)
            return adjust
        if self._layout.kind != "bars":
            raise InputError(f"{self.name}: --adjust {adjust} applies to bar files, not trades")
        if "adj_close" not in fields:
            found = ", ".join(self._source.header)
            raise InputError(
                f"{self.name}: --adjust {adjust} needs an adjusted close column such as "
                f"'Adj Close' (columns found: {found}); map another name with "
                f"--columns NAME=adj_close, or replay the raw prices with --adjust none"
            )
        return adjust

    def _splits(self, opts: Options) -> SplitHistory:
        """The first pass of ``adjust="splits"``: the factors of the good rows, and their splits."""
        symbols: list[np.ndarray] = []
        starts: list[np.ndarray] = []
        factors: list[np.ndarray] = []
        raw = self._parquet() if self._source.container == "parquet" else self._csv()
        try:
            for cells, _lines, _dead, _done in raw:
                fields = {name: cells.column(i) for name, i in self._fields.items()}
                try:
                    conv = convert_bars(fields, cells.num_rows, opts)
                except CONVERT_ERRORS:  # the second pass reports it
                    continue
                good = np.ones(cells.num_rows, dtype=bool)
                good[list(conv.errors)] = False
                if conv.keep is not None:
                    good &= conv.keep.to_numpy(zero_copy_only=False)
                symbols.append(conv.columns[0].to_numpy(zero_copy_only=False)[good])
                starts.append(conv.columns[2].to_numpy(zero_copy_only=False)[good])
                assert conv.factor is not None
                factors.append(conv.factor.to_numpy(zero_copy_only=False)[good])
        finally:
            self.close()
        self.damage = []
        if not symbols:
            return SplitHistory({}, {})
        return SplitHistory.find(
            np.concatenate(symbols), np.concatenate(starts), np.concatenate(factors)
        )

    def close(self) -> None:
        """Close the file if a replay is in progress."""
        while self._open:
            self._open.pop().close()

    def __enter__(self) -> FileReplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _emit(
        self,
        cells: pa.RecordBatch,
        lines: np.ndarray,
        dead: list[DeadLetter],
        done: int,
        conv: Converted,
    ) -> Iterator[FeedBatch]:
        keep = conv.keep
        if conv.errors:
            good = np.ones(cells.num_rows, dtype=bool)
            for row in sorted(conv.errors):
                good[row] = False
                values = [value_at(cells.column(i), row) for i in range(cells.num_columns)]
                dead.append(
                    DeadLetter(
                        reason="parse",
                        error="; ".join(conv.errors[row]),
                        value=self._rejoin(values),
                        file=self.name,
                        line=int(lines[row]),
                    )
                )
            keep = pa.array(good) if keep is None else pc.and_(keep, pa.array(good))
            dead.sort(key=lambda letter: letter.line or 0)
        if self._exclude is not None:
            drop = excluded_rows(conv.columns[_CONDITION], self._exclude)
            if drop is not None:
                wanted = drop if keep is None else drop & keep.to_numpy(zero_copy_only=False)
                self.excluded += int(wanted.sum())
                keep = pa.array(~drop) if keep is None else pc.and_(keep, pa.array(~drop))
        data = pa.RecordBatch.from_arrays(
            [*conv.columns, pa.array(lines, pa.int64())], schema=_SCHEMAS[self.format]
        )
        quotes = conv.quotes
        if quotes is not None:  # the lines of their trades: a replay's segments cut both alike
            quotes = quotes.append_column(_LINE, pa.array(lines, pa.int64()))
        if keep is not None:
            data = data.filter(keep)
            quotes = quotes.filter(keep) if quotes is not None else None
        self.rows += data.num_rows
        self.dead += len(dead)
        self.suspicious += conv.suspicious
        if not data.num_rows and not dead:
            return
        for offset in range(0, max(data.num_rows, 1), self.batch_size):
            if quotes is not None:  # the quotes in force at these trades, before them
                part = quotes.slice(offset, self.batch_size)
                part = part.filter(pc.and_(pc.is_valid(part.column("bid")),
                                           pc.is_valid(part.column("ask"))))  # fmt: skip
                if part.num_rows:
                    self.quotes += part.num_rows
                    yield FeedBatch("quote", part, [], done, self._source.size)
            yield FeedBatch(
                self.kind,
                data.slice(offset, self.batch_size),
                dead if offset == 0 else [],
                done,
                self._source.size,
            )

    def _rejoin(self, values: list[Any]) -> bytes:
        if self._source.container == "parquet":
            values = [_readable(value) for value in values]
            return msgspec.json.encode(dict(zip(self._cells, values, strict=True)))
        out = io.StringIO()
        csv.writer(out, delimiter=self._source.delimiter, lineterminator="").writerow(values)
        return out.getvalue().encode()

    def _csv(self) -> Iterator[_Raw]:
        src = self._source
        names = [f"f{i}" for i in range(len(src.header))]
        types = dict.fromkeys(names, pa.string())
        if self.format == "trades" and "symbol" in self._layout.fields:
            types[names[self._layout.fields["symbol"]]] = TRADE_SCHEMA.field("symbol").type
        invalid: list[pa_csv.InvalidRow] = []

        def skip(row: pa_csv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        block = int(min(_MAX_BLOCK, max(_MIN_BLOCK, self.batch_size * src.row_bytes * 1.05)))
        try:
            source = Decompressed(str(src.path), src.compression)
        except OSError as exc:
            raise InputError(f"{self.name}: cannot read ({exc.strerror or exc})") from None
        self._open.append(source)
        clean = CleanLines(source, self.name, src.delimiter, fields=len(names))
        try:
            reader = pa_csv.open_csv(
                pa.PythonFile(clean, mode="r"),
                read_options=pa_csv.ReadOptions(
                    use_threads=False, block_size=block, column_names=names, skip_rows=1
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=src.delimiter, invalid_row_handler=skip, ignore_empty_lines=False
                ),
                convert_options=pa_csv.ConvertOptions(column_types=types),
            )
        except (OSError, EOFError, pa.ArrowException) as exc:
            if clean.lines > 1:
                raise InputError(f"{self.name}: cannot read as CSV ({_first_line(exc)})") from None
            # a header and no row (a header without line break, or cut off after it)
            if clean.dead:
                yield self._empty_cells(names, types), np.empty(0, np.int64), clean.dead, 0
            if source.broken is not None:
                self.damage.append(self._csv_damage(source.broken, clean.lines))
            return
        seen = reported = told = 0
        skipped = np.empty(0, dtype=np.int64)  # lines the reader left out, minus those before
        failure: str | None = None
        while True:
            try:
                cells = reader.read_next_batch()
            except StopIteration:
                break
            except (OSError, EOFError, pa.ArrowException) as exc:  # not expected: clean input
                failure = _first_line(exc)
                break
            dead = [self._invalid(row) for row in invalid[reported:]]
            if len(invalid) > reported:
                reported = len(invalid)
                numbers = np.array(sorted(r.number for r in invalid if r.number is not None))
                skipped = numbers - 2 - np.arange(len(numbers))
            ordinal = np.arange(seen, seen + cells.num_rows, dtype=np.int64)
            lines = ordinal + 2 + np.searchsorted(skipped, ordinal, side="right")
            seen += cells.num_rows
            # lines the cleaner emptied, up to this batch's last line: it reads ahead
            upto = int(lines[-1]) if len(lines) else 0
            first = told
            while told < len(clean.dead) and (clean.dead[told].line or 0) <= upto:
                dead.append(clean.dead[told])
                told += 1
            cells, lines = self._without_blank(cells, lines, clean.dead[first:told])
            dead.sort(key=lambda letter: letter.line or 0)
            yield cells, lines, dead, min(source.position, src.size)
        rest = [self._invalid(row) for row in invalid[reported:]] + clean.dead[told:]
        if rest:
            rest.sort(key=lambda letter: letter.line or 0)
            yield self._empty_cells(names, types), np.empty(0, np.int64), rest, source.position
        if source.broken is not None:
            self.damage.append(self._csv_damage(source.broken, clean.lines))
        elif failure is not None:
            self.damage.append(
                Damage(
                    self.name,
                    f"{self.name}: cannot read past line {clean.lines:,} ({failure})",
                    None,
                    clean.lines,
                )
            )

    def _without_blank(
        self, cells: pa.RecordBatch, lines: np.ndarray, emptied: list[DeadLetter]
    ) -> tuple[pa.RecordBatch, np.ndarray]:
        """Drop the rows whose every field is empty: blank lines and the cleaner's blanks.

        Found in a few vectorised passes, so a file of blank lines costs what
        its bytes cost; converted, each would fail every column and be
        bisected out one by one. A blank line of the file is counted in
        :attr:`blank`; a line the cleaner emptied is already a dead letter.
        """
        if not cells.num_rows:
            return cells, lines
        blank = np.ones(cells.num_rows, dtype=bool)
        for column in cells.columns:
            blank &= _empty_values(column)
            if not blank.any():
                return cells, lines
        gone = lines[blank]
        self.blank += len(gone) - int(np.isin(gone, [d.line for d in emptied]).sum())
        keep = ~blank
        return cells.filter(pa.array(keep)), lines[keep]

    def _csv_damage(self, broken: Broken, lines: int) -> Damage:
        if broken.start is not None:
            kept = (
                f"its rows were read, but those from the gzip member at byte "
                f"{broken.start:,} on may hold wrong values"
            )
        else:
            kept = f"rows up to line {lines:,} read, the rest of the file lost"
        message = f"{self.name}: damaged at byte {broken.offset:,}: {broken.what}; {kept}"
        return Damage(self.name, message, broken.offset, lines)

    @staticmethod
    def _empty_cells(names: list[str], types: dict[str, pa.DataType]) -> pa.RecordBatch:
        return pa.RecordBatch.from_arrays([pa.array([], types[n]) for n in names], names=names)

    def _empty(self) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist([], schema=_SCHEMAS[self.format])

    def _lost_rows(self, lines: np.ndarray, why: str) -> None:
        if not len(lines):
            return
        first, last = int(lines[0]), int(lines[-1])
        where = "rows" if self._source.container == "parquet" else "lines"
        self.damage.append(
            Damage(
                self.name,
                f"{self.name}: {where} {first:,}-{last:,} cannot be converted ({why})",
                None,
                first,
                len(lines),
            )
        )

    def _invalid(self, row: pa_csv.InvalidRow) -> DeadLetter:
        if row.number is None:
            logger.warning("%s: pyarrow gave no line number for a malformed row", self.name)
        error = f"expected {row.expected_columns} fields, found {row.actual_columns}"
        return DeadLetter(
            reason="parse", error=error, value=row.text.encode(), file=self.name, line=row.number
        )

    def _parquet_columns(self) -> None:
        """Read only the mapped columns; refuse a mapped column of nested values."""
        header, types = self._source.header, self._source.types
        for ours, index in self._layout.fields.items():
            kind = types[index] if index < len(types) else None
            if kind is not None and pa.types.is_nested(kind):
                raise InputError(
                    f"{self.name}: column {header[index]!r} (for {ours}) holds nested values "
                    f"({kind}); expected text, numbers or times"
                )
        if len(set(header)) < len(header):
            return  # duplicate names: select by position after reading
        wanted = sorted(set(self._layout.fields.values()))
        self._cells = tuple(header[i] for i in wanted)
        self._fields = {ours: wanted.index(i) for ours, i in self._layout.fields.items()}

    def _parquet(self) -> Iterator[_Raw]:
        try:
            parquet = pq.ParquetFile(self._source.path)
            self._open.append(parquet)
            meta = parquet.metadata
            sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
        except (OSError, pa.ArrowException) as exc:
            raise InputError(
                f"{self.name}: cannot read Parquet data ({_first_line(exc)})"
            ) from None
        total = max(sum(sizes), 1)
        columns = list(self._cells) if self._cells != self._source.header else None
        first = 0  # rows before the row group
        for group, size in enumerate(sizes):
            seen = first
            why = None
            try:
                for cells in parquet.iter_batches(
                    batch_size=self.batch_size, row_groups=[group], columns=columns
                ):
                    lines = np.arange(seen + 1, seen + 1 + cells.num_rows, dtype=np.int64)
                    seen += cells.num_rows
                    yield _checked(cells), lines, [], self._source.size * seen // total
            except (OSError, pa.ArrowException) as exc:
                why = _first_line(exc)
            if why is None and seen < first + size:  # a column shorter than its row group
                why = f"it ended after {seen - first:,} of its {size:,} rows"
            if why is not None:
                self.damage.append(
                    Damage(
                        self.name,
                        f"{self.name}: rows {seen + 1:,}-{first + size:,} unreadable (row group "
                        f"{group}: {why}); the other row groups were read",
                        None,
                        seen + 1,
                        first + size - seen,
                    )
                )
            first += size


def _empty_values(column: pa.Array) -> np.ndarray:
    """Which values of a text column (plain or dictionary) are null or empty."""
    if pa.types.is_dictionary(column.type):
        empty = _empty_values(column.dictionary)
        indices = pc.fill_null(column.indices, -1).to_numpy(zero_copy_only=False)
        return np.append(empty, True)[indices]  # a null index (-1) takes the appended True
    lengths = pc.fill_null(pc.binary_length(column), 0)
    return lengths.to_numpy(zero_copy_only=False) == 0


def _readable(value: Any) -> Any:
    """A Parquet value for a dead letter: bytes as text (bad bytes escaped), not base64."""
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


def _checked(cells: pa.RecordBatch) -> pa.RecordBatch:
    """The batch with each text column that is not valid UTF-8 as binary (see checked_text)."""
    given = cells.columns
    columns = [checked_text(column) for column in given]
    if all(new is old for new, old in zip(columns, given, strict=True)):
        return cells
    return pa.RecordBatch.from_arrays(columns, names=cells.schema.names)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
