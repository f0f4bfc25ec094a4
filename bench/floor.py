"""`python -m bench.floor`: the client-side floor, the fastest raw pass over every page of a range of days.

Each UTC day is cut into equal sub-windows, each paged with its own `nextPageToken` cursor, with up to
`--concurrency` requests in flight on one httpx AsyncClient; every body is parsed with orjson and dropped.
Nothing is stored, so this is what any Python client pays for the latency, the transfer and the parse alone.
Standalone on purpose (httpx and orjson only): it measures the API and the runtime, not bird-etl.
Prints one JSON line: messages, pages, seconds.
"""

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import httpx
import orjson

PAGE_SIZE = 1000


def windows(first: date, last: date, parts: int) -> Iterator[tuple[datetime, datetime]]:
    """Half-open UTC sub-windows tiling the days first..last (inclusive), `parts` a day."""
    step = timedelta(days=1) / parts
    day = first
    while day <= last:
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for i in range(parts):
            yield midnight + i * step, midnight + (i + 1) * step
        day += timedelta(days=1)


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def page_window(
    client: httpx.AsyncClient, path: str, start: datetime, end: datetime, in_flight: asyncio.Semaphore
) -> tuple[int, int]:
    """Every page of one window: (messages, pages)."""
    params = {"startAt": rfc3339(start), "endAt": rfc3339(end), "limit": str(PAGE_SIZE)}
    messages = pages = 0
    while True:
        count, token = await fetch_page(client, path, params, in_flight)
        messages += count
        pages += 1
        if not token or not count:
            return messages, pages
        params["pageToken"] = token


async def fetch_page(
    client: httpx.AsyncClient, path: str, params: dict[str, str], in_flight: asyncio.Semaphore
) -> tuple[int, str | None]:
    """One page's size and cursor; the body and the parsed page are dropped before the window asks again."""
    async with in_flight:
        response = await client.get(path, params=params)
    response.raise_for_status()
    body = orjson.loads(response.content)
    return len(body["results"]), body.get("nextPageToken")


async def floor(
    base_url: str, access_key: str, workspace_id: str, first: date, last: date, parts: int, concurrency: int
) -> dict[str, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"AccessKey {access_key}", "Accept": "application/json"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=httpx.Timeout(60.0)
    ) as client:
        in_flight = asyncio.Semaphore(concurrency)
        path = f"/workspaces/{workspace_id}/channels/messages"
        started = time.perf_counter()
        results = await asyncio.gather(
            *(page_window(client, path, start, end, in_flight) for start, end in windows(first, last, parts))
        )
        seconds = time.perf_counter() - started
    return {
        "messages": sum(m for m, _ in results),
        "pages": sum(p for _, p in results),
        "seconds": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--workspace-id", required=True)
    parser.add_argument("--start", type=date.fromisoformat, required=True, help="first UTC day")
    parser.add_argument("--end", type=date.fromisoformat, required=True, help="last UTC day, included")
    parser.add_argument("--parts", type=int, default=16, help="sub-windows per day")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    args = parser.parse_args()
    # A parsed page is ~30k young objects: the default thresholds would run the collector over them every
    # 700 allocations (measured: ~3x the parse itself with 32 pages live); nothing here makes cycles worth
    # collecting that often.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    result = asyncio.run(
        floor(
            args.url, args.access_key, args.workspace_id, args.start, args.end, args.parts, args.concurrency
        )
    )
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
