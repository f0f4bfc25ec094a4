"""The Bird clients over real loopback HTTP against the emulator, with and without faults.

Protects: the sync `BirdClient` reads the same data as the store; under injected 429s (with and without
Retry-After), 5xx, dropped connections and truncated JSON both clients still return exactly the ground truth,
with every fault visible in `client.stats`; Retry-After replaces the computed backoff; exhausted retries and
timeouts raise the typed error with the attempt count; a 429 lowers the shared limiter's rate; a shared
limiter under the server's per-second limit gets no 429 at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest

from pipelines.bird import (
    AsyncBirdClient,
    BirdClient,
    BirdSettings,
    MessageQuery,
    RateLimitedError,
    RetryPolicy,
    ServerError,
    SharedRateLimiter,
    TransportError,
)
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore

START = datetime(2026, 11, 18, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 6, tzinfo=UTC)
QUERY = MessageQuery(limit=50, start_at=START, end_at=END)
FAST_RETRY = RetryPolicy(max_attempts=12, initial=0.001, maximum=0.01, jitter=0.002)


@pytest.fixture(scope="module")
def store() -> MessageStore:
    return MessageStore.generate(DatasetSpec(days=2, messages_per_day=300, end=date(2026, 11, 20)), now=NOW)


@pytest.fixture(scope="module")
def truth(store: MessageStore) -> set[str]:
    return store.ground_truth_ids(START, END)


@pytest.fixture
def serve(store: MessageStore) -> Iterator:
    """Start an emulator over the shared store with the given faults (one server per test)."""
    with_faults: list = []

    def start(faults: Faults) -> RunningEmulator:
        context = run_emulator(store=store, faults=faults)
        with_faults.append(context)
        return context.__enter__()

    yield start
    for context in with_faults:
        context.__exit__(None, None, None)


def settings_for(emulator: RunningEmulator) -> BirdSettings:
    return BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )


def sync_ids(client: BirdClient, query: MessageQuery = QUERY) -> list[str]:
    return [key.id for page in client.iter_workspace_messages(query) for key in page.keys]


def async_ids(emulator: RunningEmulator, **client_options) -> tuple[list[str], AsyncBirdClient]:
    async def run() -> tuple[list[str], AsyncBirdClient]:
        async with AsyncBirdClient(settings_for(emulator), **client_options) as client:
            ids = [key.id async for page in client.iter_workspace_messages(QUERY) for key in page.keys]
            return ids, client

    return asyncio.run(run())


def test_sync_client_reads_what_the_store_holds(serve, store: MessageStore, truth: set[str]) -> None:
    emulator = serve(Faults())
    with BirdClient(settings_for(emulator)) as client:
        ids = sync_ids(client)
        assert len(ids) == len(truth) and set(ids) == truth
        assert client.stats.pages == client.stats.requests == emulator.stats.gets[emulator.workspace_id]

        channel = store.channels()[0]["id"]
        channel_truth = store.ground_truth_ids(START, END, channel_id=channel)
        channel_ids = [k.id for page in client.iter_channel_messages(channel, QUERY) for k in page.keys]
        assert set(channel_ids) == channel_truth

        message = store.message(sorted(truth)[0])
        assert (
            client.get_message(message["channelId"], message["id"])
            .updated_at.isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
            == message["updatedAt"]
        )
        with_interactions = next(i for i in sorted(truth) if store.interactions(i))
        interactions = client.list_interactions(
            store.message(with_interactions)["channelId"], with_interactions
        )
        assert {i.id for i in interactions} == {i["id"] for i in store.interactions(with_interactions)}
        assert {c.id for c in client.list_channels()} == {c["id"] for c in store.channels()}
        assert sum(row["count"] for row in client.get_channel_metrics(START, END)) == len(truth)


FAULT_CASES = {
    "429": (Faults(error_429_rate=0.3, seed=1), "rate_limited", "429"),
    "429-retry-after": (Faults(error_429_rate=0.3, retry_after_s=0.002, seed=2), "rate_limited", "429"),
    "5xx": (Faults(error_5xx_rate=0.3, seed=3), "server_errors", "5xx"),
    "dropped-connection": (Faults(drop_connection_rate=0.3, seed=4), "transport_errors", "drop"),
    "truncated-json": (Faults(truncate_json_rate=0.3, seed=5), "transport_errors", "truncated"),
}


@pytest.mark.parametrize("client_kind", ["sync", "async"])
@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_retries_under_faults_still_yield_exactly_ground_truth(
    serve, truth: set[str], case: str, client_kind: str
) -> None:
    faults, counter, served = FAULT_CASES[case]
    emulator = serve(Faults(**faults.to_dict()))
    if client_kind == "sync":
        with BirdClient(settings_for(emulator), retry=FAST_RETRY) as client:
            ids = sync_ids(client)
    else:
        ids, client = async_ids(emulator, retry=FAST_RETRY)

    assert len(ids) == len(truth) and set(ids) == truth
    injected = emulator.stats.served[served]
    assert injected > 0, "the fault was exercised"
    assert getattr(client.stats, counter) == injected
    assert client.stats.retries == injected
    assert client.stats.requests == client.stats.pages + injected


def test_all_faults_at_once_with_the_shared_limiter(serve, truth: set[str], tmp_path: Path) -> None:
    emulator = serve(
        Faults(
            error_429_rate=0.1,
            error_5xx_rate=0.1,
            drop_connection_rate=0.1,
            truncate_json_rate=0.1,
            seed=6,
        )
    )
    # Recovery slowed to ~nothing so the lowered rate can be read after the run.
    limiter = SharedRateLimiter(tmp_path, emulator.workspace_id, rate_per_s=500.0, recovery_share_per_s=1e-9)
    ids, client = async_ids(emulator, retry=FAST_RETRY, limiter=limiter)
    assert len(ids) == len(truth) and set(ids) == truth
    assert client.stats.rate_limited > 0
    assert limiter.current_rate() < 251.0, "a 429 halved the shared rate"


def test_retry_after_replaces_the_computed_backoff(serve, truth: set[str], caplog) -> None:
    emulator = serve(Faults(error_429_rate=0.4, retry_after_s=0.015, seed=7))
    caplog.set_level(logging.WARNING, logger="pipelines.bird.retry")
    slow_backoff = RetryPolicy(max_attempts=12, initial=30.0, maximum=60.0, jitter=0.0)
    with BirdClient(settings_for(emulator), retry=slow_backoff) as client:
        assert set(sync_ids(client)) == truth
    waits = [record.getMessage() for record in caplog.records]
    assert len(waits) == emulator.stats.served["429"] > 0
    assert all(message.startswith("retrying in 0.015s") for message in waits), waits


@pytest.mark.parametrize(
    ("faults", "error_type", "fragment"),
    [
        (Faults(error_5xx_rate=1.0), ServerError, "-> HTTP 5"),
        (Faults(error_429_rate=1.0), RateLimitedError, "-> HTTP 429 TooManyRequests"),
        (Faults(drop_connection_rate=1.0), TransportError, "GET /workspaces/"),
        (Faults(truncate_json_rate=1.0), TransportError, "not complete JSON"),
    ],
    ids=["5xx", "429", "drop", "truncated"],
)
def test_exhausted_retries_raise_the_typed_error_with_attempts(
    serve, faults: Faults, error_type: type, fragment: str
) -> None:
    emulator = serve(faults)
    with BirdClient(
        settings_for(emulator), retry=RetryPolicy(max_attempts=3, initial=0.001, jitter=0.0)
    ) as client:
        with pytest.raises(error_type) as raised:
            client.list_workspace_messages(QUERY)
        assert raised.value.attempts == 3
        assert fragment in str(raised.value)
        assert str(raised.value).endswith("(gave up after 3 attempts)")
        assert client.stats.requests == emulator.stats.gets[emulator.workspace_id] == 3
        assert client.stats.retries == 2


def test_a_timeout_is_a_transport_error_after_retries(serve) -> None:
    emulator = serve(Faults(latency_ms=300))

    async def run() -> None:
        async with AsyncBirdClient(
            settings_for(emulator),
            retry=RetryPolicy(max_attempts=2, initial=0.001, jitter=0.0),
            timeout=httpx.Timeout(0.05),
        ) as client:
            with pytest.raises(TransportError, match="Timeout") as raised:
                await client.list_workspace_messages(QUERY)
            assert raised.value.attempts == 2
            assert client.stats.transport_errors == 2

    asyncio.run(run())


def test_a_shared_limiter_below_the_server_limit_gets_no_429(
    serve, store: MessageStore, tmp_path: Path
) -> None:
    emulator = serve(Faults(rate_limit_per_s=20))
    limiter = SharedRateLimiter(tmp_path, emulator.workspace_id, rate_per_s=16.0)
    channels = [c["id"] for c in store.channels()]

    async def run() -> AsyncBirdClient:
        async with AsyncBirdClient(settings_for(emulator), limiter=limiter, retry=FAST_RETRY) as client:

            async def drain(channel_id: str) -> None:
                async for _ in client.iter_channel_messages(
                    channel_id, MessageQuery(limit=20, start_at=START)
                ):
                    pass

            await asyncio.gather(*(drain(channel_id) for channel_id in channels))
            return client

    client = asyncio.run(run())
    assert client.stats.requests > 20, "enough requests to fill more than one second"
    assert client.stats.rate_limited == 0
    assert emulator.stats.max_gets_in() <= 20
