"""The Parquet lake: deterministic partition paths and atomic partition versions.

Layout (Hive-style, readable by any engine):
    {root}/{dataset}/workspace_id={ws}/date={YYYY-MM-DD}/data.parquet

A new version of a partition is written to a hidden temporary file beside the old one and swapped in with
`os.replace`, so readers see either the whole old version or the whole new one, never a half-written file.
Temporary files are hidden (leading dot, `.tmp` suffix) and so skipped by `*.parquet` globs and by
`pyarrow.dataset`; a crashed writer's leftovers are removed the next time the partition is written.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

PARTITION_FILE = "data.parquet"
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class Lake:
    """A lake rooted at a local directory."""

    root: Path

    def partition_dir(self, dataset: str, workspace_id: str, day: dt.date) -> Path:
        return self.root / dataset / f"workspace_id={workspace_id}" / f"date={day.isoformat()}"

    def partition_file(self, dataset: str, workspace_id: str, day: dt.date) -> Path:
        return self.partition_dir(dataset, workspace_id, day) / PARTITION_FILE

    def snapshot_file(self, dataset: str, workspace_id: str) -> Path:
        """An unpartitioned dataset (a dimension such as channels) of one workspace."""
        return self.root / dataset / f"workspace_id={workspace_id}" / PARTITION_FILE

    def write_snapshot(self, dataset: str, workspace_id: str, table: pa.Table) -> None:
        """Replace the workspace's snapshot of an unpartitioned dataset, atomically."""
        write_table_atomically(table, self.snapshot_file(dataset, workspace_id))

    def scan_snapshot(self, dataset: str, workspace_id: str) -> pl.LazyFrame | None:
        path = self.snapshot_file(dataset, workspace_id)
        return pl.scan_parquet(path) if path.exists() else None

    def scan_partition(self, dataset: str, workspace_id: str, day: dt.date) -> pl.LazyFrame | None:
        path = self.partition_file(dataset, workspace_id, day)
        return pl.scan_parquet(path) if path.exists() else None

    def scan(self, dataset: str) -> pl.LazyFrame:
        """Every partition of a dataset (hive columns dropped: the files carry workspace_id themselves)."""
        return pl.scan_parquet(self.root / dataset / "**" / PARTITION_FILE, hive_partitioning=False)

    def partitions(self, dataset: str) -> list[tuple[str, dt.date]]:
        """(workspace_id, day) of every committed partition, sorted."""
        found = []
        for path in (self.root / dataset).glob(f"workspace_id=*/date=*/{PARTITION_FILE}"):
            workspace_id = path.parent.parent.name.removeprefix("workspace_id=")
            found.append((workspace_id, dt.date.fromisoformat(path.parent.name.removeprefix("date="))))
        return sorted(found)

    @contextmanager
    def write_partition(
        self, dataset: str, workspace_id: str, day: dt.date, schema: pa.Schema
    ) -> Iterator[pq.ParquetWriter]:
        """Stream record batches into a new version of the partition; swap it in on success only."""
        directory = self.partition_dir(dataset, workspace_id, day)
        directory.mkdir(parents=True, exist_ok=True)
        remove_orphans(directory)
        tmp = directory / f".{PARTITION_FILE}.{uuid.uuid4().hex}{TMP_SUFFIX}"
        try:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                yield writer
            _fsync(tmp)
            os.replace(tmp, directory / PARTITION_FILE)
            _fsync_dir(directory)
        finally:
            tmp.unlink(missing_ok=True)


def write_table_atomically(table: pa.Table, path: Path, *, compression: str = "zstd") -> None:
    """Write one small Parquet file (spool file, dimension) so that it appears whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{TMP_SUFFIX}")
    try:
        pq.write_table(table, tmp, compression=compression)
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_orphans(directory: Path) -> int:
    """Delete temporary files a crashed writer left in `directory`; returns how many."""
    orphans = list(directory.glob(f".*{TMP_SUFFIX}"))
    for orphan in orphans:
        orphan.unlink(missing_ok=True)
    return len(orphans)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
