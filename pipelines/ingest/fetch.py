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
Progress is checkpointed (see `checkpoint.py`) at every spool flush, so a resumed run skips what landed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, chain
from operator import attrgetter
from types import SimpleNamespace
from typing import Literal, Protocol

import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from pipelines.bird.errors import PaginationError, ValidationError
from pipelines.bird.models import MessageKey, MessagePage, MessageRecord, decode_message_record
from pipelines.bird.query import MessageQuery
from pipelines.ingest.checkpoint import Checkpoint, LeafProgress, LeafState, StagingArea
from pipelines.ingest.pii import PiiMode, PiiPolicy
from pipelines.ingest.windows import MILLISECOND, Window
from pipelines.lake import write_table_atomically
from transforms.schema import RAW_MESSAGE_SCHEMA


def _nested_as(type_: pa.DataType, string: pa.DataType, list_type: Callable[..., pa.DataType]) -> pa.DataType:
    """`type_` with every text inside it as `string` and every list as `list_type`: Parquet cannot slice
    string views inside nested types yet, and Arrow's JSON reader produces neither views nor large lists."""
    if pa.types.is_struct(type_):
        return pa.struct([f.with_type(_nested_as(f.type, string, list_type)) for f in type_])
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        return list_type(type_.value_field.with_type(_nested_as(type_.value_type, string, list_type)))
    if pa.types.is_string(type_) or pa.types.is_large_string(type_) or type_ == pa.string_view():
        return string
    return type_


RAW_MESSAGE_ARROW_SCHEMA = pa.schema(
    f.with_type(_nested_as(f.type, pa.large_string(), pa.large_list)) if pa.types.is_nested(f.type) else f
    for f in RAW_MESSAGE_SCHEMA.to_arrow()
)
KEEP_PII = PiiPolicy(PiiMode.KEEP)
_UTC_MICROS = pa.timestamp("us", tz="UTC")


class MessageLister(Protocol):
    """What ingestion needs of the Bird client: the two list endpoints, and Bird's own daily counts."""

    async def list_workspace_messages(
        self, query: MessageQuery, page_token: str | None = None
    ) -> MessagePage: ...

    async def list_channel_messages(
        self, channel_id: str, query: MessageQuery, page_token: str | None = None
    ) -> MessagePage: ...

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
    spool_rows: int = 20_000
    max_leaf_restarts: int = 2
    repair_rounds: int = 1  # re-page channels holding fewer messages than Bird's channel metrics report

    def plan_key(self, channel_ids: list[str] | None) -> str:
        channels = ",".join(sorted(channel_ids)) if channel_ids else "-"
        return f"{self.source}|{self.page_size}|{self.initial_parts}|{channels}"


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
    spool_files: list[str]
    stats: FetchStats = field(default_factory=FetchStats)
    rejected: list[dict[str, str]] = field(default_factory=list)


