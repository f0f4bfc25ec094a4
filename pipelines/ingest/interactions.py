"""Fetch a partition's interactions: one GET per message, and only where an interaction can still appear.

Bird serves interactions per message (facts 3.4), so at 50 GET/s a naive pull of a million messages takes
hours. The policy (docs/keeping-current.md) asks only for messages that can have them: outgoing, on a
channel whose platform has interactions, not failed, and whose interaction window (`interaction_horizon`
after created_at) was still open when we last asked. A log of the last fetch per message
(`interaction_fetches`) makes that exact: a message is asked once more after its window closes, then never.
With `interaction_backoff` above 1, a message is asked again only once its age has grown that many times
since the last ask (ages 0.5, 1.5, 3.5 and 7.5 days with 2): fewer requests, the same interactions in the end.

The partition of `raw_interactions` is that of the messages (UTC day of the message's created_at). Each pull
merges with the partition's previous version, deduplicated by interaction id, so messages not asked again
keep what was fetched before; both datasets are swapped in atomically.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from pipelines.bird.errors import NotFoundError
from pipelines.bird.models import InteractionList
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.lake import Lake
from pipelines.settlement import SettlementPolicy
from transforms.schema import RAW_INTERACTION_SCHEMA, UTC_TS
from transforms.vocabulary import FAILED_STATUSES, platform_has_interactions

RAW_INTERACTIONS = "raw_interactions"
INTERACTION_FETCHES = "interaction_fetches"

# interaction_fetches: one row per message whose interactions were asked for, with the last time we asked.
INTERACTION_FETCH_SCHEMA = pl.Schema(
    {"workspace_id": pl.String, "message_id": pl.String, "fetched_at": UTC_TS, "n_interactions": pl.Int32}
)


class InteractionLister(Protocol):
    async def list_interactions_raw(self, channel_id: str, message_id: str) -> InteractionList: ...


def interaction_channel_ids(platforms: Iterable[tuple[str, str | None]]) -> frozenset[str]:
    """Of (channel id, platform) pairs, the channels whose platform has interactions."""
    return frozenset(channel_id for channel_id, platform in platforms if platform_has_interactions(platform))


def is_eligible(interaction_channels: Collection[str] | None) -> pl.Expr:
    """Over raw_messages rows: the message can have interactions (None: every channel may have them)."""
    eligible = (pl.col("direction") == "outgoing") & ~pl.col("status").is_in(FAILED_STATUSES)
    if interaction_channels is not None:
        eligible = eligible & pl.col("channel_id").is_in(list(interaction_channels))
    return eligible


def due_messages(
    messages: pl.LazyFrame,
    fetches: pl.LazyFrame | None,
    *,
    interaction_channels: Collection[str] | None,
    policy: SettlementPolicy,
    as_of: dt.datetime,
) -> pl.LazyFrame:
    """Eligible raw_messages rows (id, channel_id, created_at) to ask at `as_of`.

    Due: never asked; or last asked while its window was open, and either the window has closed since or
    the message's age has grown `interaction_backoff` times since that ask.
    """
    eligible = messages.filter(is_eligible(interaction_channels)).select("id", "channel_id", "created_at")
    if fetches is None:
        return eligible
    created, fetched = pl.col("created_at"), pl.col("fetched_at")
    closes = created + policy.interaction_horizon
    next_ask = pl.min_horizontal(created + (fetched - created) * policy.interaction_backoff, closes)
    last_asked = fetches.select(pl.col("message_id").alias("id"), "fetched_at")
    return (
        eligible.join(last_asked, on="id", how="left")
        .filter(fetched.is_null() | ((fetched < closes) & (next_ask <= as_of)))
        .drop("fetched_at")
    )


def scan_due(
    lake: Lake,
    workspace_id: str,
    day: dt.date,
    *,
    interaction_channels: Collection[str] | None,
    policy: SettlementPolicy,
    as_of: dt.datetime,
) -> pl.LazyFrame | None:
    """The partition's due messages per the lake (None when its raw_messages was never landed)."""
    messages = lake.scan_partition(RAW_MESSAGES, workspace_id, day)
    if messages is None:
        return None
    fetches = lake.scan_partition(INTERACTION_FETCHES, workspace_id, day)
    return due_messages(
        messages, fetches, interaction_channels=interaction_channels, policy=policy, as_of=as_of
    )


@dataclass(frozen=True)
class InteractionRefresh:
    """What one pull of a partition's interactions asked and found."""

    n_messages: int  # messages in the partition: a naive pull asks each of them
    n_eligible: int  # messages that can have interactions at all
    n_requested: int  # messages asked now (one GET each, retries aside)
    n_not_found: int  # asked, but Bird no longer serves the message
    n_interactions: int  # interactions in the partition after the pull
    n_new_interactions: int  # of which first seen in this pull
    seconds: float

    @property
    def requests_saved(self) -> int:
        """GETs saved against a naive pull (every message of the partition, every time)."""
        return self.n_messages - self.n_requested


