"""Assets: thin steps from a partition's window to a landed, checked and loaded result.

Each asset reads its window from Dagster, calls plain functions (`pipelines.ingest`, `transforms`,
`warehouse`) and reports what it did as metadata; no row reshaping happens here.
"""

import asyncio
import datetime as dt

import dagster as dg

from pipelines.ingest.channels import CHANNELS, channels_frame, select_channel_ids
from pipelines.ingest.land import RAW_MESSAGES, REJECTED_RECORDS, LandedPartition, land_messages
from pipelines.loading import flattened_partition
from pipelines.partitions import DAILY
from pipelines.progress import MESSAGES_LANDED
from pipelines.resources import Archive, BirdApi
from transforms.quality import raw_partition_checks

RAW_MESSAGE_CHECKS = [
    dg.AssetCheckSpec(name, asset=RAW_MESSAGES, blocking=True, description=description, partitions_def=DAILY)
    for name, description in [
        ("ids_unique", "every message id appears once in the partition"),
        ("keys_not_null", "id, channel_id, created_at and updated_at are never null"),
        ("created_at_in_window", "every created_at lies in the partition's half-open UTC day"),
        ("row_count_matches_api", "the partition holds exactly the messages the API paged"),
    ]
]


@dg.asset(key=CHANNELS, group_name="ingestion", kinds={"parquet", "duckdb"})
def channels(bird: BirdApi, archive: Archive) -> dg.MaterializeResult:
    """One row per channel of the workspace (GET /workspaces/{ws}/channels): the platform dimension."""

    async def fetch() -> list:
        async with bird.client(archive.state_dir) as client:
            return await client.list_channels()

    frame = channels_frame(asyncio.run(fetch()), bird.settings().workspace_id)
    archive.lake.write_snapshot(CHANNELS, bird.settings().workspace_id, frame.to_arrow())
    archive.warehouse.load_channels(frame)
    per_platform = frame.group_by("platform").len().sort("platform")
    return dg.MaterializeResult(
        metadata={
            "channels": len(frame),
            "platforms": ", ".join(f"{platform}: {n}" for platform, n in per_platform.iter_rows()),
        }
    )


@dg.asset(
    key=RAW_MESSAGES,
    partitions_def=DAILY,
    group_name="ingestion",
    kinds={"parquet"},
    check_specs=RAW_MESSAGE_CHECKS,
    pool="bird_api",
)
def raw_messages(context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive) -> dg.MaterializeResult:
    """One row per message id created in the partition's UTC day, typed keys beside Bird's raw JSON."""
    window = context.partition_time_window
    landed, requests = asyncio.run(_land_day(bird, archive, window.start.date()))
    checks = raw_partition_checks(
        archive.lake.scan_partition(RAW_MESSAGES, bird.settings().workspace_id, window.start.date()),
        start=window.start,
        end=window.end,
        paged_rows=landed.stats.messages,
    )
    return dg.MaterializeResult(
        metadata={**_landing_metadata(landed), **requests},
        check_results=[
            dg.AssetCheckResult(
                check_name=c.name, passed=c.passed, description=c.description, metadata=dict(c.figures)
            )
            for c in checks
        ],
    )


async def _land_day(bird: BirdApi, archive: Archive, day: dt.date) -> tuple[LandedPartition, dict[str, int]]:
    """Land one day; also returns the request figures of the client that did it."""
    settings = archive.fetch_settings()
    async with bird.client(archive.state_dir) as client:
        channel_ids = None
        if settings.source == "channels":
            channel_ids = select_channel_ids(await client.list_channels(), archive.platforms)
        landed = await land_messages(
            client,
            archive.lake,
            archive.staging_root,
            workspace_id=bird.settings().workspace_id,
            day=day,
            settings=settings,
            channel_ids=channel_ids,
            on_messages=MESSAGES_LANDED.add,
            pii=archive.pii_policy(),
        )
        stats = client.stats
        return landed, {
            "requests": stats.requests,
            "retries": stats.retries,
            "rate_limited_429": stats.rate_limited,
            "server_errors_5xx": stats.server_errors,
            "transport_errors": stats.transport_errors,
        }


def _landing_metadata(landed: LandedPartition) -> dict[str, object]:
    stats = landed.stats
    return {
        "messages": stats.messages,
        "pages": stats.pages,
        "sub_windows": stats.leaves,
        "sub_windows_split": stats.splits,
        "resumed_sub_windows": stats.resumed_leaves,
        "outside_window_dropped": stats.outside_window,
        "duplicates_dropped": stats.duplicates,
        "rejected_records": stats.rejected,
        "duration_s": round(landed.seconds, 3),
        "messages_per_s": round(stats.messages / landed.seconds, 1) if landed.seconds else 0.0,
        "path": dg.MetadataValue.path(str(landed.path)),
    }


@dg.asset(
    key="messages",
    partitions_def=DAILY,
    deps=[RAW_MESSAGES, CHANNELS],
    group_name="warehouse",
    kinds={"duckdb", "polars"},
)
def messages(context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive) -> dg.MaterializeResult:
    """One row per message id (latest updated_at) in the DuckDB warehouse, plus its days' delivery marts."""
    window = context.partition_time_window
    workspace_id = bird.settings().workspace_id
    flat = flattened_partition(archive.lake, RAW_MESSAGES, workspace_id, window.start.date())
    rejected = archive.lake.scan_partition(REJECTED_RECORDS, workspace_id, window.start.date())
    result = archive.warehouse.load_messages(
        workspace_id=workspace_id,
        start=window.start,
        end=window.end,
        messages=flat,
        rejected=rejected.collect() if rejected is not None else None,
    )
    return dg.MaterializeResult(
        metadata={
            "rows": result.n_rows,
            "rows_replaced": result.n_replaced,
            "mart_days_recomputed": len(result.days),
            "warehouse": dg.MetadataValue.path(str(archive.warehouse.path)),
        }
    )
