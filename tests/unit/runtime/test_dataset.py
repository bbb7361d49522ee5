"""Every row the embedded pipeline stores carries the run's dataset."""

from pathlib import Path

import duckdb
import pytest

from marketpulse.alerts import PriceCrossRule
from marketpulse.exceptions import InputError
from marketpulse.feeds.replay import FileReplay
from marketpulse.runtime.embedded import EmbeddedPipeline, RunnerOptions
from marketpulse.stream.processor import ProcessorSettings

HEADER = "timestamp,symbol,price,size,exchange,condition,suspicious\n"
TABLES = ("trades", "bars", "indicators", "alerts", "dlq")


def _day(folder: Path) -> Path:
    """Two symbols over 40 s falling through 90, an unreadable line and a bad price."""
    lines = [
        f"2013-10-07T13:30:{s:02d}.000Z,{'SPY' if s % 2 else 'AIG'},{100.0 - s * s / 20},100,P,,0\n"
        for s in range(40)
    ]
    lines.insert(5, "2013-10-07T13:30:05.500Z,SPY,not a price,100,P,,0\n")  # the feed's dlq
    lines.insert(9, "2013-10-07T13:30:08.500Z,SPY,-5,100,P,,0\n")  # the processor's dlq
    folder.mkdir()
    path = folder / "trades.csv"
    path.write_text(HEADER + "".join(lines))
    return path


def _datasets(lake: Path) -> dict[str, dict[str, int]]:
    """Table → dataset → rows, read from the lake's Parquet files by DuckDB."""
    found = {}
    for table in TABLES:
        files = str(lake / table / "**" / "*.parquet")
        rows = duckdb.sql(
            f"SELECT dataset, count(*) FROM read_parquet('{files}', hive_partitioning = true) "
            "GROUP BY 1"
        ).fetchall()
        found[table] = dict(rows)
    return found


def _run(path: Path, lake: Path, dataset: str | None) -> EmbeddedPipeline:
    options = RunnerOptions(
        lake=str(lake), processor=ProcessorSettings(intervals=("1s",)), dataset=dataset,
        rules=[PriceCrossRule(name="p90", level=90.0, cooldown=0)],
    )  # fmt: skip
    pipeline = EmbeddedPipeline(FileReplay(path, batch_size=8), options)
    pipeline.run()
    return pipeline


@pytest.mark.parametrize(("dataset", "expected"), [(None, "lean-day-trades"), ("mine", "mine")])
def test_every_table_holds_the_runs_dataset_only(tmp_path, dataset, expected):
    lake = tmp_path / "lake"
    pipeline = _run(_day(tmp_path / "lean-day"), lake, dataset)
    assert pipeline.dataset == expected
    found = _datasets(lake)
    # each table got rows (both kinds of dead letter among them), all of the run's dataset
    assert {table: list(rows) for table, rows in found.items()} == {t: [expected] for t in TABLES}
    assert found["dlq"][expected] == 2
    assert found["trades"][expected] == 40


def test_two_datasets_of_one_file_stay_apart(tmp_path):
    path, lake = _day(tmp_path / "day"), tmp_path / "lake"
    _run(path, lake, "first")
    _run(path, lake, "second")
    found = _datasets(lake)
    for table in TABLES:
        assert found[table].keys() == {"first", "second"}
        assert found[table]["first"] == found[table]["second"] > 0


@pytest.mark.parametrize("name", ["", "a b", "../up", "-x"])
def test_a_bad_dataset_name_is_refused_before_the_run(tmp_path, name):
    options = RunnerOptions(lake=str(tmp_path / "lake"), dataset=name)
    with pytest.raises(InputError, match="is not a dataset name"):
        EmbeddedPipeline(FileReplay(_day(tmp_path / "day")), options)
    assert not (tmp_path / "lake").exists()
