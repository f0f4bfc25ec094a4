"""Keeping the archive current: interactions, reconciliation with Bird's counts, schedule and freshness.

- `raw_interactions` / `interactions`: a day's interactions, fetched per message only where they can exist
  (pipelines/ingest/interactions.py), then flattened and loaded into the warehouse.
- `matches_bird_channel_metrics`: after every landing of a day, the archive's messages per channel against
  Bird's own channel metrics; a hole fails the check (ERROR), a surplus warns.
- `keep_archive_current`: the daily schedule. It lands the day that just ended and pulls earlier days again
  only while they can still change (pipelines/settlement.py); every run request says why.
- Freshness checks on the daily assets, evaluated by a sensor, so a late archive shows in the UI.
The policy and its reasons: docs/keeping-current.md.
"""

import asyncio
import datetime as dt
import os
import time
import warnings
from collections.abc import Iterable
from typing import Final

import dagster as dg
import polars as pl

from pipelines.assets import MESSAGES, ONE_RUN_PER_BACKFILL, archived_messages, load_metadata
from pipelines.ingest.channels import CHANNELS, scan_channels
from pipelines.ingest.interactions import (
    RAW_INTERACTIONS,
    InteractionRefresh,
    interaction_channel_ids,
    refresh_interactions,
    scan_due,
)
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.ingest.paging import run_paging
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from pipelines.loading import load_days
from pipelines.partitions import (
    ARCHIVE,
    WORKSPACES,
    archive_key,
    days_by_workspace,
    register_workspaces,
    unregistered_workspaces,
)
from pipelines.resources import Archive, BirdApi
from pipelines.settlement import (
    PartitionState,
    RefreshPlan,
    SettlementPolicy,
    days_to_consider,
    is_unsettled,
    plan_refresh,
)
from transforms.quality import channel_count_differences, reconciliation_outcome

# The "as of" of a scheduled run (its scheduled time, ISO 8601): when its assets looked at Bird.
AS_OF_TAG: Final = "bird-etl/as-of"
REASON_TAG: Final = "bird-etl/reason"
# The workspace of a run: the queued run coordinator limits concurrent runs per value (deploy/dagster.yaml).
WORKSPACE_TAG: Final = "bird-etl/workspace"

# Dagster needs the cron when it loads the definitions, so the time of day is read at load time.
ENV_DAILY_AT: Final = "BIRD_ETL_DAILY_AT"
DEFAULT_DAILY_AT: Final = "00:30"
FRESHNESS_GRACE_HOURS: Final = 3  # a day's partitions are late this long after the scheduled run


class Settlement(dg.ConfigurableResource):
    """How long days are pulled again (settlement) and interactions collected; see docs/keeping-current.md."""

    settling_horizon_days: float = 3.0
    fixed_lookback_days: int = 1
    receipt_window_hours: float = 48.0
    interaction_horizon_days: float = 7.0
    interaction_backoff: float = 1.0
    interaction_concurrency: int = 32

    def policy(self) -> SettlementPolicy:
        return SettlementPolicy(
            settling_horizon=dt.timedelta(days=self.settling_horizon_days),
            fixed_lookback_days=self.fixed_lookback_days,
            receipt_window=dt.timedelta(hours=self.receipt_window_hours),
            interaction_horizon=dt.timedelta(days=self.interaction_horizon_days),
            interaction_backoff=self.interaction_backoff,
        )


def run_as_of(context: dg.AssetExecutionContext) -> dt.datetime:
    """The run's "as of": its schedule time when scheduled, else now."""
    tag = context.run.tags.get(AS_OF_TAG)
    return dt.datetime.fromisoformat(tag) if tag else dt.datetime.now(dt.UTC)


# -- assets -------------------------------------------------------------------------------------------------


