"""The lake swaps partition versions atomically: a failed write leaves the old version whole and no litter."""

import datetime as dt
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines.lake import Lake, remove_orphans

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
