"""The workspace's channels: discovery for the per-channel source and the `channels` dimension."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from pipelines.bird.models import Channel
from pipelines.lake import Lake
from transforms.schema import CHANNEL_SCHEMA

CHANNELS = "channels"


def channels_frame(channels: Sequence[Channel], workspace_id: str) -> pl.DataFrame:
    """One row per channel, in the CHANNEL_SCHEMA contract."""
    return pl.DataFrame(
        {
            "workspace_id": [workspace_id] * len(channels),
            "channel_id": [c.id for c in channels],
            "platform": [c.platform_id for c in channels],
            "name": [c.name for c in channels],
            "identifier": [c.identifier for c in channels],
            "status": [c.status for c in channels],
            "connector_id": [c.connector_id for c in channels],
        },
        schema=CHANNEL_SCHEMA,
    )


def select_channel_ids(channels: Sequence[Channel], platforms: Sequence[str]) -> list[str]:
    """Ids of the channels to page one by one: all of them, or those on the given platforms."""
    wanted = set(platforms)
    return sorted(c.id for c in channels if not wanted or c.platform_id in wanted)


def scan_channels(lake: Lake, workspace_id: str) -> pl.LazyFrame:
    """The workspace's channel snapshot in the lake (empty before the first refresh: platform stays null)."""
    snapshot = lake.scan_snapshot(CHANNELS, workspace_id)
    return snapshot if snapshot is not None else pl.LazyFrame(schema=CHANNEL_SCHEMA)
