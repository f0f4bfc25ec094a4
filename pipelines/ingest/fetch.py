"""Page one partition's messages with an adaptive, concurrent fan-out of leaf windows.

Bird documents neither the ordering of the message lists nor whether `startAt`/`endAt` are inclusive, so the
fetcher trusts neither (the one written-down assumption is that the window filters on `createdAt`):
- each leaf asks for its window widened by a millisecond on both sides, then keeps exactly the items whose
  `createdAt` falls inside `[start, end)`; leaves tile the partition with no gap and no overlap, so every
  message lands in exactly one leaf, and a message at midnight in exactly one partition;
- items are deduplicated by id within a leaf, whatever order pages arrive in;
- when a leaf's first page is full and covers only part of the leaf, the leaf is split into children sized
  from the observed density, so one busy hour does not serialize the day (the first page is dropped and
  re-read by the children: one request per split, no assumption on order).

Memory is bounded by `spool_rows`, whatever the day's size: pages are held, as Arrow rows, across all the
leaves in flight until that many rows wait; they are then written to one spool file, each leaf's rows as
one row group of it (a segment), and the checkpoint naming the file is saved (see `checkpoint.py`), so a
resumed run skips what landed. The file is written in a thread while the leaves go on paging, so at most
twice `spool_rows` rows (and a page per leaf) are in memory: one spool being written, the next filling.
The rows still held when the last page has come are handed over in memory (a day smaller than
`spool_rows` never touches the disk); a run that dies before its partition is assembled pages them again.
Spool files hold what was served (keys, raw JSON and the parsed fields, see `rows.py`); the partition's
other columns are added when it is assembled (`land.py`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.bird.errors import PaginationError, ValidationError
from pipelines.bird.models import RawMessagePage, RejectedRecord
from pipelines.bird.query import MessageQuery
from pipelines.ingest.checkpoint import Checkpoint, LeafProgress, LeafState, Segment, StagingArea
from pipelines.ingest.pii import PiiMode, PiiPolicy
from pipelines.ingest.rows import SPOOL_SCHEMA, key_page, with_raw
from pipelines.ingest.windows import MILLISECOND, Window
from pipelines.lake import TMP_SUFFIX, parquet_options

KEEP_PII = PiiPolicy(PiiMode.KEEP)
# Part of the plan key: a checkpoint naming spool files of another layout is discarded, not misread.
SPOOL_LAYOUT = "segments-2"
# Spool files live minutes and are read once: fast lz4 instead of the lake's zstd.
_SPOOL_OPTIONS = parquet_options(SPOOL_SCHEMA, compression="lz4")

# A spool segment as the assembly reads it: a spool file and the row group of it holding one leaf's rows.
SpoolSegment = tuple[Path, int]
# A leaf's rows, spooled or still in memory.
FetchedRows = SpoolSegment | pa.Table


class MessageLister(Protocol):
    """What ingestion needs of the Bird client: the two list endpoints, and Bird's own daily counts."""

    async def list_messages_raw(
        self, channel_id: str | None, query: MessageQuery, page_token: str | None = None
    ) -> RawMessagePage: ...

    async def get_channel_metrics(self, period_start: dt.datetime, period_end: dt.datetime) -> list[dict]: ...


@dataclass(frozen=True)
class FetchSettings:
    """How a partition is fanned out and paged."""

    source: Literal["workspace", "channels"] = "workspace"
    page_size: int = 1000
    initial_parts: int = 8
    pages_per_leaf: int = 4
    min_leaf_width: dt.timedelta = dt.timedelta(minutes=1)
    max_split: int = 32
    max_pages_per_leaf: int = 100_000
    leaf_concurrency: int = 32
    spool_rows: int = 50_000  # rows held in memory across the partition's leaves before they are spooled
    max_leaf_restarts: int = 2
    repair_rounds: int = 1  # re-page channels holding fewer messages than Bird's channel metrics report

    def plan_key(self, channel_ids: list[str] | None) -> str:
        channels = ",".join(sorted(channel_ids)) if channel_ids else "-"
        return f"{SPOOL_LAYOUT}|{self.source}|{self.page_size}|{self.initial_parts}|{channels}"


@dataclass
class FetchStats:
    """What paging one partition cost and found."""

    pages: int = 0
    messages: int = 0
    leaves: int = 0
    splits: int = 0
    resumed_leaves: int = 0
    restarted_leaves: int = 0
    outside_window: int = 0
    duplicates: int = 0
    rejected: int = 0


@dataclass
class FetchResult:
    segments: list[FetchedRows]  # in leaf order
    stats: FetchStats = field(default_factory=FetchStats)
    rejected: list[dict[str, str]] = field(default_factory=list)


