"""LakeLocation: parsing local and S3 roots, the masked str, listing and globbing."""

import duckdb
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from marketpulse.config import S3Settings, Secret
from marketpulse.exceptions import ConfigError
from marketpulse.sinks.lake_location import LakeLocation, LakeLocationError, is_s3

SETTINGS = S3Settings(
    endpoint="http://127.0.0.1:9000",
    region="eu-west-1",
    access_key_id="AKIDEXAMPLE",
    secret_access_key=Secret("hush-hush"),
)


def test_a_local_root_is_kept_as_named(tmp_path):
    location = LakeLocation.of(tmp_path / "lake")
    assert not location.is_s3 and location.root == str(tmp_path / "lake")
    assert location.bucket == location.prefix == ""
    assert location.local_path == tmp_path / "lake"
    assert location.path("bars", "dataset=x") == f"{tmp_path}/lake/bars/dataset=x"
    assert location.uri("bars/dataset=x/") == str(tmp_path / "lake" / "bars" / "dataset=x")
    assert isinstance(location.filesystem, pafs.LocalFileSystem)
    assert not location.exists()
    (tmp_path / "lake").mkdir()
    assert location.exists()


@pytest.mark.parametrize(
    ("root", "bucket", "prefix"),
    [
        ("s3://market/lake", "market", "lake"),
        ("s3://market/a//b/", "market", "a/b"),
        ("S3://market", "market", ""),
        ("s3://my.bucket-1/", "my.bucket-1", ""),
    ],
)
def test_s3_roots_are_parsed_into_bucket_and_prefix(root, bucket, prefix):
    location = LakeLocation.of(root, SETTINGS)
    assert location.is_s3 and is_s3(location) and is_s3(root)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.root == f"s3://{bucket}/{prefix}".rstrip("/")
    assert location.base == f"{bucket}/{prefix}".rstrip("/")
    assert location.path("bars") == f"{location.base}/bars"
    assert location.uri("bars", "dataset=x") == f"{location.root}/bars/dataset=x"
    assert location.joinpath("bars").s3 == SETTINGS
    assert isinstance(location.filesystem, pafs.S3FileSystem)
    assert location.filesystem is location.filesystem  # made once


def test_of_returns_a_location_as_is_and_equal_roots_are_equal():
    location = LakeLocation.of("s3://market/lake/", SETTINGS)
    assert LakeLocation.of(location) is location
    assert location == LakeLocation("s3://market/lake", SETTINGS)
    assert location != LakeLocation("s3://market/lake")  # other settings: another store
    assert len({location, LakeLocation("s3://market/lake", SETTINGS)}) == 1


def test_str_and_repr_never_show_the_secret():
    location = LakeLocation.of("s3://market/lake", SETTINGS)
    assert str(location) == "s3://market/lake"
    assert "hush-hush" not in repr(location) and "hush-hush" not in f"{location}"
    assert "127.0.0.1:9000" in repr(location)


@pytest.mark.parametrize(
    ("root", "says"),
    [
        ("", "empty location"),
        ("   ", "empty location"),
        ("gs://bucket/lake", "expected a directory or s3://bucket/prefix"),
        ("file:///tmp/lake", "expected a directory or s3://bucket/prefix"),
        ("s3:/bucket/lake", "expected a directory or s3://bucket/prefix"),
        ("s3://", "is not an S3 bucket name"),
        ("s3:///lake", "is not an S3 bucket name"),
        ("s3://Market_Data/lake", "is not an S3 bucket name"),
        ("s3://market/lake?versionId=1", "without ? or #"),
        ("s3://market/../lake", "'.' and '..'"),
    ],
)
def test_bad_roots_are_one_clear_error(root, says):
    with pytest.raises(LakeLocationError) as raised:
        LakeLocation.of(root)
    assert isinstance(raised.value, ConfigError)  # the CLI prints one line, exit 2
    message = str(raised.value)
    assert message.startswith("lake") and says in message and "\n" not in message


def test_credentials_in_the_url_are_refused_without_showing_them():
    with pytest.raises(LakeLocationError) as raised:
        LakeLocation.of("s3://AKID:hush-hush@market/lake")
    assert "hush-hush" not in str(raised.value) and "[s3] settings" in str(raised.value)


