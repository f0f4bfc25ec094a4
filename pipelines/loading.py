"""From the lake to the warehouse: one place that flattens a landed partition for loading.

Used by the daily assets and by `bird-etl rebuild`, so a rebuild from the lake loads exactly what the
incremental runs loaded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Final, Literal

import polars as pl

from pipelines.ingest.channels import scan_channels
from pipelines.ingest.interactions import RAW_INTERACTIONS
from pipelines.ingest.land import RAW_MESSAGES, REJECTED_RECORDS, unparsed_rows
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from pipelines.partitions import batches
from transforms.interactions import flatten_interactions
from transforms.messages import flatten_messages
from warehouse.store import LoadResult, Partition, PartitionLoad, Warehouse

_FLATTEN: dict[str, Callable[[pl.LazyFrame, pl.LazyFrame], pl.LazyFrame]] = {
    RAW_MESSAGES: flatten_messages,
    RAW_INTERACTIONS: flatten_interactions,
}
_RELATION: dict[str, Literal["messages", "interactions"]] = {
    RAW_MESSAGES: "messages",
    RAW_INTERACTIONS: "interactions",
}
# Landed rows flattened and written to the warehouse at a time: a day's load holds one slice, not the day.
LOAD_SLICE_ROWS: Final = 50_000
# Days flattened and loaded in one warehouse transaction (and one published snapshot): bounds the memory a
# long backfill run holds while sparing a snapshot copy per day.
LOAD_BATCH_DAYS: Final = 7
# Landed rows worth a load of their own while more days land (WarehouseFeeder).
LOAD_MIN_ROWS: Final = 150_000


class MissingPartitionError(LookupError):
    """The lake has no such partition: it must be landed before it can be loaded."""


def flattened_slices(
    lake: Lake, dataset: str, workspace_id: str, day: dt.date, rows: int = LOAD_SLICE_ROWS
) -> Iterator[pl.DataFrame]:
    """The warehouse rows of a landed partition, `rows` landed rows at a time (so a load's memory does not
    grow with the day). Each slice keeps the latest version of its ids; the warehouse's replace resolves an
    id repeated across slices the same way (landed partitions hold each id once: a blocking check). Slices
    are small, so polars' in-memory engine: 10-20% less CPU than its streaming default."""
    raw, channels = _landed(lake, dataset, workspace_id, day), scan_channels(lake, workspace_id)
    landed_rows = raw.select(pl.len()).collect().item()
    for offset in range(0, landed_rows, rows):
        yield _FLATTEN[dataset](raw.slice(offset, rows), channels).collect(engine="in-memory")


def _landed(lake: Lake, dataset: str, workspace_id: str, day: dt.date) -> pl.LazyFrame:
    """A landed partition, without the JSON column when every row's fields were parsed at landing."""
    raw = lake.scan_partition(dataset, workspace_id, day)
    if raw is None:
        raise MissingPartitionError(
            f"{dataset} {day} of workspace {workspace_id} is not in the lake: land it first"
        )
    if dataset == RAW_MESSAGES and unparsed_rows(lake.partition_file(dataset, workspace_id, day)) == 0:
        raw = raw.drop("raw")
    return raw


def lake_partitions(lake: Lake, dataset: str) -> Iterator[Partition]:
    """Every partition of a dataset as (workspace_id, start, end, slices of rows), for a rebuild."""
    for workspace_id, day in lake.partitions(dataset):
        window = Window.day(day)
        yield workspace_id, window.start, window.end, flattened_slices(lake, dataset, workspace_id, day)


def partition_load(lake: Lake, dataset: str, workspace_id: str, day: dt.date) -> PartitionLoad:
    """A landed day as the warehouse loads it: its flattened rows (and, for messages, its quarantine)."""
    window = Window.day(day)
    rejected = lake.scan_partition(REJECTED_RECORDS, workspace_id, day) if dataset == RAW_MESSAGES else None
    return PartitionLoad(
        workspace_id=workspace_id,
        start=window.start,
        end=window.end,
        rows=flattened_slices(lake, dataset, workspace_id, day),
        rejected=rejected.collect() if rejected is not None else None,
    )


def load_days(
    lake: Lake, warehouse: Warehouse, dataset: str, days_by_workspace: dict[str, list[dt.date]]
) -> list[LoadResult]:
    """Flatten and load a run's days of a dataset, LOAD_BATCH_DAYS of a workspace per transaction."""
    results = []
    for workspace_id, days in days_by_workspace.items():
        for batch in batches(days, LOAD_BATCH_DAYS):
            results += _load(lake, warehouse, dataset, [(workspace_id, day) for day in batch])
    return results


def _load(
    lake: Lake, warehouse: Warehouse, dataset: str, days: Sequence[tuple[str, dt.date]]
) -> list[LoadResult]:
    loads = [partition_load(lake, dataset, workspace_id, day) for workspace_id, day in days]
    return warehouse.load_partitions(_RELATION[dataset], loads)


class WarehouseFeeder:
    """Loads landed days into the warehouse on one thread of its own while the caller lands more.

    A load starts once LOAD_MIN_ROWS rows or LOAD_BATCH_DAYS days wait (a load's cost per row is about
    twice as high for one small day as for a week of them), or when the caller closes the feeder, so a
    backfill makes a few large loads and, once its last day has landed, only the days since the last load
    remain. Flattening and DuckDB run outside the GIL, so the loads use the second core while the event loop
    pages. The first load that fails stops the feeder; `close` raises its error.
    """

    def __init__(self, lake: Lake, warehouse: Warehouse, dataset: str) -> None:
        self._load = functools.partial(_load, lake, warehouse, dataset)
        self._waiting: list[tuple[str, dt.date, int]] = []
        self._changed = threading.Condition()
        self._closing = False
        self._results: list[LoadResult] = []
        self._error: BaseException | None = None
        self.seconds = 0.0  # wall time spent loading
        self._thread = threading.Thread(target=self._run, name="warehouse-feeder", daemon=True)
        self._thread.start()

    def submit(self, workspace_id: str, day: dt.date, rows: int) -> None:
        """Queue a landed and checked day of `rows` rows for loading (returns at once)."""
        with self._changed:
            self._waiting.append((workspace_id, day, rows))
            self._changed.notify()

    def close(self) -> list[LoadResult]:
        """Wait until every submitted day is loaded; the loads' results, or the first load's error."""
        with self._changed:
            self._closing = True
            self._changed.notify()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._results

    def __enter__(self) -> WarehouseFeeder:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        """Leaving on an error: the days already handed over are still loaded, but the caller's error is
        the one raised."""
        if error_type is None:
            self.close()
        else:
            with contextlib.suppress(Exception):
                self.close()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(self._load_due)
                batch = self._waiting[:LOAD_BATCH_DAYS]
                del self._waiting[:LOAD_BATCH_DAYS]
            if not batch:
                return  # closing, and nothing waits
            if self._error is None:
                started = time.perf_counter()
                try:
                    self._results += self._load([(workspace_id, day) for workspace_id, day, _ in batch])
                except BaseException as error:  # handed to the caller by close()
                    self._error = error
                self.seconds += time.perf_counter() - started

    def _load_due(self) -> bool:
        return (
            self._closing
            or len(self._waiting) >= LOAD_BATCH_DAYS
            or sum(rows for _, _, rows in self._waiting) >= LOAD_MIN_ROWS
        )
