"""Dataset names: the rule a name follows and the default name of a replayed file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketpulse.exceptions import InputError
from marketpulse.feeds.dataset import (
    GENERIC_STEMS,
    check_dataset,
    feed_dataset,
    file_dataset,
    is_dataset_name,
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("../shared/data/kaggle-stock-exchange/indexProcessed.csv", "indexProcessed"),
        ("/data/lean-2013-10-07/trades.csv.gz", "lean-2013-10-07-trades"),
        ("/data/lean-2013-10-07/quotes.csv.gz", "lean-2013-10-07-quotes"),
        ("/x/yahoo/SPY.csv", "SPY"),
        ("/x/ticks.parquet", "ticks"),
        ("/x/AAPL.CSV.GZ", "AAPL"),
        ("/x/2013/minute_bars.csv.zst", "2013-minute_bars"),
        ("/x/dump/data.parquet", "dump-data"),
        ("/x/y/export.2013.csv", "export.2013"),  # only known extensions go
        ("/x/my prices (v2).csv", "my-prices-v2"),
        ("/x/_hidden.csv", "hidden"),
    ],
)
def test_file_dataset_is_the_files_name_or_folder_and_name(path, expected):
    assert file_dataset(path) == expected


def test_a_generic_file_in_the_working_directory_takes_its_name(tmp_path, monkeypatch):
    folder = tmp_path / "lean-day"
    folder.mkdir()
    monkeypatch.chdir(folder)
    assert file_dataset(Path("trades.csv.gz")) == "lean-day-trades"


def test_a_file_named_only_by_an_extension_keeps_a_valid_name():
    assert file_dataset("/x/.csv") == "csv"
    assert file_dataset("/x/é.csv") == "file"


@pytest.mark.parametrize("name", ["simulator", "lean-2013-10-07", "a", "A.b_c-d", "9" * 64])
def test_valid_names_pass(name):
    assert check_dataset(name) == name


@pytest.mark.parametrize(
    "name", ["", "-lead", ".hidden", "a b", "a/b", "semi;colon", "x" * 65, "é", "a\nb"]
)
def test_invalid_names_are_refused_in_one_line_naming_the_option(name):
    with pytest.raises(InputError) as caught:
        check_dataset(name, "--dataset")
    message = str(caught.value)
    assert message.startswith("--dataset: ")
    assert "\n" not in message.replace(repr(name), "")


@given(st.text(max_size=80))
def test_every_default_name_is_valid(name):
    if "/" in name or "\x00" in name:
        return
    for parent in ("", "folder"):
        assert is_dataset_name(file_dataset(Path("/", parent, name or "x")))


def test_generic_stems_are_those_of_the_contract():
    assert {"trades", "quotes", "bars", "data", "minute_bars"} == GENERIC_STEMS


class _Feed:
    def __init__(self, name, **attributes):
        self.name = name
        self.__dict__.update(attributes)


def test_feed_dataset_follows_the_source(tmp_path):
    from marketpulse.feeds import FileReplay

    folder = tmp_path / "lean-day"
    folder.mkdir()
    (folder / "trades.csv").write_text("timestamp,symbol,price,size\n")
    assert feed_dataset(FileReplay(folder / "trades.csv")) == "lean-day-trades"
    assert feed_dataset(_Feed("simulator")) == "simulator"
    assert feed_dataset(_Feed("polygon")) == "polygon"  # a vendor feed is named after it
    assert feed_dataset(_Feed("polygon", dataset="mine")) == "mine"
    with pytest.raises(InputError, match="polygon: dataset"):
        feed_dataset(_Feed("polygon", dataset="not mine"))