class PartitionFetcher:
    """Fetches one partition window into spool files under its staging area."""

    def __init__(
        self,
        client: MessageLister,
        staging: StagingArea,
        *,
        workspace_id: str,
        settings: FetchSettings,
        ingested_at: dt.datetime,
        on_messages: Callable[[int], None] | None = None,
        known_ids: frozenset[str] = frozenset(),
        pii: PiiPolicy = KEEP_PII,
    ) -> None:
        self.client = client
        self.pii = pii
        self.known_ids = known_ids  # landed by an earlier pass: a repair pass spools only what is new
        self.staging = staging
        self.workspace_id = workspace_id
        self.settings = settings
        self.ingested_at = ingested_at
        self.on_messages = on_messages or (lambda _n: None)
        self.stats = FetchStats()

    async def run(
        self,
        partition_key: str,
        window: Window,
        channel_ids: list[str] | None = None,
        expected: dict[str | None, int] | None = None,
    ) -> FetchResult:
        """Page the window (per channel when `channel_ids` is given) and return the spool files in order.

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
        leaves = sorted(checkpoint.leaves.values(), key=lambda leaf: (leaf.channel_id or "", leaf.window_key))
        rejected = [record for leaf in leaves for record in leaf.rejected]
        self.stats.leaves = len(leaves)
        self.stats.messages = sum(leaf.rows for leaf in leaves)
        self.stats.rejected = len(rejected)
        return FetchResult([name for leaf in leaves for name in leaf.spool_files], self.stats, rejected)

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
        buffer = self._buffer()
        tokens: set[str] = set()
        restarts = 0
        # `cursor` runs ahead of `leaf.next_token`: the checkpoint (saved by any leaf at any time) may only
        # ever hold the token that follows the pages already in spool files, or a resume would skip the
        # pages that were still in memory.
        cursor = leaf.next_token
        while True:
            token = cursor
            try:
                page = await self._list(leaf.channel_id if by_channel_list else None, query, token)
            except ValidationError as error:
                if (
                    token is None
                    or "pageToken" not in (error.details or {})
                    or restarts >= self.settings.max_leaf_restarts
                ):
                    raise
                restarts += 1
                self.stats.restarted_leaves += 1
                self._restart(checkpoint, leaf)
                seen, buffer, tokens, cursor = set(), self._buffer(), set(), None
                continue
            self.stats.pages += 1
            if leaf.state is LeafState.PENDING and not leaf.pages:
                children = self._split(leaf, window, page)
                if children:
                    checkpoint.replace(leaf, children)
                    self.staging.save(checkpoint)
                    self.stats.splits += 1
                    return children
            leaf.state = LeafState.PAGING
            leaf.pages += 1
            new_rows = buffer.add(page, window, seen, self.known_ids, self.stats)
            self.on_messages(new_rows)
            next_token = page.next_page_token
            if next_token is not None:
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
            done = next_token is None
            if done or buffer.rows >= self.settings.spool_rows:
                leaf.next_token = cursor
                self._flush(leaf, buffer)
                buffer = self._buffer()
                if done:
                    leaf.state = LeafState.DONE
                self.staging.save(checkpoint)
            if done:
                return []

    def _buffer(self) -> _SpoolBuffer:
        return _SpoolBuffer(self.workspace_id, self.ingested_at, self.pii)

    async def _list(self, channel_id: str | None, query: MessageQuery, token: str | None) -> MessagePage:
        if channel_id is None:
            return await self.client.list_workspace_messages(query, page_token=token)
        return await self.client.list_channel_messages(channel_id, query, page_token=token)

    def _split(self, leaf: LeafProgress, window: Window, page: MessagePage) -> list[LeafProgress]:
        """Children for a leaf whose first page shows it holds many pages; [] to page it as it is."""
        settings = self.settings
        if page.next_page_token is None or len(page.keys) < settings.page_size:
            return []
        if window.width <= settings.min_leaf_width:
            return []
        stamps = [key.created_at for key in page.keys if window.contains(key.created_at)]
        covered = (max(stamps) - min(stamps)) if len(stamps) > 1 else window.width
        covered = max(covered, MILLISECOND)
        estimated_pages = len(page.keys) / settings.page_size * (window.width / covered)
        if estimated_pages <= 2 * settings.pages_per_leaf:
            return []  # a little over target: paging on is cheaper than the split's extra request
        parts = min(math.ceil(estimated_pages / settings.pages_per_leaf), settings.max_split)
        return [
            LeafProgress(window_key=child.key(), channel_id=leaf.channel_id) for child in window.split(parts)
        ]

    def _flush(self, leaf: LeafProgress, buffer: _SpoolBuffer) -> None:
        leaf.rejected.extend(buffer.rejected)
        if buffer.rows:
            name = f"{leaf.leaf_id.replace(':', '_')}-{len(leaf.spool_files):05d}.parquet"
            # Spool files live minutes and are read once: fast lz4 instead of the lake's zstd.
            write_table_atomically(buffer.table(), self.staging.spool_path(name), compression="lz4")
            leaf.spool_files.append(name)
            leaf.rows += buffer.rows

    def _restart(self, checkpoint: Checkpoint, leaf: LeafProgress) -> None:
        """Page a leaf again from its start (its token was rejected, e.g. expired)."""
        for name in leaf.spool_files:
            self.staging.spool_path(name).unlink(missing_ok=True)
        leaf.spool_files, leaf.rows, leaf.pages, leaf.next_token, leaf.rejected = [], 0, 0, None, []
        leaf.state = LeafState.PAGING
        self.staging.save(checkpoint)

    def _landed_ids(self, leaf: LeafProgress) -> set[str]:
        ids: set[str] = set()
        for name in leaf.spool_files:
            ids.update(pq.read_table(self.staging.spool_path(name), columns=["id"]).column("id").to_pylist())
        return ids


class _SpoolBuffer:
    """Rows of one leaf not yet flushed to a spool file: a page's accepted keys are kept as they are and
    turned into Arrow columns once per flush (no dict per row, no per-row DataFrame work)."""

    def __init__(self, workspace_id: str, ingested_at: dt.datetime, pii: PiiPolicy) -> None:
        self.workspace_id = workspace_id
        self.ingested_at = ingested_at
        self.pii = pii
        self.keys: list[MessageKey] = []
        self.raw: list[bytes] = []
        self.rejected: list[dict[str, str]] = []

    @property
    def rows(self) -> int:
        return len(self.raw)

    def add(
        self, page: MessagePage, window: Window, seen: set[str], known: frozenset[str], stats: FetchStats
    ) -> int:
        """Keep the page's items that belong to the window and are new; returns how many."""
        self.rejected.extend(
            {"raw": self.pii.scrub_message(record.raw).decode("utf-8", "replace"), "reason": record.reason}
            for record in page.rejected
        )
        start, end = window.start, window.end
        inside = [
            (key, raw) for key, raw in zip(page.keys, page.raw, strict=True) if start <= key.created_at < end
        ]
        stats.outside_window += len(page.keys) - len(inside)
        before = len(self.raw)
        for key, raw in inside:
            if key.id in seen or key.id in known:
                stats.duplicates += 1
                continue
            seen.add(key.id)
            self.keys.append(key)
            self.raw.append(raw)
        if not self.pii.keeps_everything:
            self.raw[before:] = [self.pii.scrub_message(raw) for raw in self.raw[before:]]
        return len(self.raw) - before

    def table(self) -> pa.Table:
        keys, rows = self.keys, self.rows
        columns = {
            "workspace_id": pa.array([self.workspace_id] * rows, pa.string()),
            "id": pa.array([k.id for k in keys], pa.string()),
            "channel_id": pa.array([k.channel_id for k in keys], pa.string()),
            "status": pa.array([k.status for k in keys], pa.string()),
            "direction": pa.array([k.direction for k in keys], pa.string()),
            "created_at": pa.array([k.created_at for k in keys], _UTC_MICROS),
            "updated_at": pa.array([k.updated_at for k in keys], _UTC_MICROS),
            "raw": pa.array(self.raw, pa.binary()).cast(pa.string()),
            "ingested_at": pa.array([self.ingested_at] * rows, _UTC_MICROS),
            "parsed": parsed_from_json(self.raw),
        }
        return pa.table(columns).cast(RAW_MESSAGE_ARROW_SCHEMA)