@dataclass
class _Held:
    """A leaf's pages not yet in a spool file, and what its checkpoint becomes once they are."""

    leaf: LeafProgress
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    next_token: str | None = None  # the token that follows the held pages; None once the leaf is done
    rejected: list[dict[str, str]] = field(default_factory=list)


class PartitionFetcher:
    """Fetches one partition window into spool files under its staging area."""

    def __init__(
        self,
        client: MessageLister,
        staging: StagingArea,
        *,
        settings: FetchSettings,
        on_messages: Callable[[int], None] | None = None,
        known_ids: frozenset[str] = frozenset(),
        pii: PiiPolicy = KEEP_PII,
    ) -> None:
        self.client = client
        self.pii = pii
        self.known_ids = known_ids  # landed by an earlier pass: a repair pass spools only what is new
        self.staging = staging
        self.settings = settings
        self.on_messages = on_messages or (lambda _n: None)
        self.stats = FetchStats()
        self._held: dict[str, _Held] = {}
        self._held_rows = 0
        self._spooling = asyncio.Lock()

    async def run(
        self,
        partition_key: str,
        window: Window,
        channel_ids: list[str] | None = None,
        expected: dict[str | None, int] | None = None,
    ) -> FetchResult:
        """Page the window (per channel when `channel_ids` is given) and return the spool segments in order.

        `expected` holds message counts by channel id (None: the whole workspace) when Bird's metrics
        told them; the first split is then sized to them, so few leaves need splitting on the fly.
        """
        plan_key = self.settings.plan_key(channel_ids)
        checkpoint = self.staging.load(partition_key, plan_key)
        if checkpoint is None:
            self.staging.clear()
            checkpoint = Checkpoint(partition_key, plan_key)
            for channel_id in channel_ids or [None]:
                for part in window.split(self._initial_parts((expected or {}).get(channel_id))):
                    checkpoint.add(LeafProgress(window_key=part.key(), channel_id=channel_id))
        else:
            self.stats.resumed_leaves = sum(
                1 for leaf in checkpoint.leaves.values() if leaf.state is not LeafState.PENDING
            )
            self.on_messages(sum(leaf.rows for leaf in checkpoint.leaves.values()))
        self.staging.discard_unreferenced(checkpoint)
        self.staging.save(checkpoint)
        await self._run_leaves(checkpoint)
        in_memory = self._hand_over_held()
        leaves = sorted(checkpoint.leaves.values(), key=lambda leaf: (leaf.channel_id or "", leaf.window_key))
        rejected = [record for leaf in leaves for record in leaf.rejected]
        self.stats.leaves = len(leaves)
        self.stats.messages = sum(leaf.rows for leaf in leaves)
        self.stats.rejected = len(rejected)
        segments: list[FetchedRows] = []
        for leaf in leaves:
            segments += [self._located(segment) for segment in leaf.segments]
            if leaf.leaf_id in in_memory:
                segments.append(in_memory[leaf.leaf_id])
        return FetchResult(segments, self.stats, rejected)

    def _initial_parts(self, expected_messages: int | None) -> int:
        if expected_messages is None:
            return self.settings.initial_parts
        per_leaf = self.settings.pages_per_leaf * self.settings.page_size
        return max(1, min(math.ceil(expected_messages / per_leaf), self.settings.max_split))

    async def _run_leaves(self, checkpoint: Checkpoint) -> None:
        queue: asyncio.Queue[LeafProgress] = asyncio.Queue()
        for leaf in checkpoint.unfinished():
            queue.put_nowait(leaf)

        async def worker() -> None:
            while True:
                leaf = await queue.get()
                try:
                    for child in await self._page_leaf(checkpoint, leaf):
                        queue.put_nowait(child)
                finally:
                    queue.task_done()

        workers = [asyncio.create_task(worker()) for _ in range(self.settings.leaf_concurrency)]
        drained = asyncio.create_task(queue.join())
        try:
            done, _ = await asyncio.wait([drained, *workers], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not drained:
                    task.result()  # a worker only ends by raising: re-raise its error
        finally:
            for task in [drained, *workers]:
                task.cancel()
            await asyncio.gather(drained, *workers, return_exceptions=True)

    async def _page_leaf(self, checkpoint: Checkpoint, leaf: LeafProgress) -> list[LeafProgress]:
        """Page one leaf to its end; returns the children when the leaf is split instead."""
        window = Window.from_key(leaf.window_key)
        # A channel's leaf is paged on the channel's own list with source="channels"; otherwise (a repair of
        # the workspace source) on the workspace list filtered by channel, which also works for a channel
        # deleted since: its messages stay in the workspace.
        by_channel_list = leaf.channel_id is not None and self.settings.source == "channels"
        query = MessageQuery(
            limit=self.settings.page_size,
            start_at=window.start - MILLISECOND,
            end_at=window.end + MILLISECOND,
            channel_ids=(leaf.channel_id,) if leaf.channel_id and not by_channel_list else (),
        )
        seen = self._landed_ids(leaf)
        tokens: set[str] = set()
        restarts = 0
        # `cursor` runs ahead of `leaf.next_token`: the checkpoint (saved by any leaf at any time) may only
        # ever hold the token that follows the pages already in spool files, or a resume would skip the
        # pages that were still held in memory.
        cursor = leaf.next_token
        while True:
            token = cursor
            try:
                page = await self.client.list_messages_raw(
                    leaf.channel_id if by_channel_list else None, query, token
                )
            except ValidationError as error:
                if (
                    token is None
                    or "pageToken" not in (error.details or {})
                    or restarts >= self.settings.max_leaf_restarts
                ):
                    raise
                restarts += 1
                self.stats.restarted_leaves += 1
                await self._restart(checkpoint, leaf)
                seen, tokens, cursor = set(), set(), None
                continue
            self.stats.pages += 1
            next_token = page.next_page_token
            keyed = await asyncio.to_thread(key_page, page.raw)  # in C, outside the GIL, mostly
            del page  # not kept while the next one is awaited: each leaf in flight would hold a page
            if leaf.state is LeafState.PENDING and not leaf.pages:
                children = self._split(leaf, window, keyed.rows, next_token)
                if children:
                    checkpoint.replace(leaf, children)
                    self.staging.save(checkpoint)
                    self.stats.splits += 1
                    return children
            leaf.state = LeafState.PAGING
            leaf.pages += 1
            rows = self._accepted(keyed.rows, window, seen)
            await self._hold(checkpoint, leaf, rows, keyed.rejected, next_token)
            if next_token is None:
                return []
            if next_token in tokens or next_token == token:
                raise PaginationError(
                    f"page token repeated while paging {leaf.leaf_id}: the server is cycling, stopping"
                )
            tokens.add(next_token)
            if leaf.pages >= self.settings.max_pages_per_leaf:
                raise PaginationError(
                    f"more than {self.settings.max_pages_per_leaf} pages in leaf {leaf.leaf_id}; "
                    "raise max_pages_per_leaf or check the server"
                )
            cursor = next_token

    def _split(
        self, leaf: LeafProgress, window: Window, rows: pa.RecordBatch, next_token: str | None
    ) -> list[LeafProgress]:
        """Children for a leaf whose first page shows it holds many pages; [] to page it as it is."""
        settings = self.settings
        if next_token is None or rows.num_rows < settings.page_size:
            return []
        if window.width <= settings.min_leaf_width:
            return []
        created = rows.column("created_at")
        inside = created.filter(
            pc.and_(pc.greater_equal(created, window.start), pc.less(created, window.end))
        )
        stamps = pc.min_max(inside)
        covered = stamps["max"].as_py() - stamps["min"].as_py() if len(inside) > 1 else window.width
        covered = max(covered, MILLISECOND)
        estimated_pages = rows.num_rows / settings.page_size * (window.width / covered)
        if estimated_pages <= 2 * settings.pages_per_leaf:
            return []  # a little over target: paging on is cheaper than the split's extra request
        parts = min(math.ceil(estimated_pages / settings.pages_per_leaf), settings.max_split)
        return [
            LeafProgress(window_key=child.key(), channel_id=leaf.channel_id) for child in window.split(parts)
        ]

    def _accepted(self, rows: pa.RecordBatch, window: Window, seen: set[str]) -> pa.RecordBatch:
        """The page's rows that belong to the leaf's window and are new."""
        created = rows.column("created_at")
        inside = pc.and_(pc.greater_equal(created, window.start), pc.less(created, window.end))
        known, stats = self.known_ids, self.stats
        keep = []
        for message_id, is_inside in zip(rows.column("id").to_pylist(), inside.to_pylist(), strict=True):
            if not is_inside:
                stats.outside_window += 1
            elif message_id in seen or message_id in known:
                stats.duplicates += 1
            else:
                seen.add(message_id)
                keep.append(True)
                continue
            keep.append(False)
        accepted = rows.filter(pa.array(keep, pa.bool_()))
        if self.pii.keeps_everything:
            return accepted
        raw = accepted.column("raw").cast(pa.binary()).to_pylist()
        return with_raw(accepted, [self.pii.scrub_message(item) for item in raw])

    async def _hold(
        self,
        checkpoint: Checkpoint,
        leaf: LeafProgress,
        rows: pa.RecordBatch,
        rejected: list[RejectedRecord],
        next_token: str | None,
    ) -> None:
        """Keep a page's rows until enough rows wait across the leaves, then spool them all."""
        while self._held_rows >= self.settings.spool_rows:  # the next spool is due: wait for it to start
            async with self._spooling:
                pass
        held = self._held.setdefault(leaf.leaf_id, _Held(leaf))
        held.batches.append(rows)
        held.rows += rows.num_rows
        held.next_token = next_token
        held.rejected += (
            {"raw": self.pii.scrub_message(record.raw).decode("utf-8", "replace"), "reason": record.reason}
            for record in rejected
        )
        self._held_rows += rows.num_rows
        self.on_messages(rows.num_rows)
        if self._held_rows >= self.settings.spool_rows:
            await self._spool(checkpoint)

    async def _spool(self, checkpoint: Checkpoint) -> None:
        """Write every held row to one spool file (a row group per leaf) and checkpoint the leaves past it.

        The file is written in a thread, so the other leaves keep paging (and holding new rows) meanwhile;
        spools happen one at a time, in order, so a leaf's checkpointed token only ever moves forward.
        """
        async with self._spooling:
            taken, self._held, self._held_rows = self._held, {}, 0
            name = f"{uuid.uuid4().hex}.parquet"
            with_rows = [held for held in taken.values() if held.rows]
            if with_rows:
                path = self.staging.spool_path(name)
                await asyncio.to_thread(write_spool, path, [held.batches for held in with_rows])
            for row_group, held in enumerate(with_rows):
                held.leaf.segments.append(Segment(name, row_group))
            _release(taken.values())
            self.staging.save(checkpoint)

    def _hand_over_held(self) -> dict[str, pa.Table]:
        """The held rows of each leaf, kept in memory (and out of the saved checkpoint) for the assembly."""
        taken, self._held, self._held_rows = self._held, {}, 0
        _release(taken.values())
        return {
            leaf_id: pa.Table.from_batches(held.batches, SPOOL_SCHEMA)
            for leaf_id, held in taken.items()
            if held.rows
        }

    async def _restart(self, checkpoint: Checkpoint, leaf: LeafProgress) -> None:
        """Page a leaf again from its start (its token was rejected, e.g. expired); rows it spooled stay in
        their files, unreferenced. A spool under way finishes first, so none of its rows come back."""
        async with self._spooling:
            dropped = self._held.pop(leaf.leaf_id, None)
            self._held_rows -= dropped.rows if dropped else 0
            leaf.segments, leaf.rows, leaf.pages, leaf.next_token, leaf.rejected = [], 0, 0, None, []
            leaf.state = LeafState.PAGING
            self.staging.save(checkpoint)

    def _landed_ids(self, leaf: LeafProgress) -> set[str]:
        segments = [self._located(segment) for segment in leaf.segments]
        return {i for table in read_segments(segments, ["id"]) for i in table.column("id").to_pylist()}

    def _located(self, segment: Segment) -> SpoolSegment:
        return self.staging.spool_path(segment.file), segment.row_group


def _release(taken: Iterable[_Held]) -> None:
    """Move held pages' progress onto their leaves."""
    for held in taken:
        held.leaf.rows += held.rows
        held.leaf.next_token = held.next_token
        held.leaf.rejected += held.rejected
        if held.next_token is None:
            held.leaf.state = LeafState.DONE


def write_spool(path: Path, segments: Sequence[Sequence[pa.RecordBatch]]) -> None:
    """One spool file, a row group per segment, that appears whole or not at all (written under a hidden
    name, fsynced, renamed): the checkpoint saved next names it."""
    tmp = path.with_name(f".{path.name}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as sink:
            with pq.ParquetWriter(sink, SPOOL_SCHEMA, **_SPOOL_OPTIONS) as writer:
                for batches in segments:
                    table = pa.Table.from_batches(batches, SPOOL_SCHEMA)
                    writer.write_table(table, row_group_size=table.num_rows)
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_segments(
    segments: Iterable[FetchedRows], columns: Sequence[str] | None = None
) -> Iterator[pa.Table]:
    """Each segment's rows, in order; a spool file is opened once while its segments keep coming."""
    open_file = functools.lru_cache(maxsize=64)(pq.ParquetFile)
    for segment in segments:
        if isinstance(segment, pa.Table):
            yield segment if columns is None else segment.select(columns)
        else:
            path, row_group = segment
            yield open_file(path).read_row_group(row_group, columns=columns, use_threads=False)