@dg.asset(
    key=RAW_INTERACTIONS,
    partitions_def=ARCHIVE,
    backfill_policy=ONE_RUN_PER_BACKFILL,
    deps=[RAW_MESSAGES],
    group_name="ingestion",
    kinds={"parquet"},
    pool="bird_api",
)
def raw_interactions(
    context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive, settlement: Settlement
) -> dg.MaterializeResult:
    """One row per interaction id of the messages created in the partition's UTC day, JSON as served."""

    async def pull(workspace_id: str, days: list[dt.date]) -> tuple[list[InteractionRefresh], int]:
        async with bird.client(archive.state_dir, workspace_id) as client:
            channels = interaction_channel_ids((c.id, c.platform_id) for c in await client.list_channels())
            refreshes = [
                await refresh_interactions(
                    client,
                    archive.lake,
                    workspace_id=workspace_id,
                    day=day,
                    interaction_channels=channels,
                    policy=settlement.policy(),
                    as_of=run_as_of(context),
                    concurrency=settlement.interaction_concurrency,
                )
                for day in days
            ]
            return refreshes, client.stats.requests

    refreshes: list[InteractionRefresh] = []
    requests = 0
    for workspace_id, days in days_by_workspace(context.partition_keys).items():
        pulled, asked = run_paging(pull(workspace_id, days))
        refreshes += pulled
        requests += asked

    def total(field: str) -> int:
        return sum(getattr(refresh, field) for refresh in refreshes)

    return dg.MaterializeResult(
        metadata={
            "interactions": total("n_interactions"),
            "new_interactions": total("n_new_interactions"),
            "messages": total("n_messages"),
            "eligible_messages": total("n_eligible"),
            "messages_asked": total("n_requested"),
            "messages_not_found": total("n_not_found"),
            "requests": requests,
            "requests_naive": total("n_messages"),
            "requests_saved": total("requests_saved"),
            "partitions": len(refreshes),
            "duration_s": round(sum(refresh.seconds for refresh in refreshes), 3),
        }
    )


@dg.asset(
    key="interactions",
    partitions_def=ARCHIVE,
    backfill_policy=ONE_RUN_PER_BACKFILL,
    deps=[RAW_INTERACTIONS, MESSAGES, CHANNELS],
    group_name="warehouse",
    kinds={"duckdb", "polars"},
)
def interactions(context: dg.AssetExecutionContext, archive: Archive) -> dg.MaterializeResult:
    """One row per interaction id of the day's messages in the DuckDB warehouse, plus interaction_daily."""
    started = time.perf_counter()
    results = load_days(
        archive.lake, archive.warehouse, RAW_INTERACTIONS, days_by_workspace(context.partition_keys)
    )
    return dg.MaterializeResult(metadata=load_metadata(results, archive, time.perf_counter() - started))


# -- reconciliation -----------------------------------------------------------------------------------------


@dg.asset_check(
    asset=RAW_MESSAGES,
    name="matches_bird_channel_metrics",
    partitions_def=ARCHIVE,
    description="Messages per channel equal Bird's channel metrics (missing ones: ERROR, extra ones: WARN).",
)
def matches_bird_channel_metrics(
    context: dg.AssetCheckExecutionContext, bird: BirdApi, archive: Archive
) -> dg.AssetCheckResult:
    found = [
        _channel_differences(bird, archive, workspace_id, days)
        for workspace_id, days in days_by_workspace(context.partition_keys).items()
    ]
    every = pl.concat([differences for differences, _ in found])
    outcome = reconciliation_outcome(every)
    off = every.filter((pl.col("n_missing") > 0) | (pl.col("n_extra") > 0))
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.figures["n_missing"] else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata={
            **outcome.figures,
            "channels_off": dg.MetadataValue.md(_markdown_table(off)),
            "requests": sum(requests for _, requests in found),
        },
    )


def _channel_differences(
    bird: BirdApi, archive: Archive, workspace_id: str, days: list[dt.date]
) -> tuple[pl.DataFrame, int]:
    """The archive's messages per channel and day against Bird's channel metrics (one request for the
    span of the days); and the GETs asked."""
    archived = []
    for day in days:
        partition = archive.lake.scan_partition(RAW_MESSAGES, workspace_id, day)
        if partition is None:
            raise dg.Failure(f"raw_messages partition {day} of workspace {workspace_id} is missing")
        archived.append((day, partition))
    span = Window(Window.day(days[0]).start, Window.day(days[-1]).end)

    async def reported() -> tuple[list[dict[str, object]], int]:
        async with bird.client(archive.state_dir, workspace_id) as client:
            return await client.get_channel_metrics(span.start, span.end), client.stats.requests

    rows, requests = asyncio.run(reported())
    per_day = []
    for day, partition in archived:
        of_day = [row for row in rows if row["date"] == day.isoformat()]
        reported_frame = pl.LazyFrame(
            {"channel_id": [row["channelId"] for row in of_day], "count": [row["count"] for row in of_day]},
            schema={"channel_id": pl.String, "count": pl.Int64},
        )
        differences = channel_count_differences(partition, reported_frame).collect()
        per_day.append(differences.with_columns(workspace_id=pl.lit(workspace_id), date=pl.lit(day)))
    return pl.concat(per_day), requests


