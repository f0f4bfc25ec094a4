"""Land one UTC day of a workspace's messages in the lake: fetch, repair, then swap the partition in whole.

Completeness: after the fan-out, the landed count of every channel is compared with Bird's own daily channel
metrics; a channel that holds fewer messages than Bird reports (a message created behind the cursor while the
window was paged, say) is paged again over the day through its channel list, keeping only ids not yet landed.
What still differs after `repair_rounds` is left to the reconciliation check to report.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.bird.errors import BirdAPIError
from pipelines.ingest.checkpoint import StagingArea
from pipelines.ingest.fetch import (
    KEEP_PII,
    FetchedRows,
    FetchSettings,
    FetchStats,
    MessageLister,
    PartitionFetcher,
    read_segments,
)
from pipelines.ingest.pii import PiiPolicy
from pipelines.ingest.rows import RAW_MESSAGE_ARROW_SCHEMA, UTC_MICROS
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from transforms.schema import REJECTED_RECORD_SCHEMA

RAW_MESSAGES = "raw_messages"
REJECTED_RECORDS = "rejected_records"


# Rows per row group of a raw_messages partition: readers see few, large row groups.
ROW_GROUP_ROWS = 100_000
# Key of the partition file's metadata holding how many rows have no `parsed` fields (see `unparsed_rows`).
UNPARSED_ROWS_KEY = "bird_etl.unparsed_rows"
# One partition is assembled at a time in a process: each holds a row group in memory (about 130 MB).
_ASSEMBLING = threading.Lock()


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
            settings=settings,
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
    segments = list(result.segments)
    stats, repaired, rejected = result.stats, [], list(result.rejected)
    for round_number in range(1, settings.repair_rounds + 1):
        bird_counts = await _bird_counts(client, window)  # again: messages may have arrived while paging
        landed = _counts_by_channel(segments)
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
        known = _ids_of_channels(segments, short)
        extra = await fetcher(repair, known).run(f"{partition_key}/repair-{round_number}", window, short)
        segments += extra.segments
        stats.pages += extra.stats.pages
        stats.messages += extra.stats.messages
        rejected += extra.rejected
        repaired += short
    # In a thread: Arrow lets go of the GIL while it parses and writes, so other days in flight keep paging.
    rows = await asyncio.to_thread(_assemble, lake, workspace_id, day, segments, ingested_at)
    pa.default_memory_pool().release_unused()  # the assembly's memory to the OS: Arrow's allocator keeps it
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


def _counts_by_channel(segments: list[FetchedRows]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for table in read_segments(segments, ["channel_id"]):
        for item in pc.value_counts(table.column("channel_id")).to_pylist():
            counts[item["values"]] += item["counts"]
    return counts


def _ids_of_channels(segments: list[FetchedRows], channel_ids: list[str]) -> frozenset[str]:
    wanted = pa.array(channel_ids, pa.string())
    tables = read_segments(segments, ["id", "channel_id"])
    return frozenset(
        chain.from_iterable(
            t.filter(pc.is_in(t.column("channel_id"), wanted)).column("id").to_pylist() for t in tables
        )
    )


def _assemble(
    lake: Lake, workspace_id: str, day: dt.date, segments: list[FetchedRows], ingested_at: dt.datetime
) -> int:
    """Stream the spool segments, in leaf order, into the partition's new version, in row groups of
    ROW_GROUP_ROWS (the last one smaller): memory holds one row group, whatever the day's size."""
    rows = unparsed = 0
    pending = RAW_MESSAGE_ARROW_SCHEMA.empty_table()
    with (
        _ASSEMBLING,
        lake.write_partition(RAW_MESSAGES, workspace_id, day, RAW_MESSAGE_ARROW_SCHEMA) as writer,
    ):
        for spooled in read_segments(segments):
            table = _partition_rows(spooled, workspace_id, ingested_at)
            rows += table.num_rows
            unparsed += table.column("parsed").null_count
            pending = pa.concat_tables([pending, table])  # no copy: the chunks are kept as they are
            while pending.num_rows >= ROW_GROUP_ROWS:
                writer.write_table(pending.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                pending = pending.slice(ROW_GROUP_ROWS)
        if pending.num_rows:
            writer.write_table(pending)
        writer.add_key_value_metadata({UNPARSED_ROWS_KEY: str(unparsed)})
    return rows


def _partition_rows(spooled: pa.Table, workspace_id: str, ingested_at: dt.datetime) -> pa.Table:
    """Spooled rows as partition rows: their workspace and landing time added."""
    rows = spooled.num_rows
    columns = {
        "workspace_id": pa.repeat(pa.scalar(workspace_id, pa.string()), rows),
        **dict(zip(spooled.column_names, spooled.columns, strict=True)),
        "ingested_at": pa.repeat(pa.scalar(ingested_at, UTC_MICROS), rows),
    }
    return pa.table(columns).select(RAW_MESSAGE_ARROW_SCHEMA.names).cast(RAW_MESSAGE_ARROW_SCHEMA)


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
