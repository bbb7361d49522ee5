"""A full disk under the lake becomes one error naming the place and the room needed."""

from __future__ import annotations

import errno

import pyarrow as pa
import pytest

from marketpulse.exceptions import RunFailure
from marketpulse.sinks import LakeSink
from marketpulse.sinks.exceptions import StorageFullError
from marketpulse.sinks.lake_space import full_disk_error


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_no_space_names_the_lake_its_free_space_and_the_room_needed(tmp_path, code):
    error = full_disk_error(OSError(code, "No space left on device"), tmp_path, 3_000_000, 0.25)
    assert isinstance(error, StorageFullError) and isinstance(error, RunFailure)
    assert str(error).startswith(f"no space left on the lake's disk at {tmp_path} (")
    assert " free): " in str(error)
    assert "need about 750.0 kB there" in str(error)  # in memory, times the files' ratio
    first = full_disk_error(OSError(code, "full"), tmp_path, 3_000_000, None)
    assert "need up to 3.0 MB there" in str(first)  # nothing stored yet: the bound


@pytest.mark.parametrize(
    "exc", [OSError(errno.EACCES, "Permission denied"), ValueError("bad"), OSError("no errno")]
)
def test_other_errors_are_left_as_they_are(tmp_path, exc):
    assert full_disk_error(exc, tmp_path, 1, None) is None


def test_a_flush_on_a_full_disk_keeps_its_rows_and_raises_the_named_error(tmp_path, monkeypatch):
    sink = LakeSink(tmp_path / "lake")
    trades = pa.table({
        "symbol": ["SPY"] * 3, "ts": [1_381_150_800_000_000_000 + i for i in range(3)],
        "price": [167.0, 167.1, 167.2], "size": [100.0] * 3, "exchange": ["Q"] * 3,
        "condition": [""] * 3, "dataset": ["d"] * 3,
    })  # fmt: skip

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    sink.write("trades", trades)
    with monkeypatch.context() as patch:
        patch.setattr(sink.store, "make_durable", full)
        with pytest.raises(StorageFullError, match=r"disk at .*lake \("):
            sink.flush()
    assert sink.stats.rows["trades"] == 0 and sink.stats.buffered["trades"] == 3
    sink.close()  # room again: the rows kept are stored
    assert sink.stats.rows["trades"] == 3
