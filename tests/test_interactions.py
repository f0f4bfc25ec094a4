"""Interactions are fetched only where they can exist, none is missed, and re-pulls stop once windows close.

Real HTTP to the emulator on loopback (under a shared rate limiter), real Parquet partitions under tmp_path;
the emulator's own store is the ground truth.
"""

import asyncio
import datetime as dt
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.ratelimit import SharedRateLimiter
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.server import RunningEmulator
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.interactions import (
    INTERACTION_FETCHES,
    RAW_INTERACTIONS,
    InteractionRefresh,
    due_messages,
    interaction_channel_ids,
    refresh_interactions,
)
from pipelines.ingest.land import RAW_MESSAGES, land_messages
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from pipelines.settlement import SettlementPolicy
from tests.conftest import EMULATOR_NOW
from transforms.vocabulary import FAILED_STATUSES, platform_has_interactions

DAY = dt.date(2026, 1, 14)
POLICY = SettlementPolicy()


def _client(emulator: RunningEmulator, state_dir: Path) -> AsyncBirdClient:
    settings = BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )
    return AsyncBirdClient(
        settings, limiter=SharedRateLimiter(state_dir, emulator.workspace_id, rate_per_s=2000)
    )


def _land(emulator: RunningEmulator, root: Path) -> None:
    async def go() -> None:
        async with _client(emulator, root / "state") as client:
            await land_messages(
                client,
                Lake(root / "lake"),
                root / "staging",
                workspace_id=emulator.workspace_id,
                day=DAY,
                settings=FetchSettings(),
            )

    asyncio.run(go())


def _refresh(
    emulator: RunningEmulator, root: Path, as_of: dt.datetime, policy: SettlementPolicy = POLICY
) -> tuple[InteractionRefresh, int]:
    """One pull as of `as_of` (the emulator's clock is moved there first); also the GETs the emulator saw."""
    emulator.store.advance(to=as_of)

    async def go() -> tuple[InteractionRefresh, int]:
        async with _client(emulator, root / "state") as client:
            channels = interaction_channel_ids((c.id, c.platform_id) for c in await client.list_channels())
            before = emulator.stats.to_dict()["gets_total"]
            refresh = await refresh_interactions(
                client,
                Lake(root / "lake"),
                workspace_id=emulator.workspace_id,
                day=DAY,
                interaction_channels=channels,
                policy=policy,
                as_of=as_of,
                concurrency=8,
            )
            return refresh, emulator.stats.to_dict()["gets_total"] - before

    return asyncio.run(go())


def _landed(emulator: RunningEmulator, root: Path, dataset: str) -> pl.DataFrame:
    frame = Lake(root / "lake").scan_partition(dataset, emulator.workspace_id, DAY)
    assert frame is not None
    return frame.collect()


def _truth(emulator: RunningEmulator) -> dict[str, str]:
    """interaction id -> message id, for every interaction of the day's messages at the emulator's clock."""
    window = Window.day(DAY)
    return {
        interaction["id"]: message_id
        for message_id in emulator.store.ground_truth_ids(window.start, window.end)
        for interaction in emulator.store.interactions(message_id)
    }


def _eligible_ids(emulator: RunningEmulator, root: Path) -> set[str]:
    """The policy restated from Bird's own objects: outgoing, interaction platform, not failed."""
    platforms = {c["id"]: c["platformId"] for c in emulator.store.channels()}
    landed = _landed(emulator, root, RAW_MESSAGES)
    return {
        row["id"]
        for row in landed.iter_rows(named=True)
        if row["direction"] == "outgoing"
        and platform_has_interactions(platforms[row["channel_id"]])
        and row["status"] not in FAILED_STATUSES
    }


