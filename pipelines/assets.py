"""Assets: thin steps from a partition's window to a landed, checked and loaded result.

Each asset reads its window from Dagster, calls plain functions (`pipelines.ingest`, `transforms`,
`warehouse`) and reports what it did as metadata; no row reshaping happens here.
"""

import asyncio
import contextlib
import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import dagster as dg
import polars as pl

from pipelines.ingest.channels import CHANNELS, channels_frame, select_channel_ids
from pipelines.ingest.land import RAW_MESSAGES, LandedPartition, land_messages
from pipelines.ingest.paging import run_paging
from pipelines.ingest.windows import Window
from pipelines.loading import WarehouseFeeder, load_days
from pipelines.partitions import ARCHIVE, days_by_workspace
from pipelines.progress import MESSAGES_LANDED
from pipelines.resources import Archive, BirdApi
from transforms.quality import CheckOutcome, raw_partition_checks
from warehouse.store import LoadResult

RAW_MESSAGE_CHECKS = [
    dg.AssetCheckSpec(
        name, asset=RAW_MESSAGES, blocking=True, description=description, partitions_def=ARCHIVE
    )
    for name, description in [
        ("ids_unique", "every message id appears once in the partition"),
        ("keys_not_null", "id, channel_id, created_at and updated_at are never null"),
        ("created_at_in_window", "every created_at lies in the partition's half-open UTC day"),
        ("row_count_matches_api", "the partition holds exactly the messages the API paged"),
    ]
]
MESSAGES: Final = "messages"
MESSAGES_KEY: Final = dg.AssetKey(MESSAGES)
# A backfill run covers many days of a workspace (Dagster's single-run backfills): one process, one client
# and one request budget for all of them, instead of a run's fixed cost per day.
ONE_RUN_PER_BACKFILL: Final = dg.BackfillPolicy.single_run()


@dg.asset(key=CHANNELS, group_name="ingestion", kinds={"parquet", "duckdb"})
def channels(bird: BirdApi, archive: Archive) -> dg.MaterializeResult:
    """One row per channel of each workspace (GET /workspaces/{ws}/channels): the platform dimension."""

    async def fetch(workspace_id: str) -> pl.DataFrame:
        async with bird.client(archive.state_dir, workspace_id) as client:
            return channels_frame(await client.list_channels(), workspace_id)

    frames = [asyncio.run(fetch(w.workspace_id)) for w in bird.workspaces()]
    for frame in frames:
        archive.lake.write_snapshot(CHANNELS, frame["workspace_id"][0], frame.to_arrow())
    every = pl.concat(frames)
    archive.warehouse.load_channels(every)
    per_platform = every.group_by("platform").len().sort("platform")
    return dg.MaterializeResult(
        metadata={
            "channels": len(every),
            "workspaces": len(frames),
            "platforms": ", ".join(f"{platform}: {n}" for platform, n in per_platform.iter_rows()),
        }
    )


RAW_MESSAGES_SPEC = dg.AssetSpec(
    RAW_MESSAGES,
    description="One row per message id created in the partition's UTC day, typed keys beside Bird's raw "
    "JSON.",
    group_name="ingestion",
    kinds={"parquet"},
)
MESSAGES_SPEC = dg.AssetSpec(
    MESSAGES,
    deps=[RAW_MESSAGES, CHANNELS],
    description="One row per message id (latest updated_at) in the DuckDB warehouse, plus its days' delivery "
    "marts.",
    group_name="warehouse",
    kinds={"duckdb", "polars"},
    skippable=True,  # not loaded when a blocking check of raw_messages fails (the step then fails)
)


@dg.multi_asset(
    specs=[RAW_MESSAGES_SPEC, MESSAGES_SPEC],
    check_specs=RAW_MESSAGE_CHECKS,
    partitions_def=ARCHIVE,
    backfill_policy=ONE_RUN_PER_BACKFILL,
    can_subset=True,
    pool="bird_api",
)
def archived_messages(
    context: dg.AssetExecutionContext, bird: BirdApi, archive: Archive
) -> Iterator[dg.MaterializeResult]:
    """Land the days (raw_messages) and load each into the warehouse (messages) as soon as it has landed and
    passed its blocking checks, so the warehouse loads overlap the paging; either asset can run alone."""
    days = days_by_workspace(context.partition_keys)
    selected = context.selected_asset_keys
    if dg.AssetKey(RAW_MESSAGES) not in selected:
        started = time.perf_counter()
        results = load_days(archive.lake, archive.warehouse, RAW_MESSAGES, days)
        metadata = load_metadata(results, archive, time.perf_counter() - started)
        yield dg.MaterializeResult(asset_key=MESSAGES, metadata=metadata)
        return
    feeder = (
        WarehouseFeeder(archive.lake, archive.warehouse, RAW_MESSAGES) if MESSAGES_KEY in selected else None
    )
    with feeder or contextlib.nullcontext():
        landed: list[LandedDay] = []
        requests: Counter[str] = Counter()
        for workspace_id, workspace_days in days.items():
            for_workspace, counts = run_paging(
                _land_days(bird, archive, workspace_id, workspace_days, feeder)
            )
            landed += for_workspace
            requests.update(counts)
        loaded = feeder.close() if feeder else []
    yield dg.MaterializeResult(
        asset_key=RAW_MESSAGES,
        metadata={**_landing_metadata([day.partition for day in landed]), **requests},
        check_results=[
            _check_result(name, [outcome for day in landed for outcome in day.checks if outcome.name == name])
            for name in (spec.name for spec in RAW_MESSAGE_CHECKS)
        ],
    )
    if feeder and all(day.passed for day in landed):
        yield dg.MaterializeResult(
            asset_key=MESSAGES, metadata=load_metadata(loaded, archive, feeder.seconds)
        )


