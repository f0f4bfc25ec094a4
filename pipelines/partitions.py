"""The partitioning of the archive: one workspace's UTC day of message creation per partition."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import dagster as dg

# Partitioned asset checks (one verdict per day) are "preview" in Dagster 1.13; we use them knowingly, and the
# warning would otherwise reach the stderr of every command that starts a run.
warnings.filterwarnings("ignore", message=".*partitions_def on an AssetCheckSpec is currently in preview.*")
# Likewise single-run backfills (`backfill_policy`), which are "beta".
warnings.filterwarnings(
    "ignore", message=".*Parameter `backfill_policy` of function `asset` is currently in beta.*"
)

# Dagster needs the partition set when it loads the definitions, so this one setting is read at load time.
ENV_PARTITIONS_START: Final = "BIRD_ETL_PARTITIONS_START"
DEFAULT_PARTITIONS_START: Final = "2025-01-01"

DAILY: Final = dg.DailyPartitionsDefinition(
    start_date=os.environ.get(ENV_PARTITIONS_START, "").strip() or DEFAULT_PARTITIONS_START,
    timezone="UTC",
)

# Workspaces are a dynamic dimension: the code location loads without knowing them, and a backfill or the
# schedule registers the configured ones (`register_workspaces`) before it asks for their partitions.
WORKSPACES: Final = dg.DynamicPartitionsDefinition(name="bird_workspaces")
DATE_DIMENSION: Final = "date"
WORKSPACE_DIMENSION: Final = "workspace"
ARCHIVE: Final = dg.MultiPartitionsDefinition({DATE_DIMENSION: DAILY, WORKSPACE_DIMENSION: WORKSPACES})


def archive_key(workspace_id: str, day: dt.date) -> dg.MultiPartitionKey:
    """The partition of one workspace's UTC day (shown as `YYYY-MM-DD|workspace-id`)."""
    return dg.MultiPartitionKey({DATE_DIMENSION: day.isoformat(), WORKSPACE_DIMENSION: workspace_id})


def days_by_workspace(partition_keys: Iterable[str]) -> dict[str, list[dt.date]]:
    """The days of each workspace among a run's partitions (one for a daily run, many for a backfill run)."""
    found: dict[str, list[dt.date]] = {}
    for key in partition_keys:
        dimensions = ARCHIVE.get_partition_key_from_str(key).keys_by_dimension
        found.setdefault(dimensions[WORKSPACE_DIMENSION], []).append(
            dt.date.fromisoformat(dimensions[DATE_DIMENSION])
        )
    return {workspace_id: sorted(days) for workspace_id, days in sorted(found.items())}


def unregistered_workspaces(instance: dg.DagsterInstance, workspace_ids: Iterable[str]) -> list[str]:
    """The workspaces that have no partitions in the instance yet, sorted."""
    return sorted(set(workspace_ids) - set(instance.get_dynamic_partitions(WORKSPACES.name or "")))


def register_workspaces(instance: dg.DagsterInstance, workspace_ids: Iterable[str]) -> None:
    """Make the workspaces' partitions exist in the instance (idempotent)."""
    new = unregistered_workspaces(instance, workspace_ids)
    if new:
        instance.add_dynamic_partitions(WORKSPACES.name or "", new)


def batches(days: Sequence[dt.date], size: int) -> Iterator[tuple[dt.date, ...]]:
    """`days` in consecutive groups of at most `size` (itertools.batched arrives with Python 3.12)."""
    for first in range(0, len(days), size):
        yield tuple(days[first : first + size])
