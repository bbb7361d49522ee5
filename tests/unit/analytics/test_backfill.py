"""Backfill of one dataset: its trades read back exactly, its outputs replaced, others kept."""

from pathlib import Path

import pyarrow as pa
import pytest

from marketpulse.analytics.backfill import backfill, lake_datasets, lake_trades
from marketpulse.exceptions import InputError
from marketpulse.feeds.replay import FileReplay
from marketpulse.models import TRADE_SCHEMA
from marketpulse.sinks import LakeSink
from marketpulse.stream import ProcessorSettings

T0 = 1_381_152_600 * 10**9  # 2013-10-07 13:30 UTC
SETTINGS = ProcessorSettings(intervals=("1s",), lateness=0.0)


def _trades(dataset: str, n: int = 50, odd_ns: int = 123) -> pa.Table:
    """``n`` trades 100 ms apart, each time off the microsecond by ``odd_ns``."""
    return pa.table(
        {
            "symbol": pa.array(["SPY", "AIG"] * (n // 2)).dictionary_encode(),
            "ts": pa.array([T0 + i * 10**8 + odd_ns for i in range(n)], pa.int64()),
            "price": [100.0 + i / 10 for i in range(n)],
            "size": [100.0] * n,
            "exchange": ["P"] * n,
            "condition": [None] * n,
            "dataset": [dataset] * n,
        },
        schema=TRADE_SCHEMA,
    )


def _lake(root: Path, *datasets: str) -> Path:
    sink = LakeSink(root)
    for dataset in datasets:
        sink.write("trades", _trades(dataset))
    sink.close()
    return root


def _files(root: Path, table: str, dataset: str) -> set[Path]:
    return set((root / table / f"dataset={dataset}").rglob("*.parquet"))


def test_lake_trades_are_read_back_to_the_nanosecond_in_arrival_order(tmp_path):
    root = _lake(tmp_path / "lake", "a", "b")
    assert lake_datasets(root) == ["a", "b"]
    batches = [data for _, data in lake_trades(root, "a")]
    table = pa.Table.from_batches(batches)
    assert table.schema == TRADE_SCHEMA
    expected = _trades("a")
    assert table.column("ts").to_pylist() == expected.column("ts").to_pylist()
    assert table.column("price").to_pylist() == expected.column("price").to_pylist()
    assert table.column("dataset").null_count == table.num_rows  # the processor's to stamp


def test_a_lake_of_several_datasets_needs_one_named(tmp_path):
    root = _lake(tmp_path / "lake", "a", "b")
    with pytest.raises(InputError, match="2 datasets; choose one with --dataset: a, b"):
        backfill(root, root, SETTINGS)
    with pytest.raises(InputError, match="no trades of dataset 'c'"):
        backfill(root, root, SETTINGS, dataset="c")
    assert not (root / "bars").exists()  # nothing written


def test_backfill_replaces_the_datasets_outputs_only(tmp_path):
    root = _lake(tmp_path / "lake", "a", "b")
    first = {d: backfill(root, root, SETTINGS, dataset=d) for d in ("a", "b")}
    assert first["a"].dataset == "a" and first["a"].bars > 0
    kept = _files(root, "bars", "b")
    older = _files(root, "bars", "a")
    again = backfill(root, root, SETTINGS, dataset="a")
    assert again.bars == first["a"].bars
    assert _files(root, "bars", "b") == kept  # the other dataset's files untouched
    newer = _files(root, "bars", "a")
    assert newer and not newer & older  # every earlier file of the dataset replaced


def test_backfill_of_a_file_is_the_files_dataset_or_the_one_named(tmp_path):
    path = tmp_path / "day.csv"
    rows = [f"2013-10-07T13:30:{s:02d}.000Z,SPY,{100 + s},100" for s in range(20)]
    path.write_text("timestamp,symbol,price,size\n" + "\n".join(rows) + "\n")
    root = tmp_path / "lake"
    assert backfill(FileReplay(path), root, SETTINGS).dataset == "day"
    assert backfill(FileReplay(path), root, SETTINGS, dataset="named").dataset == "named"
    assert sorted(p.name for p in (root / "bars").iterdir()) == ["dataset=day", "dataset=named"]
    with pytest.raises(InputError, match="is not a dataset name"):
        backfill(FileReplay(path), root, SETTINGS, dataset="no good")
