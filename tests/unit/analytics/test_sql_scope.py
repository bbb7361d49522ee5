"""Which lake tables a query reads, and which datasets it mixes (no file is read)."""

import pyarrow as pa
import pytest

from marketpulse.analytics import Lake
from marketpulse.analytics.sql_scope import mixed_datasets, tables_read


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("SELECT * FROM bars", {"bars"}),
        ("SELECT * FROM bars_with_indicators", {"bars", "indicators"}),
        ("WITH bars AS (SELECT 1) SELECT * FROM bars", set()),  # a CTE of that name
        ("SELECT 1", set()),
        # the parser cannot bind this one without the tables: the tokens decide
        ("SELECT * FROM alerts a JOIN trades t USING (symbol)", {"alerts", "trades"}),
        ("SELECT * FROM custom WHERE EXISTS (SELECT 1 FROM dlq)", {"custom", "dlq"}),
    ],
)
def test_tables_read(sql, tables):
    assert tables_read(sql) == tables


def _lake(root, datasets):
    for table, names in datasets.items():
        for name in names:
            (root / table / f"dataset={name}").mkdir(parents=True)
    return Lake(root)


def test_a_query_over_tables_of_several_datasets_mixes_them(tmp_path):
    lake = _lake(tmp_path, {"bars": ["a"], "indicators": ["b"], "trades": ["c"]})
    assert mixed_datasets(lake, "SELECT * FROM bars_with_indicators") == ["a", "b"]
    assert mixed_datasets(lake, "SELECT * FROM bars") == []  # one dataset
    assert mixed_datasets(lake, "SELECT 'dataset' FROM bars b JOIN trades USING (symbol)") == [
        "a", "c"]  # fmt: skip
    # naming the column keeps datasets apart (a filter, a group), quoted or not
    assert mixed_datasets(lake, 'SELECT * FROM bars_with_indicators WHERE "dataset" = 1') == []
    assert mixed_datasets(lake, "SELECT b.Dataset FROM bars_with_indicators b") == []


def test_a_lake_scoped_to_one_dataset_mixes_none(tmp_path):
    _lake(tmp_path, {"bars": ["a", "b"]})
    assert mixed_datasets(Lake(tmp_path, dataset="a"), "SELECT * FROM bars") == []
    assert isinstance(Lake(tmp_path, dataset="a").query("SELECT * FROM bars"), pa.Table)


def test_a_lake_that_cannot_be_listed_gets_no_note_and_no_error(tmp_path, monkeypatch):
    lake = _lake(tmp_path, {"bars": ["a", "b"]})

    def unlistable(directory):
        raise OSError(f"cannot list {directory}")

    monkeypatch.setattr(lake.store, "directories", unlistable)
    assert mixed_datasets(lake, "SELECT * FROM bars") == []
