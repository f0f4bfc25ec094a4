"""The fetcher never loops forever: a cycling token or a page cap stops the partition with a clear error,
and a token the server stops accepting restarts only that sub-window.

A tiny local server plays a misbehaving Bird (test scaffolding); the client and fetcher run for real.
"""

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.errors import PaginationError
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import BirdSettings
from pipelines.ingest.checkpoint import StagingArea
from pipelines.ingest.fetch import FetchSettings, PartitionFetcher, SpoolSegment, read_segments
from pipelines.ingest.windows import Window

WORKSPACE = "7b0a6a0e-2f7c-4b1e-9a53-2f52c1f0d2aa"
WINDOW = Window.day(dt.date(2026, 1, 13))


def _message(n: int) -> dict[str, object]:
    return {
        "id": f"m{n}",
        "channelId": "c",
        "status": "sent",
        "createdAt": f"2026-01-13T10:{n // 60:02d}:{n % 60:02d}.000Z",
        "updatedAt": "2026-01-13T12:00:00.000Z",
    }


def _serve(page: Callable[[str | None], Awaitable[Response]]) -> Starlette:
    async def messages(request: Request) -> Response:
        return await page(request.query_params.get("pageToken"))

    return Starlette(routes=[Route(f"/workspaces/{WORKSPACE}/channels/messages", messages)])


async def _fetch(app: Starlette, tmp_path: Path, **settings: object) -> list[SpoolSegment]:
    client_settings = BirdSettings(access_key="k", workspace_id=WORKSPACE, api_url="http://bird.test")
    retry = RetryPolicy(max_attempts=2, initial=0.01, maximum=0.01)
    async with AsyncBirdClient(
        client_settings, transport=httpx.ASGITransport(app=app), retry=retry
    ) as client:
        fetcher = PartitionFetcher(
            client,
            StagingArea(tmp_path),
            settings=FetchSettings(initial_parts=1, page_size=2, **settings),  # type: ignore[arg-type]
        )
        result = await fetcher.run("p", WINDOW)
        return result.segments


def _page(numbers: list[int], token: str | None) -> Response:
    body = {"results": [_message(n) for n in numbers], **({"nextPageToken": token} if token else {})}
    return Response(orjson.dumps(body), media_type="application/json")


def test_a_cycling_token_stops_the_partition(tmp_path: Path) -> None:
    async def page(token: str | None) -> Response:
        return _page([1, 2], "same-token-forever")

    with pytest.raises(PaginationError, match="repeated"):
        asyncio.run(_fetch(_serve(page), tmp_path))


def test_a_page_cap_stops_an_endless_list(tmp_path: Path) -> None:
    async def page(token: str | None) -> Response:
        n = int(token or 0)
        return _page([n * 2, n * 2 + 1], str(n + 1))  # always another page, always a new token

    with pytest.raises(PaginationError, match="more than 5 pages"):
        asyncio.run(_fetch(_serve(page), tmp_path, max_pages_per_leaf=5))


@pytest.mark.parametrize("spool_rows", [20_000, 2])  # with 2, the pages before the rejection were spooled
def test_a_rejected_token_restarts_the_sub_window(tmp_path: Path, spool_rows: int) -> None:
    rejected = {"done": False}

    async def page(token: str | None) -> Response:
        if token == "2" and not rejected["done"]:
            rejected["done"] = True  # the token expired once, mid-window
            return JSONResponse(
                {"code": "ValidationError", "message": "bad token", "details": {"pageToken": ["expired"]}},
                status_code=422,
            )
        n = int(token or 0)
        return _page([n * 2, n * 2 + 1], str(n + 1) if n < 3 else None)

    segments = asyncio.run(_fetch(_serve(page), tmp_path, spool_rows=spool_rows))
    ids = [i for table in read_segments(segments, ["id"]) for i in table.column("id").to_pylist()]
    assert sorted(ids) == sorted(f"m{n}" for n in range(8))
    assert rejected["done"]
