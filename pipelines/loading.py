"""From the lake to the warehouse: one place that flattens a landed partition for loading.

Used by the daily assets and by `bird-etl rebuild`, so a rebuild from the lake loads exactly what the
incremental runs loaded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import polars as pl

from pipelines.ingest.channels import scan_channels
from pipelines.ingest.interactions import RAW_INTERACTIONS
from pipelines.ingest.land import RAW_MESSAGES, unparsed_rows
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from transforms.interactions import flatten_interactions
from transforms.messages import flatten_messages

_FLATTEN: dict[str, Callable[[pl.LazyFrame, pl.LazyFrame], pl.LazyFrame]] = {
    RAW_MESSAGES: flatten_messages,
    RAW_INTERACTIONS: flatten_interactions,
}


class MissingPartitionError(LookupError):
    """The lake has no such partition: it must be landed before it can be loaded."""


def flattened_partition(lake: Lake, dataset: str, workspace_id: str, day: dt.date) -> pl.DataFrame:
    """The warehouse rows of a landed partition (messages or interactions), platform joined from channels."""
    raw = lake.scan_partition(dataset, workspace_id, day)
    if raw is None:
        raise MissingPartitionError(
            f"{dataset} {day} of workspace {workspace_id} is not in the lake: land it first"
        )
    if dataset == RAW_MESSAGES and unparsed_rows(lake.partition_file(dataset, workspace_id, day)) == 0:
        raw = raw.drop("raw")  # every row's fields were parsed at landing: skip reading the JSON
    # The streaming engine reads the partition a row group at a time: measured on a 1.1M-message day, peak
    # memory 1.3 GiB instead of 1.85, for about 10% more CPU.
    return _FLATTEN[dataset](raw, scan_channels(lake, workspace_id)).collect(engine="streaming")


def lake_partitions(lake: Lake, dataset: str) -> Iterator[tuple[str, dt.datetime, dt.datetime, pl.DataFrame]]:
    """Every partition of a dataset as (workspace_id, start, end, rows), for a rebuild."""
    for workspace_id, day in lake.partitions(dataset):
        window = Window.day(day)
        yield workspace_id, window.start, window.end, flattened_partition(lake, dataset, workspace_id, day)