def test_only_eligible_messages_are_asked_and_no_interaction_is_missed(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    _land(emulator, tmp_path)
    refresh, gets = _refresh(emulator, tmp_path, EMULATOR_NOW)

    eligible = _eligible_ids(emulator, tmp_path)
    assert 0 < len(eligible) < refresh.n_messages
    assert refresh.n_requested == refresh.n_eligible == len(eligible) == gets
    assert refresh.requests_saved == refresh.n_messages - len(eligible)
    asked = set(_landed(emulator, tmp_path, INTERACTION_FETCHES)["message_id"])
    assert asked == eligible

    truth = _truth(emulator)
    assert truth, "the emulator should have served interactions by now"
    assert set(truth.values()) <= eligible, "an interaction exists on a message the policy skips"
    landed = _landed(emulator, tmp_path, RAW_INTERACTIONS)
    assert landed["id"].is_unique().all()
    assert dict(zip(landed["id"], landed["message_id"], strict=True)) == truth
    assert refresh.n_interactions == refresh.n_new_interactions == len(truth)


def test_re_pulls_add_new_interactions_once_and_stop_after_the_horizon(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    _land(emulator, tmp_path)
    first, _ = _refresh(emulator, tmp_path, EMULATOR_NOW)

    a_day_later = EMULATOR_NOW + dt.timedelta(days=1)
    second, gets = _refresh(emulator, tmp_path, a_day_later)
    assert second.n_requested == first.n_requested == gets, "every window is still open"
    truth = _truth(emulator)
    assert second.n_new_interactions == len(truth) - first.n_interactions > 0
    landed = _landed(emulator, tmp_path, RAW_INTERACTIONS)
    assert landed["id"].is_unique().all()
    assert set(landed["id"]) == set(truth)

    closed = Window.day(DAY).end + POLICY.interaction_horizon + dt.timedelta(hours=1)
    closing, gets = _refresh(emulator, tmp_path, closed)
    assert closing.n_requested == gets == first.n_requested, "one last pull after the windows closed"
    assert set(_landed(emulator, tmp_path, RAW_INTERACTIONS)["id"]) == set(_truth(emulator))

    before = _landed(emulator, tmp_path, RAW_INTERACTIONS)
    after_close, gets = _refresh(emulator, tmp_path, closed + dt.timedelta(days=1))
    assert after_close.n_requested == gets == 0
    assert after_close.requests_saved == after_close.n_messages
    assert_frame_equal(_landed(emulator, tmp_path, RAW_INTERACTIONS), before)


def test_with_a_backoff_fewer_asks_and_still_every_interaction_in_the_end(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    policy = SettlementPolicy(interaction_backoff=3.0)
    _land(emulator, tmp_path)
    first, _ = _refresh(emulator, tmp_path, EMULATOR_NOW, policy)
    second, gets = _refresh(emulator, tmp_path, EMULATOR_NOW + dt.timedelta(days=1), policy)
    assert second.n_requested == gets < first.n_requested
    closed = Window.day(DAY).end + policy.interaction_horizon + dt.timedelta(hours=1)
    closing, _ = _refresh(emulator, tmp_path, closed, policy)
    assert closing.n_requested == first.n_requested
    assert set(_landed(emulator, tmp_path, RAW_INTERACTIONS)["id"]) == set(_truth(emulator))


def test_a_message_is_due_until_asked_once_after_its_window_closed() -> None:
    created = dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC)
    horizon = dt.timedelta(days=7)
    messages = pl.LazyFrame(
        {
            "id": ["never-asked", "asked-while-open", "asked-after-close", "incoming", "failed", "sms"],
            "channel_id": ["email", "email", "email", "email", "email", "sms"],
            "direction": ["outgoing", "outgoing", "outgoing", "incoming", "outgoing", "outgoing"],
            "status": ["delivered", "sent", "delivered", "delivered", "delivery_failed", "delivered"],
            "created_at": [created] * 6,
        }
    )
    fetches = pl.LazyFrame(
        {
            "message_id": ["asked-while-open", "asked-after-close"],
            "fetched_at": [created + dt.timedelta(days=1), created + horizon],
        }
    )

    def due(as_of: dt.datetime, backoff: float, channels: set[str] | None = None) -> list[str]:
        policy = SettlementPolicy(interaction_horizon=horizon, interaction_backoff=backoff)
        found = due_messages(messages, fetches, interaction_channels=channels, policy=policy, as_of=as_of)
        return sorted(found.collect()["id"])

    a_day_later = created + dt.timedelta(days=2)
    assert due(a_day_later, 1.0, {"email"}) == ["asked-while-open", "never-asked"]
    assert due(a_day_later, 1.0) == ["asked-while-open", "never-asked", "sms"]
    # Backoff 3: asked at age 1 day, asked again from age 3 days, and always once the window has closed.
    assert due(a_day_later, 3.0, {"email"}) == ["never-asked"]
    assert due(created + dt.timedelta(days=3), 3.0, {"email"}) == ["asked-while-open", "never-asked"]
    assert due(created + horizon, 100.0, {"email"}) == ["asked-while-open", "never-asked"]