@dataclass(frozen=True)
class LandedDay:
    """A day landed by a run, and its blocking checks' outcomes."""

    partition: LandedPartition
    checks: list[CheckOutcome]

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.checks)


async def _land_days(
    bird: BirdApi,
    archive: Archive,
    workspace_id: str,
    days: list[dt.date],
    feeder: WarehouseFeeder | None,
) -> tuple[list[LandedDay], dict[str, int]]:
    """Land a workspace's days (in order), a few at a time, through one client; check each day as it lands
    and hand it to the feeder when it passes. Also returns the run's request figures."""
    settings = archive.fetch_settings()
    async with bird.client(archive.state_dir, workspace_id) as client:
        channel_ids = None
        if settings.source == "channels":
            channel_ids = select_channel_ids(await client.list_channels(), archive.platforms)
        slots = asyncio.Semaphore(archive.days_in_flight)

        async def land(day: dt.date) -> LandedDay:
            async with slots:
                partition = await land_messages(
                    client,
                    archive.lake,
                    archive.staging_root,
                    workspace_id=workspace_id,
                    day=day,
                    settings=settings,
                    channel_ids=channel_ids,
                    on_messages=MESSAGES_LANDED.add,
                    pii=archive.pii_policy(),
                )
            window = Window.day(day)
            checks = await asyncio.to_thread(
                raw_partition_checks,
                archive.lake.scan_partition(RAW_MESSAGES, workspace_id, day),
                start=window.start,
                end=window.end,
                paged_rows=partition.stats.messages,
            )
            landed = LandedDay(partition, checks)
            if feeder is not None and landed.passed:
                feeder.submit(workspace_id, day, partition.rows)
            return landed

        landed = await asyncio.gather(*(land(day) for day in days))
        stats = client.stats
        return list(landed), {
            "requests": stats.requests,
            "retries": stats.retries,
            "rate_limited_429": stats.rate_limited,
            "server_errors_5xx": stats.server_errors,
            "transport_errors": stats.transport_errors,
        }


def _check_result(name: str, outcomes: list[CheckOutcome]) -> dg.AssetCheckResult:
    """One check's verdict on the run: a single day's as it is, several days' as one (all must pass)."""
    if len(outcomes) == 1:
        only = outcomes[0]
        return dg.AssetCheckResult(
            asset_key=RAW_MESSAGES,
            check_name=name,
            passed=only.passed,
            description=only.description,
            metadata=dict(only.figures),
        )
    failed = [outcome for outcome in outcomes if not outcome.passed]
    return dg.AssetCheckResult(
        asset_key=RAW_MESSAGES,
        check_name=name,
        passed=not failed,
        description="; ".join(outcome.description for outcome in failed) or f"{len(outcomes)} days pass",
        metadata={"partitions": len(outcomes), "partitions_failed": len(failed)},
    )


def _landing_metadata(landed: list[LandedPartition]) -> dict[str, object]:
    def total(field: str) -> int:
        return sum(getattr(partition.stats, field) for partition in landed)

    seconds = max((partition.seconds for partition in landed), default=0.0)
    metadata: dict[str, object] = {
        "messages": total("messages"),
        "pages": total("pages"),
        "sub_windows": total("leaves"),
        "sub_windows_split": total("splits"),
        "resumed_sub_windows": total("resumed_leaves"),
        "outside_window_dropped": total("outside_window"),
        "duplicates_dropped": total("duplicates"),
        "rejected_records": total("rejected"),
        "partitions": len(landed),
        "duration_s": round(seconds, 3),
        "messages_per_s": round(total("messages") / seconds, 1) if seconds else 0.0,
    }
    if len(landed) == 1:
        metadata["path"] = dg.MetadataValue.path(str(landed[0].path))
    return metadata


def load_metadata(results: list[LoadResult], archive: Archive, seconds: float) -> dict[str, object]:
    """What a warehouse load reports: rows written and replaced, mart days recomputed, partitions, and the
    seconds spent loading."""
    return {
        "rows": sum(result.n_rows for result in results),
        "rows_replaced": sum(result.n_replaced for result in results),
        "mart_days_recomputed": len({day for result in results for day in result.days}),
        "partitions": len(results),
        "load_s": round(seconds, 3),
        "warehouse": dg.MetadataValue.path(str(archive.warehouse.path)),
    }