def _markdown_table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "every channel matches"
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


# -- the daily schedule -------------------------------------------------------------------------------------

keep_current_job = dg.define_asset_job(
    "keep_archive_current",
    selection=[RAW_MESSAGES, MESSAGES, RAW_INTERACTIONS, "interactions"],
    description="Land a day (or land it again), then refresh its interactions; the schedule picks the days.",
)
RELIST_SELECTION: Final = [dg.AssetKey(k) for k in (RAW_MESSAGES, MESSAGES, RAW_INTERACTIONS, "interactions")]
INTERACTIONS_SELECTION: Final = [dg.AssetKey(k) for k in (RAW_INTERACTIONS, "interactions")]


def partition_states(
    instance: dg.DagsterInstance,
    lake: Lake,
    workspace_id: str,
    days: list[dt.date],
    *,
    policy: SettlementPolicy,
    as_of: dt.datetime,
) -> dict[dt.date, PartitionState]:
    """The lake's view of each day at `as_of`: messages, unsettled ones, ones whose interactions are due."""
    channels = scan_channels(lake, workspace_id).select("channel_id", "platform").collect()
    # Before the first channel refresh the platforms are unknown: count every channel as having interactions.
    interaction_channels = interaction_channel_ids(channels.iter_rows()) if channels.height else None
    states = {}
    for day in days:
        raw = lake.scan_partition(RAW_MESSAGES, workspace_id, day)
        if raw is None:
            continue
        unsettled = is_unsettled(policy, observed_at=_observed_at(instance, workspace_id, day))
        n_messages, n_unsettled = raw.select(pl.len(), unsettled.sum()).collect().row(0)
        due = scan_due(
            lake, workspace_id, day, interaction_channels=interaction_channels, policy=policy, as_of=as_of
        )
        n_due = 0 if due is None else due.select(pl.len()).collect().item()
        states[day] = PartitionState(day, n_messages, n_unsettled, n_due)
    return states


