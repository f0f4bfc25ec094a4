"""Land one UTC day of a workspace's messages in the lake: fetch, repair, then swap the partition in whole.

Completeness: after the fan-out, the landed count of every channel is compared with Bird's own daily channel
metrics; a channel that holds fewer messages than Bird reports (a message created behind the cursor while the
window was paged, say) is paged again over the day through its channel list, keeping only ids not yet landed.
What still differs after `repair_rounds` is left to the reconciliation check to report.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.bird.errors import BirdAPIError
from pipelines.ingest.checkpoint import StagingArea
from pipelines.ingest.fetch import (
    KEEP_PII,
    RAW_MESSAGE_ARROW_SCHEMA,
    FetchSettings,
    FetchStats,
    MessageLister,
    PartitionFetcher,
)
from pipelines.ingest.pii import PiiPolicy
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from transforms.schema import REJECTED_RECORD_SCHEMA

RAW_MESSAGES = "raw_messages"
REJECTED_RECORDS = "rejected_records"


@dataclass(frozen=True)
class LandedPartition:
    """What landing one partition produced."""

    path: Path
    rows: int
    stats: FetchStats
    seconds: float
    repaired_channels: list[str] = field(default_factory=list)
    bird_counts: dict[str, int] | None = None  # Bird's own count per channel, when its metrics answered


async def land_messages(
    client: MessageLister,
    lake: Lake,
    staging_root: Path,
    *,
    workspace_id: str,
    day: dt.date,
    settings: FetchSettings,
    channel_ids: list[str] | None = None,
    on_messages: Callable[[int], None] | None = None,
    pii: PiiPolicy = KEEP_PII,
) -> LandedPartition:
    """Page the day's window into spool files (resuming a checkpoint if one exists), then publish it whole."""
    started = time.perf_counter()
    window = Window.day(day)
    partition_key = f"{workspace_id}/{day.isoformat()}"
    root = staging_root / RAW_MESSAGES / f"workspace_id={workspace_id}" / f"date={day.isoformat()}"
    ingested_at = dt.datetime.now(dt.UTC)

    def fetcher(staging: StagingArea, known_ids: frozenset[str] = frozenset()) -> PartitionFetcher:
        return PartitionFetcher(
            client,
            staging,
            workspace_id=workspace_id,
            settings=settings,
            ingested_at=ingested_at,
            on_messages=on_messages,
            known_ids=known_ids,
            pii=pii,
        )

    bird_counts = await _bird_counts(client, window)
    expected: dict[str | None, int] | None = None
    if bird_counts is not None:
        expected = {None: sum(bird_counts.values()), **bird_counts}
    main = StagingArea(root / "main")
    result = await fetcher(main).run(partition_key, window, channel_ids, expected)
    spools = [main.spool_path(name) for name in result.spool_files]
    stats, repaired, rejected = result.stats, [], list(result.rejected)
    for round_number in range(1, settings.repair_rounds + 1):
        bird_counts = await _bird_counts(client, window)  # again: messages may have arrived while paging
        landed = _counts_by_channel(spools)
        wanted = (
            set(channel_ids) if channel_ids is not None else None
        )  # a platform filter limits the repair too
        short = sorted(
            c
            for c, n in (bird_counts or {}).items()
            if landed.get(c, 0) < n and (wanted is None or c in wanted)
        )
        if not short:
            break
        repair = StagingArea(root / f"repair-{round_number}")
        known = _ids_of_channels(spools, short)
        extra = await fetcher(repair, known).run(f"{partition_key}/repair-{round_number}", window, short)
        spools += [repair.spool_path(name) for name in extra.spool_files]
        stats.pages += extra.stats.pages
        stats.messages += extra.stats.messages
        rejected += extra.rejected
        repaired += short
    rows = _assemble(lake, workspace_id, day, spools)
    _write_rejected(lake, workspace_id, day, rejected, ingested_at)
    stats.rejected = len(rejected)
    StagingArea(root).clear()
    return LandedPartition(
        lake.partition_file(RAW_MESSAGES, workspace_id, day),
        rows,
        stats,
        time.perf_counter() - started,
        repaired,
        bird_counts,
    )