async def refresh_interactions(
    client: InteractionLister,
    lake: Lake,
    *,
    workspace_id: str,
    day: dt.date,
    interaction_channels: Collection[str],
    policy: SettlementPolicy,
    as_of: dt.datetime,
    concurrency: int = 32,
) -> InteractionRefresh:
    """Ask Bird, as of `as_of`, for the interactions of the partition's due messages; publish the merge.

    The client's shared rate limiter keeps the workspace under its request budget whatever `concurrency`.
    Any error other than a message that no longer exists fails the pull: nothing is published.
    """
    started = time.perf_counter()
    messages = lake.scan_partition(RAW_MESSAGES, workspace_id, day)
    if messages is None:
        raise FileNotFoundError(f"raw_messages {workspace_id}/{day} is not landed: land it first")
    n_messages, n_eligible = (
        messages.select(pl.len(), is_eligible(interaction_channels).sum()).collect().row(0)
    )
    previous_log = lake.scan_partition(INTERACTION_FETCHES, workspace_id, day)
    due = due_messages(
        messages, previous_log, interaction_channels=interaction_channels, policy=policy, as_of=as_of
    )
    targets = due.select("channel_id", "id").collect().rows()
    served = await _fetch_all(client, targets, concurrency)

    fresh = _interaction_rows(workspace_id, served.values(), dt.datetime.now(dt.UTC)).lazy()
    previous = lake.scan_partition(RAW_INTERACTIONS, workspace_id, day)
    new_ids = fresh.select("id") if previous is None else fresh.join(previous, on="id", how="anti")
    n_new = new_ids.select(pl.len()).collect().item()
    merged = (fresh if previous is None else _merge(previous, fresh, key="id")).sort(
        "message_id", "created_at", "id"
    )
    n_interactions = _publish(lake, RAW_INTERACTIONS, workspace_id, day, merged, RAW_INTERACTION_SCHEMA)
    log = pl.LazyFrame(
        {
            "workspace_id": [workspace_id] * len(served),
            "message_id": list(served),
            "fetched_at": [as_of] * len(served),
            "n_interactions": [0 if found is None else len(found.items) for found in served.values()],
        },
        schema=INTERACTION_FETCH_SCHEMA,
    )
    log = log if previous_log is None else _merge(previous_log, log, key="message_id")
    _publish(lake, INTERACTION_FETCHES, workspace_id, day, log.sort("message_id"), INTERACTION_FETCH_SCHEMA)
    return InteractionRefresh(
        n_messages=n_messages,
        n_eligible=n_eligible,
        n_requested=len(targets),
        n_not_found=sum(found is None for found in served.values()),
        n_interactions=n_interactions,
        n_new_interactions=n_new,
        seconds=time.perf_counter() - started,
    )


async def _fetch_all(
    client: InteractionLister, targets: list[tuple[str, str]], concurrency: int
) -> dict[str, InteractionList | None]:
    """message id -> its interactions (None: 404), with `concurrency` requests in flight at most."""
    served: dict[str, InteractionList | None] = {}
    pending = iter(targets)

    async def worker() -> None:
        for channel_id, message_id in pending:
            try:
                served[message_id] = await client.list_interactions_raw(channel_id, message_id)
            except NotFoundError:
                served[message_id] = None

    async with asyncio.TaskGroup() as group:
        for _ in range(max(1, min(concurrency, len(targets)))):
            group.create_task(worker())
    return served


def _interaction_rows(
    workspace_id: str, served: Iterable[InteractionList | None], ingested_at: dt.datetime
) -> pl.DataFrame:
    lists = [found for found in served if found is not None]
    items = [item for found in lists for item in found.items]
    return pl.DataFrame(
        {
            "workspace_id": [workspace_id] * len(items),
            "id": [i.id for i in items],
            "message_id": [i.message_id for i in items],
            "channel_id": [i.channel_id for i in items],
            "type": [i.type for i in items],
            "created_at": [i.created_at for i in items],
            "raw": [raw.decode() for found in lists for raw in found.raw],
            "ingested_at": [ingested_at] * len(items),
        },
        schema=RAW_INTERACTION_SCHEMA,
    )


def _merge(previous: pl.LazyFrame, fresh: pl.LazyFrame, *, key: str) -> pl.LazyFrame:
    """The previous rows whose key was not fetched again, plus the fresh rows."""
    return pl.concat([previous.join(fresh.select(key), on=key, how="anti"), fresh])


def _publish(
    lake: Lake, dataset: str, workspace_id: str, day: dt.date, rows: pl.LazyFrame, schema: pl.Schema
) -> int:
    """Swap in the partition's new version (read fully first: it may be read from the old version)."""
    table = rows.collect().cast(dict(schema)).to_arrow()
    with lake.write_partition(dataset, workspace_id, day, schema.to_arrow()) as writer:
        writer.write_table(table.cast(schema.to_arrow()))
    return table.num_rows