_PARSED_TYPE = RAW_MESSAGE_ARROW_SCHEMA.field("parsed").type


# What Arrow's JSON reader produces for `parsed` (cast back to _PARSED_TYPE afterwards).
_JSON_READER_SCHEMA = pa.schema(list(_nested_as(_PARSED_TYPE, pa.string(), pa.list_)))


def parsed_from_json(raw: list[bytes]) -> pa.Array:
    """The `parsed` column of messages (their JSON as archived, after the PII policy).

    Arrow's JSON reader does it in C (about 10 µs a message, against 20 for msgspec structs turned into
    Arrow arrays) when every message fits the schema; when one does not (a field of another type, say),
    each message is decoded on its own and the ones that do not fit get a null `parsed`, which the
    flattening then decodes from `raw`.
    """
    if not raw:
        return pa.nulls(0, _PARSED_TYPE)
    lines = b"\n".join(item if b"\n" not in item else item.replace(b"\n", b" ") for item in raw)
    try:
        table = pa_json.read_json(
            io.BytesIO(lines),
            read_options=pa_json.ReadOptions(block_size=len(lines) + 1),
            parse_options=pa_json.ParseOptions(
                explicit_schema=_JSON_READER_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        table = None
    if table is None or table.num_rows != len(raw):
        records = [decode_message_record(item) for item in raw]
        return parsed_column([r if type(r) is MessageRecord else None for r in records], _PARSED_TYPE)
    children = [column.combine_chunks() for column in table.columns]
    return pa.StructArray.from_arrays(children, fields=list(_JSON_READER_SCHEMA)).cast(_PARSED_TYPE)


def _attribute(field_name: str) -> str:
    """The msgspec attribute of a JSON field: camelCase -> snake_case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", field_name).lower()


def _field_names(type_: pa.DataType) -> set[str]:
    if pa.types.is_struct(type_):
        return {name for f in type_ for name in (f.name, *_field_names(f.type))}
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        return _field_names(type_.value_type)
    return set()


# Stands in for an absent struct, so that each field is read at C speed (attrgetter over map) with no test.
_ABSENT = SimpleNamespace(**dict.fromkeys(map(_attribute, _field_names(_PARSED_TYPE))))


def parsed_column(values: list, type_: pa.DataType) -> pa.Array:
    """An Arrow array of `type_` from msgspec structs (or None): a few C-speed passes per field, no dict per
    row. Struct fields are read by the snake_case form of their camelCase name; lists become offsets."""
    if pa.types.is_struct(type_):
        mask = pa.array([value is None for value in values], pa.bool_())
        present = [value or _ABSENT for value in values]
        children = [
            parsed_column(list(map(attrgetter(_attribute(field_.name)), present)), field_.type)
            for field_ in type_
        ]
        return pa.StructArray.from_arrays(children, fields=list(type_), mask=mask)
    if pa.types.is_large_list(type_) or pa.types.is_list(type_):
        mask = pa.array([value is None for value in values], pa.bool_())
        offsets = [0, *accumulate(len(value) if value else 0 for value in values)]
        items = list(chain.from_iterable(filter(None, values)))
        large = pa.types.is_large_list(type_)
        return (pa.LargeListArray if large else pa.ListArray).from_arrays(
            pa.array(offsets, pa.int64() if large else pa.int32()),
            parsed_column(items, type_.value_type),
            type=type_,
            mask=mask,
        )
    return pa.array(values, type_)
