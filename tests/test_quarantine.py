"""Records that cannot be archived are quarantined with their reason and payload, never dropped or fatal.

A tiny local server stands in for a Bird that serves broken items (test scaffolding, not a mock of our code):
everything else runs for real, through the client, the lander and the warehouse.
"""

import asyncio
import datetime as dt
from pathlib import Path

import httpx
import orjson
import polars as pl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.settings import BirdSettings
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import RAW_MESSAGES, REJECTED_RECORDS, land_messages
from pipelines.lake import Lake
from transforms.messages import flatten_messages
from transforms.schema import CHANNEL_SCHEMA
from warehouse.store import Warehouse

WORKSPACE = "7b0a6a0e-2f7c-4b1e-9a53-2f52c1f0d2aa"
CHANNEL = "1d6c1f3e-4b8a-4c7e-9d3b-8e2f5a6b7c8d"
DAY = dt.date(2026, 1, 13)


def _message(message_id: str, **overrides: object) -> dict[str, object]:
    return {
        "id": message_id,
        "channelId": CHANNEL,
        "status": "delivered",
        "direction": "outgoing",
        "createdAt": "2026-01-13T10:00:00.000Z",
        "updatedAt": "2026-01-13T10:00:05.000Z",
        "sender": {"connector": {"id": "k", "identifierValue": "+3197010000000"}},
        "receiver": {
            "contacts": [{"id": "c", "identifierKey": "phonenumber", "identifierValue": "+31612345678"}]
        },
        **overrides,
    }


ITEMS = [
    _message("m-ok-1"),
    _message("m-new-status", status="delivered_to_handset"),  # merely new: kept, not rejected
    {k: v for k, v in _message("m-no-id").items() if k != "id"},
    _message("m-bad-time", createdAt="yesterday at noon"),
    _message("m-wrong-type", status=404),
]


def _app() -> Starlette:
    async def page(request: Request) -> Response:
        return Response(orjson.dumps({"results": ITEMS}), media_type="application/json")

    async def not_served(request: Request) -> Response:
        return JSONResponse({"code": "NotFound", "message": "no metrics here"}, status_code=404)

    return Starlette(
        routes=[
            Route(f"/workspaces/{WORKSPACE}/channels/messages", page),
            Route(f"/workspaces/{WORKSPACE}/reporting/channels/metrics", not_served),
        ]
    )


def test_bad_records_are_quarantined_and_loaded(tmp_path: Path) -> None:
    settings = BirdSettings(access_key="k", workspace_id=WORKSPACE, api_url="http://bird.test")
    lake = Lake(tmp_path / "lake")

    async def go() -> None:
        transport = httpx.ASGITransport(app=_app())
        async with AsyncBirdClient(settings, transport=transport) as client:
            landed = await land_messages(
                client,
                lake,
                tmp_path / "staging",
                workspace_id=WORKSPACE,
                day=DAY,
                settings=FetchSettings(initial_parts=1),
            )
        assert landed.stats.rejected == 3

    asyncio.run(go())
    kept = lake.scan_partition(RAW_MESSAGES, WORKSPACE, DAY).collect()
    assert sorted(kept["id"]) == ["m-new-status", "m-ok-1"]
    rejected = lake.scan_partition(REJECTED_RECORDS, WORKSPACE, DAY).collect()
    assert rejected.height == 3
    reasons = " | ".join(rejected["reason"])
    assert "`id`" in reasons and "createdAt" in reasons and "status" in reasons
    assert any(orjson.loads(raw).get("status") == 404 for raw in rejected["raw"])

    warehouse = Warehouse(tmp_path)
    messages = flatten_messages(kept.lazy(), pl.LazyFrame(schema=CHANNEL_SCHEMA)).collect()
    window_start = dt.datetime(2026, 1, 13, tzinfo=dt.UTC)
    for _ in range(2):  # a re-load replaces the quarantine, it does not append to it
        warehouse.load_messages(
            workspace_id=WORKSPACE,
            start=window_start,
            end=window_start + dt.timedelta(days=1),
            messages=messages,
            rejected=rejected,
        )
    with warehouse.connect_readonly() as con:
        assert con.sql("select count(*) from rejected_records").fetchall() == [(3,)]
        statuses = dict(con.sql("select id, is_known_status from messages").fetchall())
    assert statuses == {"m-ok-1": True, "m-new-status": False}
