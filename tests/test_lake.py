"""The lake swaps partition versions atomically: a failed write leaves the old version whole and no litter.

And its root is configured as a URI: a local path (the default, `<data dir>/lake`) or an S3 bucket.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines.lake import Lake, lake_from_env, remove_orphans
from pipelines.resources import Archive

DAY = dt.date(2026, 11, 20)
SCHEMA = pa.schema([("workspace_id", pa.string()), ("id", pa.string())])


def _batch(ids: list[str]) -> pa.Table:
    return pa.table({"workspace_id": ["ws"] * len(ids), "id": ids}, schema=SCHEMA)


def test_new_version_replaces_old_only_on_success(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with lake.write_partition("raw_messages", "ws", DAY, SCHEMA) as writer:
        writer.write_table(_batch(["a", "b"]))
    with pytest.raises(RuntimeError), lake.write_partition("raw_messages", "ws", DAY, SCHEMA) as writer:
        writer.write_table(_batch(["c"]))
        raise RuntimeError("crash in the middle of a write")
    frame = lake.scan_partition("raw_messages", "ws", DAY).collect()
    assert frame["id"].to_list() == ["a", "b"]
    assert [p.name for p in lake.partition_dir("raw_messages", "ws", DAY).iterdir()] == ["data.parquet"]


def test_orphans_of_a_killed_writer_are_invisible_then_removed(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with lake.write_partition("raw_messages", "ws", DAY, SCHEMA) as writer:
        writer.write_table(_batch(["a"]))
    directory = lake.partition_dir("raw_messages", "ws", DAY)
    (directory / ".data.parquet.deadbeef.tmp").write_bytes(b"PAR1 half written")
    # Readers that do not know our code skip hidden files.
    assert ds.dataset(tmp_path / "raw_messages", format="parquet").to_table().num_rows == 1
    assert lake.scan("raw_messages").collect().height == 1
    assert remove_orphans(directory) == 1
    assert lake.partitions("raw_messages") == [("ws", DAY)]


def test_the_layout_is_hive_partitioned(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    with lake.write_partition("raw_messages", "ws", DAY, SCHEMA) as writer:
        writer.write_table(_batch(["a"]))
    dataset = ds.dataset(tmp_path / "raw_messages", format="parquet", partitioning="hive")
    assert dataset.to_table().column("date").to_pylist() == [DAY.isoformat()]
    assert pl.scan_parquet(tmp_path / "raw_messages" / "**" / "*.parquet").collect()["id"].to_list() == ["a"]


def test_the_lake_uri_is_a_local_path_or_an_s3_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert Lake.from_uri("lake") == Lake(tmp_path / "lake")
    assert Lake.from_uri(f"file://{tmp_path}/lake") == Lake(tmp_path / "lake")
    assert Lake(str(tmp_path)) == Lake(tmp_path) and Lake(str(tmp_path)).is_local
    assert Lake.from_uri("s3://bucket/some/prefix/").uri == "s3://bucket/some/prefix"
    assert Lake.from_uri("s3://bucket").uri == "s3://bucket"
    assert not Lake.from_uri("s3://bucket").is_local
    for wrong in (
        "",
        "s3://",
        "s3:///prefix",
        "s3://bucket/p?region=eu-west-1",
        "s3://key:secret@bucket",
        "gs://b",
    ):
        with pytest.raises(ValueError):
            Lake.from_uri(wrong)


def test_the_lake_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIRD_ETL_LAKE", raising=False)
    assert lake_from_env(tmp_path) == Lake(tmp_path / "lake")
    monkeypatch.setenv("BIRD_ETL_LAKE", "s3://archive/bird")
    assert lake_from_env(tmp_path).uri == "s3://archive/bird"
    assert Archive(data_dir=str(tmp_path)).lake.uri == "s3://archive/bird"
    assert Archive(data_dir=str(tmp_path), lake_uri=str(tmp_path / "elsewhere")).lake == Lake(
        tmp_path / "elsewhere"
    )
    monkeypatch.setenv("BIRD_ETL_LAKE", "azure://container")
    with pytest.raises(ValueError, match="BIRD_ETL_LAKE"):
        lake_from_env(tmp_path)
    with pytest.raises(dg.Failure, match="BIRD_ETL_LAKE"):
        _ = Archive(data_dir=str(tmp_path)).lake
