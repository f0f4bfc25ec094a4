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
import warnings
from collections.abc import Iterable
from typing import Final

import dagster as dg
import polars as pl

from pipelines.assets import messages, raw_messages
from pipelines.ingest.channels import CHANNELS, scan_channels
from pipelines.ingest.interactions import (
    RAW_INTERACTIONS,
    InteractionRefresh,
    interaction_channel_ids,
    refresh_interactions,
    scan_due,
)
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.lake import Lake
from pipelines.loading import flattened_partition
from pipelines.partitions import DAILY
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
    partitions_def=DAILY,
    deps=[RAW_MESSAGES],
    group_name="ingestion",
    kinds={"parquet"},
    pool="bird_api",
)
def raw_interactions(
    context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive, settlement: Settlement
) -> dg.MaterializeResult:
    """One row per interaction id of the messages created in the partition's UTC day, JSON as served."""
    day = context.partition_time_window.start.date()

    async def pull() -> tuple[InteractionRefresh, int]:
        async with bird.client(archive.state_dir) as client:
            refresh = await refresh_interactions(
                client,
                archive.lake,
                workspace_id=bird.settings().workspace_id,
                day=day,
                interaction_channels=interaction_channel_ids(
                    (c.id, c.platform_id) for c in await client.list_channels()
                ),
                policy=settlement.policy(),
                as_of=run_as_of(context),
                concurrency=settlement.interaction_concurrency,
            )
            return refresh, client.stats.requests

    refresh, requests = asyncio.run(pull())
    return dg.MaterializeResult(
        metadata={
            "interactions": refresh.n_interactions,
            "new_interactions": refresh.n_new_interactions,
            "messages": refresh.n_messages,
            "eligible_messages": refresh.n_eligible,
            "messages_asked": refresh.n_requested,
            "messages_not_found": refresh.n_not_found,
            "requests": requests,
            "requests_naive": refresh.n_messages,
            "requests_saved": refresh.requests_saved,
            "duration_s": round(refresh.seconds, 3),
        }
    )


@dg.asset(
    key="interactions",
    partitions_def=DAILY,
    deps=[RAW_INTERACTIONS, messages, CHANNELS],
    group_name="warehouse",
    kinds={"duckdb", "polars"},
)
def interactions(context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive) -> dg.MaterializeResult:
    """One row per interaction id of the day's messages in the DuckDB warehouse, plus interaction_daily."""
    window = context.partition_time_window
    workspace_id = bird.settings().workspace_id
    flat = flattened_partition(archive.lake, RAW_INTERACTIONS, workspace_id, window.start.date())
    result = archive.warehouse.load_interactions(
        workspace_id=workspace_id, start=window.start, end=window.end, interactions=flat
    )
    return dg.MaterializeResult(
        metadata={
            "rows": result.n_rows,
            "rows_replaced": result.n_replaced,
            "mart_days_recomputed": len(result.days),
            "warehouse": dg.MetadataValue.path(str(archive.warehouse.path)),
        }
    )


# -- reconciliation -----------------------------------------------------------------------------------------


@dg.asset_check(
    asset=RAW_MESSAGES,
    name="matches_bird_channel_metrics",
    partitions_def=DAILY,
    description="Messages per channel equal Bird's channel metrics (missing ones: ERROR, extra ones: WARN).",
)
def matches_bird_channel_metrics(
    context: dg.AssetCheckExecutionContext, bird: BirdApi, archive: Archive
) -> dg.AssetCheckResult:
    window = context.partition_time_window
    archived = archive.lake.scan_partition(RAW_MESSAGES, bird.settings().workspace_id, window.start.date())
    if archived is None:
        raise dg.Failure(f"raw_messages partition {window.start.date()} is missing")

    async def reported() -> tuple[list[dict[str, object]], int]:
        async with bird.client(archive.state_dir) as client:
            return await client.get_channel_metrics(window.start, window.end), client.stats.requests

    rows, requests = asyncio.run(reported())
    rows = [row for row in rows if row["date"] == window.start.date().isoformat()]
    reported_frame = pl.LazyFrame(
        {"channel_id": [row["channelId"] for row in rows], "count": [row["count"] for row in rows]},
        schema={"channel_id": pl.String, "count": pl.Int64},
    )
    differences = channel_count_differences(archived, reported_frame).collect()
    outcome = reconciliation_outcome(differences)
    off = differences.filter((pl.col("n_missing") > 0) | (pl.col("n_extra") > 0))
    return dg.AssetCheckResult(
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.figures["n_missing"] else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata={
            **outcome.figures,
            "channels_off": dg.MetadataValue.md(_markdown_table(off)),
            "requests": requests,
        },
    )