def _parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"ts": rows, "v": [r * 10 for r in rows]}), path)


def test_listing_and_globbing_skip_hidden_files(tmp_path):
    location = LakeLocation.of(tmp_path)
    _parquet(tmp_path / "trades/dataset=a/period=2024-01-02/part-2.parquet", [3])
    _parquet(tmp_path / "trades/dataset=a/period=2024-01-01/part-1.parquet", [1, 2])
    _parquet(tmp_path / "trades/dataset=a/period=2024-01-01/.part-9-1.tmp", [9])
    _parquet(tmp_path / "trades/dataset=b/period=2024-01-01/part-1.parquet", [5])
    _parquet(tmp_path / ".drop/trades-dataset=c/period=2024-01-01/part-1.parquet", [7])
    assert location.directories("trades") == ["dataset=a", "dataset=b"]
    assert location.directories() == ["trades"]
    assert location.directories("nothing/here") == []
    assert location.glob("trades/dataset=a/*/*.parquet") == [
        "trades/dataset=a/period=2024-01-01/part-1.parquet",
        "trades/dataset=a/period=2024-01-02/part-2.parquet",
    ]
    assert location.glob("trades/dataset=*/*/*") == [
        "trades/dataset=a/period=2024-01-01/part-1.parquet",
        "trades/dataset=a/period=2024-01-02/part-2.parquet",
        "trades/dataset=b/period=2024-01-01/part-1.parquet",
    ]
    assert location.glob("*/*/*/*.parquet") == location.glob("trades/*/*/*.parquet")
    assert location.glob("quotes/*/*/*.parquet") == []
    files = [i.path for i in location.entries("trades", recursive=True)
             if i.type == pafs.FileType.File]  # fmt: skip
    assert len(files) == 3 and not any(".tmp" in f for f in files)
    assert location.newest_change("trades/dataset=a") > 0
    assert location.newest_change("trades/dataset=zzz") == 0


def test_parquet_scan_reads_rows_in_written_order(tmp_path):
    location = LakeLocation.of(tmp_path)
    _parquet(tmp_path / "t/b.parquet", [1, 1])
    _parquet(tmp_path / "t/a.parquet", [1, 0])
    con = duckdb.connect()
    source = location.parquet_scan(con, "src", location.glob("t/*.parquet"), ["ts", "v"])
    rows = con.sql(f"SELECT ts, v FROM {source} ORDER BY ts, filename, file_row_number").fetchall()
    assert rows == [(0, 0), (1, 10), (1, 10), (1, 10)]
    assert con.execute(f"SELECT count(DISTINCT filename) FROM {source}").fetchall() == [(2,)]
    with pytest.raises(ValueError):
        location.parquet_scan(con, "src", [], ["ts"])


def test_files_lists_every_visible_file_below(tmp_path):
    location = LakeLocation.of(tmp_path)
    _parquet(tmp_path / "bars/dataset=a/timeframe=1m/period=2024-01-01/p.parquet", [1])
    _parquet(tmp_path / "bars/dataset=a/timeframe=1m/period=2024-01-01/.p.parquet.1.tmp", [1])
    (tmp_path / "bars/dataset=a/notes.txt").write_text("x")
    assert location.files("bars/dataset=a", ".parquet") == [
        "bars/dataset=a/timeframe=1m/period=2024-01-01/p.parquet"
    ]
    assert len(location.files("")) == 2 and location.files("none") == []
    location.delete_file("bars/dataset=a/timeframe=1m/period=2024-01-01/p.parquet")
    location.delete_file("bars/dataset=a/timeframe=1m/period=2024-01-01/p.parquet")  # gone: fine
    (tmp_path / "bars/dataset=a/timeframe=1m/period=2024-01-01/.p.parquet.1.tmp").unlink()
    location.delete_empty_directories("bars/dataset=a")
    assert not (tmp_path / "bars/dataset=a/timeframe=1m").exists()
    assert (tmp_path / "bars/dataset=a/notes.txt").exists()
