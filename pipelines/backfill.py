"""Run partitions of the ingest jobs through Dagster, recorded in the instance under the data directory.

A backfill is split per workspace into runs of consecutive days (Dagster's single-run backfills: one run
materializes a range of partitions, so its fixed cost is paid once per run, not once per day). The runs are
executed in-process by a small pool of worker processes (Dagster's in-process execution is not
thread-safe); every run of a workspace draws on that workspace's request budget, so adding workers never
adds pressure on Bird beyond it.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import dagster as dg
from filelock import FileLock

from pipelines.assets import RAW_MESSAGES
from pipelines.current_assets import WORKSPACE_TAG
from pipelines.definitions import defs, ingest_job, interactions_job, messages_job, refresh_channels_job
from pipelines.partitions import archive_key, batches, register_workspaces
from pipelines.progress import MESSAGES_LANDED

DAGSTER_YAML = """\
# Dagster instance of this data directory (written by bird-etl; edit freely).
telemetry:
  enabled: false
# One SQLite event log for all runs (the default keeps a database per run, whose creation and per-event
# commits cost seconds per partition run), written through one SQLAlchemy engine (pipelines/event_log.py).
event_log_storage:
  module: pipelines.event_log
  class: PooledSqliteEventLogStorage
  config:
    base_dir: {home}/history
concurrency:
  runs:
    max_concurrent_runs: 4
"""


# The CLI shows its own progress and one line per failure; the full event log stays in the instance (UI).
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
BACKFILL_TAG = "bird-etl/backfill"
RANGE_START_TAG, RANGE_END_TAG = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


# The longest run a backfill makes: a failed run is retried whole, so runs stay about a month long at most.
MAX_DAYS_PER_RUN = 31
JOBS = {"all": ingest_job, "messages": messages_job, "interactions": interactions_job}


@dataclass(frozen=True)
class RunOutcome:
    """One run of a backfill: a workspace's consecutive days."""

    workspace_id: str
    days: tuple[dt.date, ...]
    run_id: str
    success: bool
    error: str | None = None

    @property
    def label(self) -> str:
        span = str(self.days[0]) if len(self.days) == 1 else f"{self.days[0]}..{self.days[-1]}"
        return f"{span} of workspace {self.workspace_id}"


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


def missing_days(instance: dg.DagsterInstance, workspace_id: str, days: Sequence[dt.date]) -> list[dt.date]:
    """The days whose raw_messages partition of the workspace was never materialized."""
    done = instance.get_materialized_partitions(dg.AssetKey(RAW_MESSAGES))
    return [day for day in days if str(archive_key(workspace_id, day)) not in done]


def refresh_channels(instance: dg.DagsterInstance) -> RunOutcome | None:
    """Refresh the channel dimension first: platform comes from it. Returns the failure, if any."""
    result = defs.resolve_job_def(refresh_channels_job.name).execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_RUN_CONFIG
    )
    if result.success:
        return None
    return RunOutcome("", (), result.run_id, False, _first_error(result))


def plan_runs(
    days_by_workspace: Mapping[str, Sequence[dt.date]], *, concurrency: int, days_per_run: int = 0
) -> list[tuple[str, tuple[dt.date, ...]]]:
    """Split each workspace's days into runs of consecutive days.

    `days_per_run` 0: as few runs as keep `concurrency` workers busy, at most MAX_DAYS_PER_RUN days each.
    A gap between days (--missing-only) always starts a new run: a run covers a range of partitions.
    """
    runs = []
    workers_each = max(1, -(-concurrency // max(1, len(days_by_workspace))))
    for workspace_id, days in days_by_workspace.items():
        size = days_per_run or min(MAX_DAYS_PER_RUN, max(1, -(-len(days) // workers_each)))
        for stretch in _consecutive(sorted(days)):
            runs += [(workspace_id, chunk) for chunk in batches(stretch, size)]
    return runs


def _consecutive(days: list[dt.date]) -> Iterator[list[dt.date]]:
    stretch: list[dt.date] = []
    for day in days:
        if stretch and day != stretch[-1] + dt.timedelta(days=1):
            yield stretch
            stretch = []
        stretch.append(day)
    if stretch:
        yield stretch


def run_backfill(
    instance: dg.DagsterInstance,
    days_by_workspace: Mapping[str, Sequence[dt.date]],
    *,
    job: str = "all",
    concurrency: int = 2,
    days_per_run: int = 0,
    on_outcome: Callable[[RunOutcome], None] | None = None,
    archive_config: dict[str, object] | None = None,
) -> list[RunOutcome]:
    """Materialize the days of each workspace with one of JOBS, `concurrency` runs at a time.

    `archive_config` overrides fields of the `archive` resource for these runs (e.g. the source).
    """
    register_workspaces(instance, days_by_workspace)
    backfill_id = uuid.uuid4().hex[:8]
    run_config: dict[str, object] = dict(QUIET_RUN_CONFIG)
    if archive_config:
        run_config["resources"] = {"archive": {"config": archive_config}}
    runs = plan_runs(days_by_workspace, concurrency=concurrency, days_per_run=days_per_run)
    outcomes = []

    def record(outcome: RunOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)

    if concurrency <= 1 or len(runs) <= 1:
        for workspace_id, days in runs:
            record(_run(JOBS[job].name, workspace_id, days, backfill_id, run_config, instance))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(concurrency, len(runs)),
            mp_context=context,
            initializer=_start_worker,
            initargs=(dict(os.environ), MESSAGES_LANDED.shared()),
        ) as pool:
            futures = [
                pool.submit(_run, JOBS[job].name, workspace_id, days, backfill_id, run_config)
                for workspace_id, days in runs
            ]
            for future in as_completed(futures):
                record(future.result())
    return sorted(outcomes, key=lambda o: (o.workspace_id, o.days))


def _start_worker(environ: dict[str, str], landed: Synchronized[int]) -> None:
    os.environ.update(environ)
    MESSAGES_LANDED.adopt(landed)


def _run(
    job_name: str,
    workspace_id: str,
    days: tuple[dt.date, ...],
    backfill_id: str,
    run_config: dict[str, object],
    instance: dg.DagsterInstance | None = None,
) -> RunOutcome:
    """One run over a workspace's consecutive days (a single partition, or a range of them)."""
    tags = {BACKFILL_TAG: backfill_id, WORKSPACE_TAG: workspace_id}
    first, last = str(archive_key(workspace_id, days[0])), str(archive_key(workspace_id, days[-1]))
    if len(days) > 1:
        tags |= {RANGE_START_TAG: first, RANGE_END_TAG: last}
    result = defs.resolve_job_def(job_name).execute_in_process(
        partition_key=first if len(days) == 1 else None,
        instance=instance or dg.DagsterInstance.get(),
        raise_on_error=False,
        tags=tags,
        run_config=run_config,
    )
    return RunOutcome(
        workspace_id, days, result.run_id, result.success, None if result.success else _first_error(result)
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
