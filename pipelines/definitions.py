"""The Dagster code location: every asset, check, job, schedule and resource of bird-etl, listed once."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import archived_messages, channels
from pipelines.current_assets import (
    CURRENT_ASSETS,
    CURRENT_CHECKS,
    CURRENT_JOBS,
    CURRENT_RESOURCES,
    CURRENT_SCHEDULES,
    CURRENT_SENSORS,
)
from pipelines.report_assets import REPORT_ASSETS, report_job
from pipelines.resources import Archive, BirdApi

RUNNING = dg.DefaultScheduleStatus.RUNNING

ingest_job = dg.define_asset_job(
    "ingest_messages",
    selection=[archived_messages, *CURRENT_ASSETS],
    description="Land days of messages and their interactions, and load them into the warehouse.",
)
messages_job = dg.define_asset_job(
    "ingest_messages_only",
    selection=[archived_messages],
    description="Land days of messages and load them (their interactions later: ingest_interactions).",
)
interactions_job = dg.define_asset_job(
    "ingest_interactions",
    selection=CURRENT_ASSETS,
    description="Fetch the interactions of days already landed, and load them into the warehouse.",
)
refresh_channels_job = dg.define_asset_job(
    "refresh_channels", selection=[channels], description="Refresh the channel dimension."
)

defs = dg.Definitions(
    assets=[channels, archived_messages, *CURRENT_ASSETS, *REPORT_ASSETS],
    asset_checks=CURRENT_CHECKS,
    jobs=[ingest_job, messages_job, interactions_job, refresh_channels_job, report_job, *CURRENT_JOBS],
    schedules=[
        dg.ScheduleDefinition(
            job=refresh_channels_job,
            cron_schedule="20 0 * * *",
            execution_timezone="UTC",
            default_status=RUNNING,
        ),
        *CURRENT_SCHEDULES,
        dg.build_schedule_from_partitioned_job(
            report_job, hour_of_day=2, minute_of_hour=0, default_status=RUNNING
        ),
    ],
    sensors=CURRENT_SENSORS,
    resources={
        "bird": BirdApi(),  # the workspaces of the environment, read when a run starts
        "archive": Archive(),
        **CURRENT_RESOURCES,
    },
)