def _markdown_table(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "every channel matches"
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * frame.width]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.iter_rows()]
    return "\n".join(lines)


# -- the daily schedule -------------------------------------------------------------------------------------

keep_current_job = dg.define_asset_job(
    "keep_archive_current",
    selection=[RAW_MESSAGES, "messages", RAW_INTERACTIONS, "interactions"],
    description="Land a day (or land it again), then refresh its interactions; the schedule picks the days.",
)
RELIST_SELECTION: Final = [
    dg.AssetKey(k) for k in (RAW_MESSAGES, "messages", RAW_INTERACTIONS, "interactions")
]
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
        unsettled = is_unsettled(policy, observed_at=_observed_at(instance, day))
        n_messages, n_unsettled = raw.select(pl.len(), unsettled.sum()).collect().row(0)
        due = scan_due(
            lake, workspace_id, day, interaction_channels=interaction_channels, policy=policy, as_of=as_of
        )
        n_due = 0 if due is None else due.select(pl.len()).collect().item()
        states[day] = PartitionState(day, n_messages, n_unsettled, n_due)
    return states


def _observed_at(instance: dg.DagsterInstance, day: dt.date) -> dt.datetime | None:
    """The "as of" of the run that last landed the day, when it was a scheduled run (else the rows tell)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(RAW_MESSAGES), asset_partitions=[day.isoformat()]),
        limit=1,
    ).records
    run = instance.get_run_by_id(records[0].run_id) if records else None
    tag = run.tags.get(AS_OF_TAG) if run else None
    return dt.datetime.fromisoformat(tag) if tag else None


def run_requests(plan: RefreshPlan, as_of: dt.datetime) -> list[dg.RunRequest]:
    """One run per day: the new day and the days to re-list get every asset, the others interactions only."""
    tags = {AS_OF_TAG: as_of.isoformat()}
    days = [(plan.new_day, "new day", RELIST_SELECTION)]
    days += [(day, reason, RELIST_SELECTION) for day, reason in plan.relist.items()]
    days += [(day, reason, INTERACTIONS_SELECTION) for day, reason in plan.interactions_only.items()]
    return [
        dg.RunRequest(
            run_key=f"{day.isoformat()}@{as_of.isoformat()}",
            partition_key=day.isoformat(),
            asset_selection=selection,
            tags={**tags, REASON_TAG: reason},
        )
        for day, reason, selection in days
    ]


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
        states = partition_states(
            context.instance, archive.lake, bird.workspace_id, days, policy=policy, as_of=as_of
        )
        plan = plan_refresh(states, as_of=as_of, policy=policy)
        context.log.info(
            f"as of {as_of.isoformat()}: new day {plan.new_day}, re-list {_days(plan.relist)}, "
            f"interactions only {_days(plan.interactions_only)}, untouched {_days(plan.untouched)}; "
            f"about {plan.listing_requests_saved} listing requests saved against a blind lookback"
        )
        return run_requests(plan, as_of)

    return keep_archive_current_daily


def _days(days: Iterable[dt.date]) -> str:
    return ", ".join(day.isoformat() for day in sorted(days)) or "none"


def _time_of_day(text: str) -> tuple[int, int]:
    moment = dt.time.fromisoformat(text)
    return moment.hour, moment.minute


DAILY_AT: Final = os.environ.get(ENV_DAILY_AT, "").strip() or DEFAULT_DAILY_AT
keep_current_schedule = build_keep_current_schedule(DAILY_AT)

# -- freshness ----------------------------------------------------------------------------------------------

# Freshness checks rather than the newer FreshnessPolicy: a time-partition check asks for the latest day's
# partition by its deadline, which the re-pull of an older day cannot satisfy (any materialization would
# satisfy a policy). Dagster marks these builders superseded; they are supported, so the warning is muted.
_hour, _minute = _time_of_day(DAILY_AT)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)
    FRESHNESS_CHECKS: Final = [
        *dg.build_time_partition_freshness_checks(
            assets=[raw_messages, messages, raw_interactions, interactions],
            deadline_cron=f"{_minute} {(_hour + FRESHNESS_GRACE_HOURS) % 24} * * *",
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
CURRENT_SENSORS: Final = [freshness_sensor]
CURRENT_RESOURCES: Final = {"settlement": Settlement()}
