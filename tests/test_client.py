"""The async Bird client against the emulator app in process (httpx.ASGITransport: real requests, no sockets).

Protects: paging a window follows nextPageToken to exactly the emulator's ground truth (both orders, every
end-of-list signal, workspace and channel lists) with pages and requests counted; every documented filter is
sent and honoured (expected sets computed from the store's messages, independently of the emulator's filter
code); single-message, interactions, channels and channel-metrics reads match the store; Bird's 401/404/422
bodies arrive as typed errors; a cycling cursor and the page cap stop with PaginationError; the access key
shows in no repr, error or log record.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.bird import (
    AsyncBirdClient,
    AuthenticationError,
    BirdSettings,
    MessageQuery,
    NotFoundError,
    PaginationError,
    ValidationError,
)
from pipelines.emulator.app import create_app
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.store import MessageStore

ACCESS_KEY = "k3y-Th4t-Must-N3ver-Leak-0042"
START = datetime(2026, 11, 18, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> MessageStore:
    return MessageStore.generate(DatasetSpec(days=2, messages_per_day=300, end=date(2026, 11, 20)), now=NOW)


def client_for(store: MessageStore, *, access_key: str = ACCESS_KEY, **app_options: Any) -> AsyncBirdClient:
    app = create_app(store, access_key=ACCESS_KEY, **app_options)
    settings = BirdSettings(
        access_key=access_key, workspace_id=store.workspace_id, api_url="http://bird.test"
    )
    return AsyncBirdClient(settings, transport=httpx.ASGITransport(app=app))


async def collect(client: AsyncBirdClient, query: MessageQuery, channel_id: str | None = None) -> list[str]:
    pages = (
        client.iter_workspace_messages(query)
        if channel_id is None
        else client.iter_channel_messages(channel_id, query)
    )
    return [key.id async for page in pages for key in page.keys]


def fetch(store: MessageStore, query: MessageQuery, channel_id: str | None = None) -> list[str]:
    async def run() -> list[str]:
        async with client_for(store) as client:
            return await collect(client, query, channel_id)

    return asyncio.run(run())


@pytest.mark.parametrize("end_signal", ["absent", "empty_string", "empty_page"])
@pytest.mark.parametrize("reverse", [False, True])
def test_paging_a_window_returns_exactly_ground_truth(
    store: MessageStore, end_signal: str, reverse: bool
) -> None:
    truth = store.ground_truth_ids(START, END)
    query = MessageQuery(limit=100, start_at=START, end_at=END, reverse=reverse)

    async def run() -> tuple[list[str], Any]:
        async with client_for(store, end_signal=end_signal) as client:
            return await collect(client, query), client.stats

    ids, stats = asyncio.run(run())
    assert len(ids) == len(truth) and set(ids) == truth
    full_pages = -(-len(truth) // 100)
    assert stats.pages == stats.requests == full_pages + (end_signal == "empty_page")
    assert stats.retries == 0


def test_channel_list_pages_to_the_channel_ground_truth(store: MessageStore) -> None:
    channel = max(store.channels(), key=lambda c: len(store.ground_truth_ids(START, END, channel_id=c["id"])))
    truth = store.ground_truth_ids(START, END, channel_id=channel["id"])
    ids = fetch(store, MessageQuery(limit=37, start_at=START, end_at=END), channel_id=channel["id"])
    assert len(ids) == len(truth) > 37
    assert set(ids) == truth


def _contact(message: dict) -> dict:
    return (
        message["receiver"]["contacts"][0]
        if message["direction"] == "outgoing"
        else message["sender"]["contact"]
    )


def _party_values(party: dict) -> set[str]:
    parties = [party.get("connector"), party.get("contact"), *(party.get("contacts") or [])]
    return {p["identifierValue"] for p in parties if p}


def _failure(message: dict) -> dict:
    return message.get("failure") or {}


def _most_common(values: list[Any]) -> Any:
    return Counter(value for value in values if value is not None).most_common(1)[0][0]


# Each case: (query fields from the messages in the window, the predicate Bird's filter means).
FilterCase = Callable[[list[dict], dict[str, str]], tuple[dict[str, Any], Callable[[dict], bool]]]


def _platform(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    wanted = ("whatsapp", "email-messagebird")
    return {"platform": wanted}, lambda m: platforms[m["channelId"]] in wanted


def _single_platform(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    return {"platform": "sms-messagebird"}, lambda m: platforms[m["channelId"]] == "sms-messagebird"


def _direction(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    return {"direction": "incoming"}, lambda m: m["direction"] == "incoming"


def _ids(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    wanted = {m["id"] for m in messages[::97]}
    return {"ids": sorted(wanted)}, lambda m: m["id"] in wanted


def _from(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    sender = _most_common([sorted(_party_values(m["sender"]))[0] for m in messages])
    return {"from_": [sender]}, lambda m: sender in _party_values(m["sender"])


def _to(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    receivers = [
        v for m in messages if m["direction"] == "outgoing" for v in sorted(_party_values(m["receiver"]))
    ]
    wanted = {_most_common(receivers), receivers[0]}
    return {"to": sorted(wanted)}, lambda m: bool(wanted & _party_values(m["receiver"]))


def _failure_codes(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    return {"failure_codes": [15005, 14001]}, lambda m: _failure(m).get("code") in (15005, 14001)


def _failure_source_codes(
    messages: list[dict], platforms: dict[str, str]
) -> tuple[dict, Callable[[dict], bool]]:
    code = _most_common([_failure(m).get("source", {}).get("code") for m in messages])
    return {"failure_source_codes": [code]}, lambda m: _failure(m).get("source", {}).get("code") == code


def _failure_source_names(
    messages: list[dict], platforms: dict[str, str]
) -> tuple[dict, Callable[[dict], bool]]:
    return {"failure_source_names": ["pre-processing"]}, (
        lambda m: _failure(m).get("source", {}).get("name") == "pre-processing"
    )


def _country_codes(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    return {"country_codes": ["NL", "BR"]}, lambda m: _contact(m).get("countryCode") in ("NL", "BR")


def _tags(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    wanted = {"otp", "vip"}
    return {"tags": sorted(wanted)}, lambda m: bool(wanted & set(m.get("tags") or ()))


def _email_subject(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    subject = _most_common([(m.get("meta") or {}).get("email", {}).get("subject") for m in messages])
    word = max(subject.split(), key=len)

    def matches(message: dict) -> bool:
        actual = (message.get("meta") or {}).get("email", {}).get("subject")
        return actual is not None and word.lower() in actual.lower()

    return {"email_subject": word.upper()}, matches


def _channel_ids(messages: list[dict], platforms: dict[str, str]) -> tuple[dict, Callable[[dict], bool]]:
    wanted = sorted(platforms)[:2]
    return {"channel_ids": wanted}, lambda m: m["channelId"] in wanted


@pytest.mark.parametrize(
    "case",
    [
        _platform,
        _single_platform,
        _direction,
        _ids,
        _from,
        _to,
        _failure_codes,
        _failure_source_codes,
        _failure_source_names,
        _country_codes,
        _tags,
        _email_subject,
        _channel_ids,
    ],
    ids=lambda case: case.__name__.strip("_"),
)
def test_every_workspace_filter_is_sent_and_honoured(store: MessageStore, case: FilterCase) -> None:
    messages = [store.message(i) for i in sorted(store.ground_truth_ids(START, END))]
    platforms = {c["id"]: c["platformId"] for c in store.channels()}
    fields, predicate = case(messages, platforms)
    expected = {m["id"] for m in messages if predicate(m)}
    assert 0 < len(expected) < len(messages), "the case must select some messages, not all"

    ids = fetch(store, MessageQuery(limit=50, start_at=START, end_at=END, **fields))
    assert len(ids) == len(expected)
    assert set(ids) == expected


def test_navigator_filter_on_the_channel_list(store: MessageStore) -> None:
    messages = [store.message(i) for i in store.ground_truth_ids(START, END)]
    guided = [m for m in messages if (m.get("meta") or {}).get("navigatorId")]
    navigator, channel = guided[0]["meta"]["navigatorId"], guided[0]["channelId"]
    expected = {
        m["id"] for m in guided if m["meta"]["navigatorId"] == navigator and m["channelId"] == channel
    }
    query = MessageQuery(start_at=START, end_at=END, navigator_id=navigator)
    assert set(fetch(store, query, channel_id=channel)) == expected


def test_single_reads_match_the_store(store: MessageStore) -> None:
    messages = [store.message(i) for i in sorted(store.ground_truth_ids(START, END))]
    platforms = {c["id"]: c["platformId"] for c in store.channels()}
    interacted = next(m for m in messages if store.interactions(m["id"]))
    failed = next(m for m in messages if m.get("failure"))

    async def run() -> None:
        async with client_for(store) as client:
            message = await client.get_message(failed["channelId"], failed["id"])
            assert (message.id, message.status, message.failure.code) == (
                failed["id"],
                failed["status"],
                failed["failure"]["code"],
            )
            interactions = await client.list_interactions_raw(interacted["channelId"], interacted["id"])
            assert [i.id for i in interactions.items] == [
                i["id"] for i in store.interactions(interacted["id"])
            ]
            assert all(i.message_id == interacted["id"] for i in interactions.items)
            assert len(interactions.raw) == len(interactions.items)

            channels = await client.list_channels()
            assert {c.id: c.platform_id for c in channels} == platforms
            whatsapp = await client.list_channels(platform="whatsapp")
            assert {c.platform_id for c in whatsapp} == {"whatsapp"}

            metrics = await client.get_channel_metrics(START, END)
            assert sum(row["count"] for row in metrics) == len(messages)

    asyncio.run(run())


def test_bird_error_bodies_arrive_as_typed_errors(store: MessageStore) -> None:
    channel_id = store.channels()[0]["id"]
    unknown = "00000000-0000-4000-8000-000000000000"

    async def run() -> None:
        async with client_for(store, access_key="wrong-key") as client:
            with pytest.raises(AuthenticationError) as auth:
                await client.list_workspace_messages(MessageQuery())
        assert (auth.value.status_code, auth.value.code) == (401, "Unauthorized")
        assert auth.value.message and auth.value.message != "(no message)"
        async with client_for(store) as client:
            with pytest.raises(NotFoundError) as missing:
                await client.get_message(channel_id, unknown)
            assert missing.value.code == "NotFound"
            with pytest.raises(ValidationError) as invalid:
                await client.list_channel_messages(channel_id, MessageQuery(), page_token="not-a-cursor")
            assert invalid.value.code == "ValidationError"
            assert "pageToken" in invalid.value.details
            assert client.stats.retries == 0, "4xx other than 429 are never retried"

    asyncio.run(run())


def test_page_cap_stops_with_pagination_error(store: MessageStore) -> None:
    async def run() -> None:
        async with client_for(store) as client:
            pages = client.iter_workspace_messages(
                MessageQuery(limit=10, start_at=START, end_at=END), max_pages=3
            )
            with pytest.raises(PaginationError, match="max_pages=3"):
                async for _ in pages:
                    pass
            assert client.stats.pages == 3

    asyncio.run(run())


def _cycling_api(workspace_id: str) -> Starlette:
    """Test scaffolding: a broken server whose cursor goes A -> B -> A -> ..."""

    async def messages(request: Request) -> JSONResponse:
        token = {None: "A", "A": "B", "B": "A"}[request.query_params.get("pageToken")]
        return JSONResponse({"results": [], "nextPageToken": token})

    return Starlette(routes=[Route(f"/workspaces/{workspace_id}/channels/messages", messages)])


def test_a_repeated_page_token_stops_with_pagination_error() -> None:
    workspace_id = "6f1c2a34-9f0e-4a4e-9d51-3f0c1b2a7e10"
    settings = BirdSettings(access_key=ACCESS_KEY, workspace_id=workspace_id, api_url="http://bird.test")

    async def run() -> None:
        transport = httpx.ASGITransport(app=_cycling_api(workspace_id))
        async with AsyncBirdClient(settings, transport=transport) as client:
            with pytest.raises(PaginationError, match="repeated after 3 pages"):
                async for _ in client.iter_workspace_messages(MessageQuery(), max_pages=10):
                    pass
            assert client.stats.requests == 3

    asyncio.run(run())


def test_the_access_key_never_leaks(store: MessageStore, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    async def run() -> list[str]:
        texts = []
        async with client_for(store) as client:
            texts += [repr(client), str(client.settings), repr(client._pools[0].headers)]
            await collect(client, MessageQuery(limit=200, start_at=START, end_at=END))
            try:
                await client.list_workspace_messages(MessageQuery(), page_token="bad")
            except ValidationError as error:
                texts += [str(error), repr(error)]
        async with client_for(store, access_key=ACCESS_KEY + "-revoked") as client:
            try:
                await client.list_channels()
            except AuthenticationError as error:
                texts += [str(error), repr(error)]
        return texts

    texts = asyncio.run(run())
    assert len(texts) == 7
    logged = [record.getMessage() for record in caplog.records] + [caplog.text]
    assert any("HTTP Request" in line for line in logged), "httpx's request logging was captured"
    for text in texts + logged:
        assert ACCESS_KEY not in text