def _observed_at(instance: dg.DagsterInstance, workspace_id: str, day: dt.date) -> dt.datetime | None:
    """The "as of" of the run that last landed the day, when it was a scheduled run (else the rows tell)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey(RAW_MESSAGES), asset_partitions=[str(archive_key(workspace_id, day))]
        ),
        limit=1,
    ).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    tag = run.tags.get(AS_OF_TAG) if run else None
    return dt.datetime.fromisoformat(tag) if tag else None


def run_requests(plan: RefreshPlan, as_of: dt.datetime, workspace_id: str) -> list[dg.RunRequest]:
    """One run per day: the new day and the days to re-list get every asset, the others interactions only."""
    tags = {AS_OF_TAG: as_of.isoformat(), WORKSPACE_TAG: workspace_id}
    days = [(plan.new_day, "new day", RELIST_SELECTION)]
    days += [(day, reason, RELIST_SELECTION) for day, reason in plan.relist.items()]
    days += [(day, reason, INTERACTIONS_SELECTION) for day, reason in plan.interactions_only.items()]
    return [
        dg.RunRequest(
            run_key=f"{workspace_id}/{day.isoformat()}@{as_of.isoformat()}",
            partition_key=archive_key(workspace_id, day),
            asset_selection=selection,
            tags={**tags, REASON_TAG: reason},
        )
        for day, reason, selection in days
    ]


@dg.sensor(
    name="register_workspaces",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Add the workspaces of the environment (BIRD_WORKSPACES) to the workspace partitions.",
)
def register_workspaces_sensor(context: dg.SensorEvaluationContext, bird: BirdApi) -> dg.SensorResult:
    """A workspace added to the configuration gets its partitions (and so its backfills in the UI) within
    minutes, without a redeploy: the workspace dimension is dynamic."""
    new = unregistered_workspaces(context.instance, (w.workspace_id for w in bird.workspaces()))
    return dg.SensorResult(dynamic_partitions_requests=[WORKSPACES.build_add_request(new)] if new else [])


def build_keep_current_schedule(daily_at: str = DEFAULT_DAILY_AT) -> dg.ScheduleDefinition:
    """The daily schedule at `daily_at` (UTC, "HH:MM"); on by default."""
    hour, minute = _time_of_day(daily_at)

    @dg.schedule(
        name="keep_archive_current_daily",
        job=keep_current_job,
        cron_schedule=f"{minute} {hour} * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Land the day that just ended; pull earlier days again only while they can change.",
    )
    def keep_archive_current_daily(
        context: dg.ScheduleEvaluationContext, bird: BirdApi, archive: Archive, settlement: Settlement
    ) -> list[dg.RunRequest]:
        as_of = context.scheduled_execution_time.astimezone(dt.UTC)
        policy = settlement.policy()
        days = days_to_consider(as_of, policy)
        workspace_ids = [workspace.workspace_id for workspace in bird.workspaces()]
        register_workspaces(context.instance, workspace_ids)
        requests = []
        for workspace_id in workspace_ids:
            states = partition_states(
                context.instance, archive.lake, workspace_id, days, policy=policy, as_of=as_of
            )
            plan = plan_refresh(states, as_of=as_of, policy=policy)
            context.log.info(
                f"workspace {workspace_id} as of {as_of.isoformat()}: new day {plan.new_day}, "
                f"re-list {_days(plan.relist)}, interactions only {_days(plan.interactions_only)}, "
                f"untouched {_days(plan.untouched)}; about {plan.listing_requests_saved} listing requests "
                "saved against a blind lookback"
            )
            requests += run_requests(plan, as_of, workspace_id)
        return requests

    return keep_archive_current_daily


def _days(days: Iterable[dt.date]) -> str:
    return ", ".join(day.isoformat() for day in sorted(days)) or "none"


def _time_of_day(text: str) -> tuple[int, int]:
    moment = dt.time.fromisoformat(text)
    return moment.hour, moment.minute


DAILY_AT: Final = os.environ.get(ENV_DAILY_AT, "").strip() or DEFAULT_DAILY_AT
keep_current_schedule = build_keep_current_schedule(DAILY_AT)

# -- freshness ----------------------------------------------------------------------------------------------

# Dagster's time-partition freshness checks do not take partitions with a workspace dimension, so the daily
# assets have last-update checks: materialized within a day of the deadline (the schedule's time plus a
# grace). Their builders are marked superseded but supported, so the warning is muted.
_hour, _minute = _time_of_day(DAILY_AT)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    FRESHNESS_CHECKS: Final = [
        *dg.build_last_update_freshness_checks(
            assets=[archived_messages, raw_interactions, interactions],
            deadline_cron=f"{_minute} {(_hour + FRESHNESS_GRACE_HOURS) % 24} * * *",
            lower_bound_delta=dt.timedelta(days=1),
            timezone="UTC",
        ),
        *dg.build_last_update_freshness_checks(assets=[CHANNELS], lower_bound_delta=dt.timedelta(days=2)),
    ]
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=FRESHNESS_CHECKS, default_status=dg.DefaultSensorStatus.RUNNING
    )

# -- what pipelines/definitions.py adds ---------------------------------------------------------------------

CURRENT_ASSETS: Final = [raw_interactions, interactions]
CURRENT_CHECKS: Final = [matches_bird_channel_metrics, *FRESHNESS_CHECKS]
CURRENT_JOBS: Final = [keep_current_job]
CURRENT_SCHEDULES: Final = [keep_current_schedule]
CURRENT_SENSORS: Final = [freshness_sensor, register_workspaces_sensor]
CURRENT_RESOURCES: Final = {"settlement": Settlement()}
