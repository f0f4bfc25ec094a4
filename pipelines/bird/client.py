"""Bird Channels API clients: `AsyncBirdClient` for ingestion, `BirdClient` for the CLI and scripts.

Both share one core (`_ClientCore`): it builds every request, maps every response to a typed result or a
typed error, follows page tokens and keeps the counters. The two clients differ only in how they send a
request and wait (httpx.AsyncClient and `await` versus httpx.Client and blocking). Every attempt, retries
included, first takes a slot from the shared rate limiter; every 429 lowers the shared rate.
"""

from __future__ import annotations

import asyncio
import functools
import math
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Final, Generic, Protocol, TypeVar

import certifi
import httpx
import msgspec

from pipelines.bird.errors import (
    InvalidRequestError,
    PaginationError,
    TransportError,
    UnexpectedResponseError,
    api_error,
)
from pipelines.bird.models import (
    Channel,
    ChannelPage,
    Interaction,
    InteractionList,
    Message,
    MessagePage,
    RawMessagePage,
    decode_channel_metrics,
    decode_channel_page,
    decode_interactions,
    decode_message,
    decode_message_page,
    decode_raw_message_page,
)
from pipelines.bird.query import MAX_PAGE_TOKEN_CHARS, MessageQuery, format_datetime, require_uuid
from pipelines.bird.ratelimit import SharedRateLimiter
from pipelines.bird.retry import RetryPolicy, parse_retry_after
from pipelines.bird.settings import BirdSettings

DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=10.0)
# httpcore checks every idle connection of a pool (a getpeername and a poll each) whenever a request starts
# or ends, so a request costs more CPU the bigger its pool: the async client spreads its requests over pools
# of this many connections. Measured over 1,250 pages: 32 connections in one pool 5.5 s of CPU, in four
# pools of 8 2.8 s.
CONNECTIONS_PER_POOL: Final = 8
CHANNELS_PAGE_SIZE: Final = 100
DEFAULT_RETRY: Final = RetryPolicy()


def _user_agent() -> str:
    try:
        return f"bird-etl/{version('bird-etl')}"
    except PackageNotFoundError:
        return "bird-etl/unknown"


USER_AGENT: Final = _user_agent()

T = TypeVar("T")


class _Paged(Protocol):
    @property
    def next_page_token(self) -> str | None: ...


P = TypeVar("P", bound=_Paged)


