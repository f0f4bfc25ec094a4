"""Run partitions of the ingest job through Dagster, recorded in the instance under the data directory.

Each day is its own Dagster run (visible in the UI, retryable alone), executed in-process by a small pool of
worker processes (Dagster's in-process execution is not thread-safe); every run draws on the same
per-workspace request budget, so adding workers never adds pressure on Bird beyond that budget.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import dagster as dg
from filelock import FileLock

from pipelines.assets import RAW_MESSAGES
from pipelines.definitions import defs, ingest_job, refresh_channels_job
from pipelines.progress import MESSAGES_LANDED

DAGSTER_YAML = """\
# Dagster instance of this data directory (written by bird-etl; edit freely).
telemetry:
  enabled: false
# One SQLite event log for all runs: the default keeps a database per run, whose creation and per-event
# commits cost seconds per partition run.
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {home}/history
concurrency:
  runs:
    max_concurrent_runs: 4
"""


# The CLI shows its own progress and one line per failure; the full event log stays in the instance (UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass(frozen=True)
class PartitionOutcome:
    day: dt.date
    run_id: str
    success: bool
    error: str | None = None


def use_instance(data_dir: Path) -> dg.DagsterInstance:
    """The Dagster instance kept under the data directory (so `bird-etl ui` shows these runs)."""
    home = data_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML.format(home=home))
    os.environ["DAGSTER_HOME"] = str(home)
    # Two processes creating the instance's SQLite storages at once race on their schema migrations.
    with FileLock(home / ".create.lock"):
        instance = dg.DagsterInstance.get()
        for storage in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
            assert storage is not None
    return instance


def missing_days(instance: dg.DagsterInstance, days: Sequence[dt.date]) -> list[dt.date]:
    """The days whose raw_messages partition was never materialized."""
    done = instance.get_materialized_partitions(dg.AssetKey(RAW_MESSAGES))
    return [day for day in days if day.isoformat() not in done]


def refresh_channels(instance: dg.DagsterInstance) -> PartitionOutcome | None:
    """Refresh the channel dimension first: platform comes from it. Returns the failure, if any."""
    result = defs.resolve_job_def(refresh_channels_job.name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    if result.success:
        return None
    return PartitionOutcome(dt.date.min, result.run_id, False, _first_error(result))


def run_days(
    instance: dg.DagsterInstance,
    days: Sequence[dt.date],
    *,
    concurrency: int = 2,
    on_outcome: Callable[[PartitionOutcome], None] | None = None,
    archive_config: dict[str, object] | None = None,
) -> list[PartitionOutcome]:
    """Materialize raw_messages and messages for each day, `concurrency` runs at a time.

    `archive_config` overrides fields of the `archive` resource for these runs (e.g. the source).
    """
    tags = {
        "bird-etl/backfill": uuid.uuid4().hex[:8],
        "bird-etl/workspace": os.environ.get("BIRD_WORKSPACE_ID", ""),
    }
    run_config: dict[str, object] = dict(QUIET_RUN_CONFIG)
    if archive_config:
        run_config["resources"] = {"archive": {"config": archive_config}}
    outcomes = []

    def record(outcome: PartitionOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    if concurrency <= 1:
        for day in days:
            record(_run_partition(day, tags, run_config, instance))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(concurrency, len(days)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(dict(os.environ), MESSAGES_LANDED.shared()),
        ) as pool:
            futures = [pool.submit(_run_partition, day, tags, run_config) for day in days]
            for future in as_completed(futures):
                record(future.result())
    return sorted(outcomes, key=lambda o: o.day)


def _start_worker(environ: dict[str, str], landed: Synchronized[int]) -> None:
    os.environ.update(environ)
    MESSAGES_LANDED.adopt(landed)


def _run_partition(
    day: dt.date,
    tags: dict[str, str],
    run_config: dict[str, object],
    instance: dg.DagsterInstance | None = None,
) -> PartitionOutcome:
    result = defs.resolve_job_def(ingest_job.name).execute_in_process(
        partition_key=day.isoformat(),
        instance=instance or dg.DagsterInstance.get(),
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
    )
    return PartitionOutcome(
        day, result.run_id, result.success, None if result.success else _first_error(result)
    )


def _first_error(result: dg.ExecuteInProcessResult) -> str:
    """The first step failure's message, one line."""
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None:
            cause = error.cause or error
            message = cause.message.strip().splitlines()[0]
            return f"{event.step_key}: {_without_class_path(message)}"
    failure = result.get_run_failure_event()
    return failure.message if failure else "run failed"


def _without_class_path(message: str) -> str:
    """'pipelines.bird.errors.AuthenticationError: 401 ...' -> '401 ...': class paths are for tracebacks."""
    head, separator, rest = message.partition(": ")
    return rest if separator and "." in head and " " not in head else message