async def _bird_counts(client: MessageLister, window: Window) -> dict[str, int] | None:
    """Messages per channel that Bird's reporting API counts for the window; None when it does not answer."""
    try:
        rows = await client.get_channel_metrics(window.start, window.end)
    except BirdAPIError:
        return None
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row["channelId"]] += int(row["count"])
    return dict(counts)


def _counts_by_channel(spools: list[Path]) -> dict[str, int]:
    if not spools:
        return {}
    counts = pl.scan_parquet(spools).group_by("channel_id").len().collect()
    return dict(counts.iter_rows())


def _ids_of_channels(spools: list[Path], channel_ids: list[str]) -> frozenset[str]:
    if not spools:
        return frozenset()
    ids = pl.scan_parquet(spools).filter(pl.col("channel_id").is_in(channel_ids)).select("id").collect()
    return frozenset(ids["id"].to_list())


# Rows per row group of a raw_messages partition: spool files (one per leaf flush, often small) are
# batched so that readers see few, large row groups.
ROW_GROUP_ROWS = 100_000
# Key of the partition file's metadata holding how many rows have no `parsed` fields (see `unparsed_rows`).
UNPARSED_ROWS_KEY = "bird_etl.unparsed_rows"


def _assemble(lake: Lake, workspace_id: str, day: dt.date, spools: list[Path]) -> int:
    """Stream the spool files into the partition's new version, in row groups of about ROW_GROUP_ROWS."""
    rows = unparsed = 0
    pending: list[pa.Table] = []
    with lake.write_partition(RAW_MESSAGES, workspace_id, day, RAW_MESSAGE_ARROW_SCHEMA) as writer:
        for path in spools:
            table = _read_spool(path)
            pending.append(table)
            rows += table.num_rows
            unparsed += table.column("parsed").null_count
            if sum(t.num_rows for t in pending) >= ROW_GROUP_ROWS:
                writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
                pending = []
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=ROW_GROUP_ROWS)
        writer.add_key_value_metadata({UNPARSED_ROWS_KEY: str(unparsed)})
    return rows


def _read_spool(path: Path) -> pa.Table:
    """A spool file; one written before `parsed` existed (a resumed checkpoint) gets it all null."""
    table = pq.read_table(path)
    if "parsed" not in table.column_names:
        parsed = RAW_MESSAGE_ARROW_SCHEMA.field("parsed")
        table = table.append_column(parsed, pa.nulls(table.num_rows, parsed.type))
    return table.select(RAW_MESSAGE_ARROW_SCHEMA.names).cast(RAW_MESSAGE_ARROW_SCHEMA)


def unparsed_rows(path: Path) -> int | None:
    """Rows of a raw_messages partition file whose `parsed` is null; None when the file does not say."""
    value = (pq.read_metadata(path).metadata or {}).get(UNPARSED_ROWS_KEY.encode())
    return None if value is None else int(value)


def _write_rejected(
    lake: Lake, workspace_id: str, day: dt.date, rejected: list[dict[str, str]], ingested_at: dt.datetime
) -> None:
    """The partition's quarantine, replaced with every landing (empty when nothing was rejected)."""
    frame = pl.DataFrame(
        {
            "workspace_id": [workspace_id] * len(rejected),
            "partition_date": [day] * len(rejected),
            "reason": [r["reason"] for r in rejected],
            "raw": [r["raw"] for r in rejected],
            "ingested_at": [ingested_at] * len(rejected),
        },
        schema=REJECTED_RECORD_SCHEMA,
    )
    schema = REJECTED_RECORD_SCHEMA.to_arrow()
    with lake.write_partition(REJECTED_RECORDS, workspace_id, day, schema) as writer:
        writer.write_table(frame.to_arrow().cast(schema))