@dataclass
class ClientStats:
    """What a client did: HTTP requests sent (retries included), pages decoded, and the failures seen."""

    requests: int = 0
    pages: int = 0
    retries: int = 0
    rate_limited: int = 0
    server_errors: int = 0
    transport_errors: int = 0


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One GET: where, with which parameters, and how to decode a 2xx body."""

    path: str
    params: list[tuple[str, str]]
    decode: Callable[[bytes], T]
    is_page: bool = False


@dataclass(slots=True)
class _Pager(Generic[P]):
    """Follows nextPageToken from the first page, refusing a token seen before and pages beyond the cap."""

    call_for: Callable[[str | None], _Call[P]]
    max_pages: int | None
    pages: int = 0
    seen: set[str] = field(default_factory=set)

    def first(self) -> _Call[P]:
        return self.call_for(None)

    def next(self, page: P) -> _Call[P] | None:
        self.pages += 1
        token = page.next_page_token
        if token is None:
            return None
        if token in self.seen:
            raise PaginationError(
                f"nextPageToken repeated after {self.pages} pages ({self.first().path}): the cursor cycles"
            )
        if self.max_pages is not None and self.pages >= self.max_pages:
            raise PaginationError(f"more than max_pages={self.max_pages} pages ({self.first().path})")
        self.seen.add(token)
        return self.call_for(token)


class _ClientCore:
    """Request building, response decoding, error mapping and counters shared by both clients."""

    def __init__(
        self, settings: BirdSettings, *, limiter: SharedRateLimiter | None, retry: RetryPolicy
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.retry = retry
        self.stats = ClientStats()
        self._workspace_path = f"/workspaces/{settings.workspace_id}"

    def __repr__(self) -> str:
        settings = self.settings
        return f"{type(self).__name__}(api_url={settings.api_url!r}, workspace_id={settings.workspace_id!r})"

    def _http_options(self, timeout: httpx.Timeout, max_connections: int) -> dict[str, Any]:
        """What the sync and async httpx clients share: base URL, auth headers, timeouts, pool size."""
        return {
            "base_url": self.settings.api_url,
            "headers": self._headers(),
            "timeout": timeout,
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            "verify": _tls_context(),
        }

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"AccessKey {self.settings.access_key.reveal()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    # Requests -------------------------------------------------------------------------------------------

    def _message_list_call(
        self,
        channel_id: str | None,
        query: MessageQuery,
        page_token: str | None,
        decode: Callable[[bytes], P],
    ) -> _Call[P]:
        if channel_id is None:
            path, params = f"{self._workspace_path}/channels/messages", query.to_params("workspace")
        else:
            channel = require_uuid(channel_id, "channel_id")
            path, params = f"{self._workspace_path}/channels/{channel}/messages", query.to_params("channel")
        return _Call(path, params + _page_token_param(page_token), decode, is_page=True)

    def _message_pager(
        self, channel_id: str | None, query: MessageQuery, max_pages: int | None
    ) -> _Pager[MessagePage]:
        return _Pager(
            lambda token: self._message_list_call(channel_id, query, token, decode_message_page), max_pages
        )

    def _message_call(self, channel_id: str, message_id: str) -> _Call[Message]:
        return _Call(self._message_path(channel_id, message_id), [], decode_message)

    def _interactions_call(self, channel_id: str, message_id: str) -> _Call[InteractionList]:
        return _Call(f"{self._message_path(channel_id, message_id)}/interactions", [], decode_interactions)

    def _channels_pager(self, platform: str | None) -> _Pager[ChannelPage]:
        platform_param = [] if platform is None else [("platform", platform)]

        def call_for(token: str | None) -> _Call[ChannelPage]:
            params = [("limit", str(CHANNELS_PAGE_SIZE)), *platform_param, *_page_token_param(token)]
            return _Call(f"{self._workspace_path}/channels", params, decode_channel_page, is_page=True)

        return _Pager(call_for, max_pages=None)

    def _metrics_call(self, period_start: datetime, period_end: datetime) -> _Call[list[dict[str, Any]]]:
        start = format_datetime(period_start, "period_start")
        end = format_datetime(period_end, "period_end")
        if period_end < period_start:
            raise InvalidRequestError(f"period_end ({end}) is before period_start ({start})")
        params = [("periodStart", start), ("periodEnd", end), ("groupBy", "day")]
        return _Call(f"{self._workspace_path}/reporting/channels/metrics", params, decode_channel_metrics)

    def _message_path(self, channel_id: str, message_id: str) -> str:
        channel = require_uuid(channel_id, "channel_id")
        return f"{self._workspace_path}/channels/{channel}/messages/{require_uuid(message_id, 'message_id')}"

    # Responses ------------------------------------------------------------------------------------------
    # Bodies are read into a bytes object of our own, never kept on the httpx response: a response and its
    # stream refer to each other, so a body stored on it (`response.content`) lives until Python's cyclic GC
    # runs: with dozens of pages in flight, that is tens of megabytes held for nothing.

    @contextmanager
    def _exchange(self, call: _Call[Any], attempt: int) -> Iterator[None]:
        """Count one request and turn httpx's transport failures into our retryable TransportError."""
        self.stats.requests += 1
        if attempt > 1:
            self.stats.retries += 1
        try:
            yield
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            raise TransportError("GET", call.path, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc

    def _result(self, call: _Call[T], response: httpx.Response, body: bytes) -> T:
        """The decoded body of a 2xx response, or the typed error (429s also slow the shared limiter)."""
        status = response.status_code
        if status == 429:
            self.stats.rate_limited += 1
            if self.limiter is not None:
                self.limiter.on_throttled()
        elif status >= 500:
            self.stats.server_errors += 1
        if not 200 <= status < 300:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            raise api_error(status, body, method="GET", path=call.path, retry_after=retry_after)
        try:
            result = call.decode(body)
        except msgspec.ValidationError as exc:
            raise UnexpectedResponseError(
                f"GET {call.path}: response does not match Bird's schema: {exc}"
            ) from exc
        except msgspec.DecodeError as exc:
            self.stats.transport_errors += 1
            raise TransportError("GET", call.path, f"the response is not complete JSON ({exc})") from exc
        if call.is_page:
            self.stats.pages += 1
        return result


def _page_token_param(page_token: str | None) -> list[tuple[str, str]]:
    if page_token is None:
        return []
    if not page_token or len(page_token) > MAX_PAGE_TOKEN_CHARS:
        raise InvalidRequestError(f"page_token must have 1..{MAX_PAGE_TOKEN_CHARS} characters")
    return [("pageToken", page_token)]


class AsyncBirdClient(_ClientCore):
    """Async client for ingestion: `async with AsyncBirdClient(settings, limiter=...) as client: ...`."""

    def __init__(
        self,
        settings: BirdSettings,
        *,
        limiter: SharedRateLimiter | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(settings, limiter=limiter, retry=retry)
        pools = math.ceil(max_connections / CONNECTIONS_PER_POOL)
        self._pools = [
            httpx.AsyncClient(
                **self._http_options(timeout, math.ceil(max_connections / pools)), transport=transport
            )
            for _ in range(pools)
        ]
        self._busy = [0] * pools  # requests in flight on each pool
        self._connections = asyncio.Semaphore(max_connections)

    async def __aenter__(self) -> AsyncBirdClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def list_workspace_messages(
        self, query: MessageQuery, page_token: str | None = None
    ) -> MessagePage:
        """One page of `GET /workspaces/{ws}/channels/messages`."""
        return await self._execute(self._message_list_call(None, query, page_token, decode_message_page))

    async def list_channel_messages(
        self, channel_id: str, query: MessageQuery, page_token: str | None = None
    ) -> MessagePage:
        """One page of `GET /workspaces/{ws}/channels/{channel_id}/messages`."""
        return await self._execute(
            self._message_list_call(channel_id, query, page_token, decode_message_page)
        )

    async def list_messages_raw(
        self, channel_id: str | None, query: MessageQuery, page_token: str | None = None
    ) -> RawMessagePage:
        """One page of the workspace list (`channel_id` None) or of a channel's list, its items undecoded:
        ingestion keys them in bulk, off the event loop."""
        return await self._execute(
            self._message_list_call(channel_id, query, page_token, decode_raw_message_page)
        )

    def iter_workspace_messages(
        self, query: MessageQuery, *, max_pages: int | None = None
    ) -> AsyncIterator[MessagePage]:
        """Every page of the workspace list, following nextPageToken to the end."""
        return self._follow(self._message_pager(None, query, max_pages))

    def iter_channel_messages(
        self, channel_id: str, query: MessageQuery, *, max_pages: int | None = None
    ) -> AsyncIterator[MessagePage]:
        """Every page of one channel's list, following nextPageToken to the end."""
        return self._follow(self._message_pager(channel_id, query, max_pages))

    async def get_message(self, channel_id: str, message_id: str) -> Message:
        return await self._execute(self._message_call(channel_id, message_id))

    async def list_interactions(self, channel_id: str, message_id: str) -> list[Interaction]:
        return (await self.list_interactions_raw(channel_id, message_id)).items

    async def list_interactions_raw(self, channel_id: str, message_id: str) -> InteractionList:
        """A message's interactions, typed and as served (unpaginated in Bird's schema)."""
        return await self._execute(self._interactions_call(channel_id, message_id))

    async def list_channels(self, platform: str | None = None) -> list[Channel]:
        """Every channel of the workspace (all pages), optionally of one platform."""
        pages = self._follow(self._channels_pager(platform))
        return [channel async for page in pages for channel in page.results]

    async def get_channel_metrics(self, period_start: datetime, period_end: datetime) -> list[dict[str, Any]]:
        """Daily message counts per channel and status over [period_start, period_end), for reconciliation."""
        return await self._execute(self._metrics_call(period_start, period_end))

    async def _follow(self, pager: _Pager[P]) -> AsyncIterator[P]:
        call: _Call[P] | None = pager.first()
        while call is not None:
            page = await self._execute(call)
            yield page
            call = pager.next(page)

    async def _execute(self, call: _Call[T]) -> T:
        async def attempt(number: int) -> T:
            # A connection is ours before a rate-limit slot is taken, so an admitted request is sent at once:
            # admitted requests queueing for a connection would leave later in a burst (429s at Bird).
            async with self._connections:
                if self.limiter is not None:
                    await self.limiter.acquire()
                pool = min(range(len(self._pools)), key=self._busy.__getitem__)
                self._busy[pool] += 1
                try:
                    with self._exchange(call, number):
                        async with self._pools[pool].stream("GET", call.path, params=call.params) as response:
                            body = b"".join([chunk async for chunk in response.aiter_bytes()])
                finally:
                    self._busy[pool] -= 1
            return self._result(call, response, body)

        return await self.retry.acall(attempt)


class BirdClient(_ClientCore):
    """Blocking twin of `AsyncBirdClient` (same methods) for the CLI and scripts."""

    def __init__(
        self,
        settings: BirdSettings,
        *,
        limiter: SharedRateLimiter | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        max_connections: int = 64,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(settings, limiter=limiter, retry=retry)
        self._http = httpx.Client(**self._http_options(timeout, max_connections), transport=transport)

    def __enter__(self) -> BirdClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def list_workspace_messages(self, query: MessageQuery, page_token: str | None = None) -> MessagePage:
        return self._execute(self._message_list_call(None, query, page_token, decode_message_page))

    def list_channel_messages(
        self, channel_id: str, query: MessageQuery, page_token: str | None = None
    ) -> MessagePage:
        return self._execute(self._message_list_call(channel_id, query, page_token, decode_message_page))

    def iter_workspace_messages(
        self, query: MessageQuery, *, max_pages: int | None = None
    ) -> Iterator[MessagePage]:
        return self._follow(self._message_pager(None, query, max_pages))

    def iter_channel_messages(
        self, channel_id: str, query: MessageQuery, *, max_pages: int | None = None
    ) -> Iterator[MessagePage]:
        return self._follow(self._message_pager(channel_id, query, max_pages))

    def get_message(self, channel_id: str, message_id: str) -> Message:
        return self._execute(self._message_call(channel_id, message_id))

    def list_interactions(self, channel_id: str, message_id: str) -> list[Interaction]:
        return self.list_interactions_raw(channel_id, message_id).items

    def list_interactions_raw(self, channel_id: str, message_id: str) -> InteractionList:
        return self._execute(self._interactions_call(channel_id, message_id))

    def list_channels(self, platform: str | None = None) -> list[Channel]:
        pages = self._follow(self._channels_pager(platform))
        return [channel for page in pages for channel in page.results]

    def get_channel_metrics(self, period_start: datetime, period_end: datetime) -> list[dict[str, Any]]:
        return self._execute(self._metrics_call(period_start, period_end))

    def _follow(self, pager: _Pager[P]) -> Iterator[P]:
        call: _Call[P] | None = pager.first()
        while call is not None:
            page = self._execute(call)
            yield page
            call = pager.next(page)

    def _execute(self, call: _Call[T]) -> T:
        def attempt(number: int) -> T:
            if self.limiter is not None:
                self.limiter.acquire_sync()
            with (
                self._exchange(call, number),
                self._http.stream("GET", call.path, params=call.params) as response,
            ):
                body = b"".join(response.iter_bytes())
            return self._result(call, response, body)

        return self.retry.call(attempt)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process: building one loads the CA bundle, tens of milliseconds per client."""
    return ssl.create_default_context(cafile=certifi.where())
