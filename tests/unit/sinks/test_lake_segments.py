"""A replayed input's segment files: a rerun replaces them, by name or by the lines they hold."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from marketpulse.sinks import InputSegment, LakeSink

ORIGIN = "0123456789abcdef"
OTHER = "fedcba9876543210"


def names(root: Path, table: str) -> list[str]:
    return sorted(p.name for p in (root / table).rglob("*.parquet"))


def rows_in(root: Path, table: str) -> int:
    return sum(pq.read_metadata(p).num_rows for p in (root / table).rglob("*.parquet"))


def replay(root: Path, rows: pa.Table, cuts: list[tuple[int, int, int, int]], done: bool) -> None:
    """Write rows[lo:hi] as segment first-last of ORIGIN for each cut; end the source if done."""
    with LakeSink(root) as sink:
        for lo, hi, first, last in cuts:
            sink.write("bars", rows.slice(lo, hi - lo), InputSegment(ORIGIN, first))
            sink.end_segment(ORIGIN, first, last)
        if done:
            sink.end_source(ORIGIN)


def test_rows_of_a_segment_wait_for_its_end_not_for_size_or_age(make_rows, tmp_path):
    with LakeSink(tmp_path, max_rows=5, max_age_s=0) as sink:
        sink.write("bars", make_rows("bars", 10), InputSegment(ORIGIN, 1))
        assert sink.due() is False
        sink.flush()
        assert names(tmp_path, "bars") == []
        sink.end_segment(ORIGIN, 1, 100)
    assert names(tmp_path, "bars") == ["part-f0123456789abcdef-000000000001-000000000100.parquet"]


def test_the_tables_of_a_segment_are_published_together_or_not_at_all(
    make_rows, tmp_path, monkeypatch
):
    real = pq.ParquetWriter.write_table
    failed = []

    def alerts_fail(writer, table, *args, **kwargs):
        if "rule" in table.column_names:  # the alerts' file
            failed.append(table.num_rows)
            raise OSError(28, "No space left on device")
        return real(writer, table, *args, **kwargs)

    sink = LakeSink(tmp_path)
    sink.write("bars", make_rows("bars", 10), InputSegment(ORIGIN, 1))
    sink.write("alerts", make_rows("alerts", 3), InputSegment(ORIGIN, 1))
    with monkeypatch.context() as patch:
        patch.setattr(pq.ParquetWriter, "write_table", alerts_fail)
        with pytest.raises(OSError):
            sink.end_segment(ORIGIN, 1, 100)
    assert failed == [3]  # the alerts' file failed; the bars' was written
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]  # neither is published
    sink.end_segment(ORIGIN, 1, 100)  # ending it again writes both
    sink.close()
    assert (rows_in(tmp_path, "bars"), rows_in(tmp_path, "alerts")) == (10, 3)
    assert not list(tmp_path.rglob(".*.tmp"))


def test_a_rerun_replaces_the_files_of_the_same_segments(make_rows, tmp_path):
    rows = make_rows("bars", 30)
    cuts = [(0, 10, 1, 100), (10, 30, 101, 200)]
    replay(tmp_path, rows, cuts[:1], done=False)  # killed after its first segment
    replay(tmp_path, rows, cuts, done=True)
    replay(tmp_path, rows, cuts, done=True)
    assert rows_in(tmp_path, "bars") == 30
    assert len(names(tmp_path, "bars")) == 2


def test_a_rerun_cut_elsewhere_replaces_what_it_overlaps_and_sweeps_the_rest(make_rows, tmp_path):
    rows = make_rows("bars", 30)
    # a paced run, stopped: segments cut by age
    replay(tmp_path, rows, [(0, 7, 1, 70), (7, 12, 71, 120)], done=False)
    assert rows_in(tmp_path, "bars") == 12
    with LakeSink(tmp_path) as sink:  # another input's files are not touched
        sink.write("bars", rows.slice(0, 3), InputSegment(OTHER, 1))
        sink.end_segment(OTHER, 1, 100)
    replay(tmp_path, rows, [(0, 10, 1, 100)], done=False)  # overlaps both earlier files
    assert rows_in(tmp_path, "bars") == 10 + 3
    replay(tmp_path, rows, [(0, 10, 1, 100), (10, 30, 101, 200)], done=True)
    assert rows_in(tmp_path, "bars") == 30 + 3


def test_a_finished_rerun_removes_files_it_did_not_write_again(make_rows, tmp_path):
    rows = make_rows("dlq", 4)
    with LakeSink(tmp_path) as sink:  # an earlier run rejected rows the rerun keeps
        sink.write("dlq", rows, InputSegment(ORIGIN, 1))
        sink.end_segment(ORIGIN, 1, 100)
    with LakeSink(tmp_path) as sink:
        sink.write("bars", make_rows("bars", 2), InputSegment(ORIGIN, 101))
        sink.end_segment(ORIGIN, 101, 200)
        assert rows_in(tmp_path, "dlq") == 4  # not before the rerun is done
        sink.end_source(ORIGIN)
    assert rows_in(tmp_path, "dlq") == 0
    assert rows_in(tmp_path, "bars") == 2


def test_a_segment_not_ended_at_close_is_written_not_lost(make_rows, tmp_path):
    with LakeSink(tmp_path) as sink:
        sink.write("bars", make_rows("bars", 3), InputSegment(ORIGIN, 7))
    assert rows_in(tmp_path, "bars") == 3


def test_an_origin_is_16_hex_digits():
    with pytest.raises(ValueError, match="invalid input segment"):
        InputSegment("../../etc", 1)
