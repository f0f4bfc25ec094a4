"""The Bird Channels API emulator as a Starlette app: Bird's routes, envelopes and errors, plus faults.

One app serves one or several workspaces, each behind its own access key with its own faults, stats and
request budget. Request flow for the API routes: AccessKey check (401; the key picks the workspace) -> another
served workspace's path (403) -> that workspace's GET faults (latency, slow answers, rate limit, 429, 5xx) ->
workspace/channel/message lookup (404, also for a deleted channel) -> parameter validation (422, also a
rejected pageToken) -> the page, joined from pre-serialized JSON bytes (with any foreign or repeated items) ->
delivery faults (dropped connection, truncated body, invalid JSON). `/_emulator/*` are admin routes for tests
steering an emulator in another process: the key picks the workspace, never faulted, not counted.
`/openapi.json` describes the API routes and needs no key (Bird's reference is public too).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from pipelines.emulator.faults import Faults, RateLimiter
from pipelines.emulator.model import Channel, iso_ms, to_ms
from pipelines.emulator.openapi import openapi_document
from pipelines.emulator.query import (
    ApiError,
    ListQuery,
    Params,
    encode_page_token,
    not_found,
    parse_date_time,
    parse_list_query,
)
from pipelines.emulator.store import MessageStore, Page
from pipelines.emulator.workspaces import DEFAULT_ACCESS_KEY, EmulatedWorkspace, check_distinct
from transforms.vocabulary import BODY_TYPES

END_SIGNALS = ("absent", "empty_string", "empty_page")
CROSS_WORKSPACE_STATUSES = (403, 404)
JSON = "application/json"


class ConnectionDropped(Exception):
    """Raised after part of a body was sent, so the server cuts the connection (the drop fault)."""


class _DroppingResponse(Response):
    """Sends the status line, the full Content-Length and half the body, then aborts."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        await send(
            {"type": "http.response.body", "body": self.body[: len(self.body) // 2], "more_body": True}
        )
        raise ConnectionDropped("fault injection: connection dropped mid-body")


class _HideDroppedConnections(logging.Filter):
    """Keeps the server log free of the tracebacks that the drop fault causes on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=headers)


class WorkspaceEmulator:
    """Route handlers over one served workspace: its store, faults, stats and rate-limit bucket."""

    def __init__(self, workspace: EmulatedWorkspace, *, inclusive_end: bool, end_signal: str) -> None:
        self.workspace = workspace
        self.store = workspace.store
        self.stats = workspace.stats
        self.inclusive_end = inclusive_end
        self.end_signal = end_signal
        self._limiter = RateLimiter()

    @property
    def faults(self) -> Faults:
        """The workspace's switches, read on every request (a test may swap in a new `Faults`)."""
        return self.workspace.faults

    # -- plumbing -------------------------------------------------------------------------------------------

    async def request_faults(self, workspace_id: str) -> None:
        faults = self.faults
        at = self.stats.record_get(workspace_id)
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.roll(faults.slow_rate):
            self.stats.record("slow")
            await asyncio.sleep(faults.slow_ms / 1000)
        limited = faults.rate_limit_per_s is not None and not self._limiter.allow(
            workspace_id, faults.rate_limit_per_s, at
        )
        if limited or faults.roll(faults.error_429_rate):
            self.stats.record("429")
            retry_after = (
                None if faults.retry_after_s is None else {"Retry-After": f"{faults.retry_after_s:g}"}
            )
            raise ApiError(429, "TooManyRequests", "Too many requests, retry later", headers=retry_after)
        if faults.roll(faults.error_5xx_rate):
            self.stats.record("5xx")
            status = faults.rng.choice((500, 502, 503))
            raise ApiError(status, "InternalServerError", "Something went wrong, safe to retry")

    def deliver(self, status: int, body: bytes) -> Response:
        if status == 200 and self.faults.roll(self.faults.drop_connection_rate):
            self.stats.record("drop")
            return _DroppingResponse(body, status_code=status, media_type=JSON)
        if status == 200 and self.faults.roll(self.faults.truncate_json_rate):
            self.stats.record("truncated")
            return Response(body[: len(body) // 2], status_code=status, media_type=JSON)
        if status == 200 and self.faults.roll(self.faults.invalid_json_rate):
            self.stats.record("invalid_json")
            return Response(b"<html><body>502 Bad Gateway</body></html>", status_code=status, media_type=JSON)
        return Response(body, status_code=status, media_type=JSON)

    def _channel(self, request: Request) -> Channel:
        channel = self.store.channel(request.path_params["channel_id"])
        if channel is None:
            raise not_found("channel")
        if self._is_deleted(channel.id):
            self.stats.record("deleted_channel")
            raise not_found("channel")
        return channel

    def _is_deleted(self, channel_id: str) -> bool:
        """The deleted-channel fault: gone once `delete_after_gets` GETs were served."""
        faults = self.faults
        return faults.deleted_channel_id == channel_id and self.stats.total_gets() > faults.delete_after_gets

    def _next_token(self, page: Page) -> bytes | None:
        """The `nextPageToken` value as JSON, or None to leave the field out (see docs/emulator.md)."""
        if page.has_more and page.last_key is not None:
            return orjson.dumps(encode_page_token(page.last_key))
        if self.end_signal == "empty_string":
            return b'""'
        if self.end_signal == "empty_page" and page.last_key is not None:
            return orjson.dumps(encode_page_token(page.last_key))
        return None

    # -- messages -------------------------------------------------------------------------------------------

    async def workspace_messages(self, request: Request) -> tuple[int, bytes]:
        query = parse_list_query(request.query_params, channel_list=False, inclusive_end=self.inclusive_end)
        page = self._page(query, channel_id=None)
        token = self._next_token(page)
        tail = b"" if token is None else b',"nextPageToken":' + token
        return 200, _json_list(b'{"results":[', page.items, b"]" + tail + b"}")

    async def channel_messages(self, request: Request) -> tuple[int, bytes]:
        channel = self._channel(request)
        if request.method == "POST":
            return await self._send(request, channel)
        query = parse_list_query(request.query_params, channel_list=True, inclusive_end=self.inclusive_end)
        page = self._page(query, channel_id=channel.id)
        token = self._next_token(page)
        head = b"{" + query.envelope_bounds() + (b"" if token is None else b'"nextPageToken":' + token + b",")
        return 200, _json_list(head + b'"results":[', page.items, b"]}")

    def _page(self, query: ListQuery, *, channel_id: str | None) -> Page:
        faults = self.faults
        if query.after is not None and faults.roll(faults.reject_page_token_rate):
            self.stats.record("token_rejected")
            raise _invalid({"pageToken": ["expired, start again without a pageToken"]})
        inserts = faults.live_inserts_per_page
        if inserts and query.after is not None:
            inserted = self.store.insert_live(
                inserts,
                start_ms=query.start_ms if query.start_ms is not None else to_ms(self.store.spec.start),
                end_ms=query.end_ms if query.end_ms is not None else to_ms(self.store.now) + 1,
                channel_id=channel_id,
            )
            self.stats.record("live_insert", len(inserted))
        page = self.store.page(
            channel_id=channel_id,
            start_ms=query.start_ms,
            end_ms=query.end_ms,
            after=query.after,
            oldest_first=query.oldest_first,
            limit=query.limit,
            keep=query.filters,
        )
        return self._corrupt(page, query, channel_id)

    def _corrupt(self, page: Page, query: ListQuery, channel_id: str | None) -> Page:
        """The page-content faults: the previous page's last item again, one item from outside the window."""
        faults, items = self.faults, list(page.items)
        if query.after is not None and faults.roll(faults.duplicate_rate):
            self.stats.record("duplicate")
            items.insert(0, self.store.message_json(query.after[1]))
        if faults.roll(faults.outside_window_rate) and (foreign := self._outside(query, channel_id)):
            self.stats.record("outside_window")
            items.insert(len(items) // 2, foreign)
        return Page(items, page.last_key, page.has_more)

    def _outside(self, query: ListQuery, channel_id: str | None) -> bytes | None:
        """A message created just before the query's window, else just after it; None if unbounded."""
        for start_ms, end_ms, oldest_first in ((None, query.start_ms, False), (query.end_ms, None, True)):
            if start_ms is None and end_ms is None:
                continue
            found = self.store.page(
                channel_id=channel_id,
                start_ms=start_ms,
                end_ms=end_ms,
                after=None,
                oldest_first=oldest_first,
                limit=1,
                keep=(),
            )
            if found.items:
                return found.items[0]
        return None

    async def message(self, request: Request) -> tuple[int, bytes]:
        channel_id = self._channel(request).id
        try:
            return 200, self.store.message_json(request.path_params["message_id"], channel_id=channel_id)
        except KeyError:
            raise not_found("message") from None

    async def interactions(self, request: Request) -> tuple[int, bytes]:
        channel_id = self._channel(request).id
        try:
            found = self.store.interactions(request.path_params["message_id"], channel_id=channel_id)
        except KeyError:
            raise not_found("message") from None
        return 200, orjson.dumps({"results": found})

    async def _send(self, request: Request, channel: Channel) -> tuple[int, bytes]:
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _invalid({"body": ["invalid JSON"]}) from None
        _validate_send(payload, multiple_receivers=channel.platform_id.startswith("email"))
        return 202, self.store.send(channel, payload).json

    # -- channels and reporting -----------------------------------------------------------------------------

    async def channels(self, request: Request) -> tuple[int, bytes]:
        p = Params(request.query_params)
        limit, oldest_first = p.limit(), p.boolean("reverse")
        platforms, wanted = set(p.platforms()), set(p.uuids("channelIds"))
        after = p.page_token(None, None)
        p.raise_if_invalid()
        channels = sorted(
            (
                c
                for c in self.store.channel_records()
                if (not platforms or c.platform_id in platforms)
                and (not wanted or c.id in wanted)
                and not self._is_deleted(c.id)
            ),
            key=lambda c: (c.created_ms, c.id),
            reverse=not oldest_first,
        )
        if after is not None:
            channels = [
                c
                for c in channels
                if ((c.created_ms, c.id) > after if oldest_first else (c.created_ms, c.id) < after)
            ]
        page = channels[:limit]
        envelope: dict[str, Any] = {"results": [c.to_dict() for c in page]}
        if len(channels) > limit:
            envelope["nextPageToken"] = encode_page_token((page[-1].created_ms, page[-1].id))
        return 200, orjson.dumps(envelope)

    async def channel(self, request: Request) -> tuple[int, bytes]:
        return 200, orjson.dumps(self._channel(request).to_dict())

    async def metrics(self, request: Request) -> tuple[int, bytes]:
        """Daily counts per channel and status (our assumption of Bird's unpublished shape)."""
        p = Params(request.query_params)
        start, end = p.date_time("periodStart", required=True), p.date_time("periodEnd", required=True)
        if (p.one("groupBy") or "day") != "day":
            p.fail("groupBy", "only day is emulated")
        if start and end and end < start:
            p.fail("periodEnd", "must not be before periodStart")
        channel_ids = frozenset(p.uuids("channelId")) or None
        p.raise_if_invalid()
        assert start is not None and end is not None
        return 200, orjson.dumps({"results": self.store.daily_counts(start, end, channel_ids=channel_ids)})

    # -- description and admin ------------------------------------------------------------------------------

    async def admin_stats(self, request: Request) -> tuple[int, bytes]:
        return 200, orjson.dumps({**self.stats.to_dict(), "now": iso_ms(to_ms(self.store.now))})

    async def admin_faults(self, request: Request) -> tuple[int, bytes]:
        try:
            self.faults.update(orjson.loads(await request.body()))
        except (orjson.JSONDecodeError, ValueError, TypeError) as error:
            raise _invalid({"body": [str(error)]}) from None
        return 200, orjson.dumps(self.faults.to_dict())

    async def admin_ground_truth(self, request: Request) -> tuple[int, bytes]:
        p = Params(request.query_params)
        start, end = p.date_time("startAt", required=True), p.date_time("endAt", required=True)
        channel_id = p.one_uuid("channelId")
        p.raise_if_invalid()
        assert start is not None and end is not None
        ids = self.store.ground_truth_ids(start, end, channel_id=channel_id)
        return 200, orjson.dumps({"ids": sorted(ids)})

    async def admin_advance(self, request: Request) -> tuple[int, bytes]:
        try:
            to = orjson.loads(await request.body())["to"]
            moment = parse_date_time(to)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise _invalid({"to": ["required, an RFC 3339 date-time"]}) from None
        self.store.advance(moment)
        return 200, orjson.dumps({"now": iso_ms(to_ms(self.store.now))})


Handler = Callable[[WorkspaceEmulator, Request], Awaitable[tuple[int, bytes]]]


class Emulator:
    """Authenticates each request and hands it to the workspace its access key belongs to."""

    def __init__(
        self,
        workspaces: Sequence[EmulatedWorkspace],
        *,
        inclusive_end: bool,
        end_signal: str,
        cross_workspace_status: int,
    ) -> None:
        if end_signal not in END_SIGNALS:
            raise ValueError(f"end_signal must be one of {END_SIGNALS}, not {end_signal!r}")
        if cross_workspace_status not in CROSS_WORKSPACE_STATUSES:
            raise ValueError(f"cross_workspace_status must be one of {CROSS_WORKSPACE_STATUSES}")
        check_distinct(workspaces)
        self.workspaces = [
            WorkspaceEmulator(w, inclusive_end=inclusive_end, end_signal=end_signal) for w in workspaces
        ]
        self._by_authorization = {f"AccessKey {w.workspace.access_key}": w for w in self.workspaces}
        self._served = frozenset(w.store.workspace_id for w in self.workspaces)
        self._forbid_others = cross_workspace_status == 403

    def api(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                workspace = self._authorize(request)
                workspace_id = request.path_params["workspace_id"]
                own = workspace_id == workspace.store.workspace_id
                if not own and self._forbid_others and workspace_id in self._served:
                    raise ApiError(403, "Forbidden", "The access key has no access to this workspace")
                is_get = request.method == "GET"
                if is_get:
                    await workspace.request_faults(workspace_id)
                if not own:
                    raise not_found("workspace")
                status, body = await handler(workspace, request)
            except ApiError as error:
                return _json(error.status, error.body, error.headers)
            if is_get:
                return workspace.deliver(status, body)
            return Response(body, status_code=status, media_type=JSON)

        return endpoint

    def admin(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                status, body = await handler(self._authorize(request), request)
            except ApiError as error:
                return _json(error.status, error.body)
            return Response(body, status_code=status, media_type=JSON)

        return endpoint

    def _authorize(self, request: Request) -> WorkspaceEmulator:
        """The workspace of the request's access key; 401 for a missing or unknown key."""
        workspace = self._by_authorization.get(request.headers.get("authorization", ""))
        if workspace is None:
            raise ApiError(401, "Unauthorized", "Missing or invalid access key")
        return workspace


async def _openapi(request: Request) -> Response:
    return _json(200, openapi_document(str(request.base_url).rstrip("/")))


def _json_list(head: bytes, items: list[bytes], tail: bytes) -> bytes:
    """`head`, the items comma-separated, then `tail`: a page (~1 MB) is copied once, not once per `+`."""
    if not items:
        return head + tail
    framed = list(items)
    framed[0] = head + framed[0]
    framed[-1] += tail
    return b",".join(framed)


def _invalid(details: dict[str, list[str]]) -> ApiError:
    return ApiError(422, "ValidationError", "The request did not pass validation", details)


def _validate_send(payload: Any, *, multiple_receivers: bool) -> None:
    """Bird's minimal send contract: one receiver contact (several on email) and a body or a template."""
    errors: dict[str, list[str]] = {}
    if not isinstance(payload, dict):
        raise _invalid({"body": ["must be a JSON object"]})
    receiver = payload.get("receiver")
    contacts = receiver.get("contacts") if isinstance(receiver, dict) else None
    if not isinstance(contacts, list) or not contacts:
        errors["receiver.contacts"] = ["at least one contact is required"]
    elif not all(isinstance(c, dict) and isinstance(c.get("identifierValue"), str) for c in contacts):
        errors["receiver.contacts"] = ["each contact needs an identifierValue"]
    elif len(contacts) > 1 and not multiple_receivers:
        errors["receiver.contacts"] = ["only email messages can have several receivers"]
    body, template = payload.get("body"), payload.get("template")
    if (body is None) == (template is None):
        errors["body"] = ["exactly one of body and template is required"]
    elif body is not None and (not isinstance(body, dict) or body.get("type") not in BODY_TYPES):
        errors["body.type"] = [f"must be one of {', '.join(BODY_TYPES)}"]
    if not isinstance(payload.get("meta", {}), dict):
        errors["meta"] = ["must be an object"]
    tags = payload.get("tags", [])
    if not isinstance(tags, list) or len(tags) > 10 or not all(isinstance(t, str) for t in tags):
        errors["tags"] = ["at most 10 strings"]
    if errors:
        raise _invalid(errors)


def create_app(
    store: MessageStore | None = None,
    *,
    access_key: str | None = None,
    faults: Faults | None = None,
    workspaces: Sequence[EmulatedWorkspace] | None = None,
    inclusive_end: bool = False,
    end_signal: str = "absent",
    cross_workspace_status: int = 403,
) -> Starlette:
    """The emulator for one store behind `access_key` (default `emulator-access-key`), or for several
    `workspaces`, each behind its own key (see `workspaces.generate_workspaces`).

    `inclusive_end`, `end_signal` and `cross_workspace_status` switch the undocumented semantics.
    """
    if (store is None) == (workspaces is None):
        raise ValueError("pass either store or workspaces")
    if workspaces is None:
        assert store is not None
        workspaces = [
            EmulatedWorkspace(
                store,
                access_key if access_key is not None else DEFAULT_ACCESS_KEY,
                faults if faults is not None else Faults(),
            )
        ]
    elif faults is not None or access_key is not None:
        raise ValueError("with workspaces, each workspace carries its own access key and faults")
    emulator = Emulator(
        workspaces,
        inclusive_end=inclusive_end,
        end_signal=end_signal,
        cross_workspace_status=cross_workspace_status,
    )
    workspace = "/workspaces/{workspace_id}"
    message = workspace + "/channels/{channel_id}/messages/{message_id}"
    api, admin, ws = emulator.api, emulator.admin, WorkspaceEmulator
    app = Starlette(
        routes=[
            Route(workspace + "/channels", api(ws.channels), methods=["GET"]),
            Route(workspace + "/channels/messages", api(ws.workspace_messages), methods=["GET"]),
            Route(workspace + "/channels/{channel_id}", api(ws.channel), methods=["GET"]),
            Route(
                workspace + "/channels/{channel_id}/messages",
                api(ws.channel_messages),
                methods=["GET", "POST"],
            ),
            Route(message, api(ws.message), methods=["GET"]),
            Route(message + "/interactions", api(ws.interactions), methods=["GET"]),
            Route(workspace + "/reporting/channels/metrics", api(ws.metrics), methods=["GET"]),
            Route("/openapi.json", _openapi, methods=["GET"]),
            Route("/_emulator/stats", admin(ws.admin_stats), methods=["GET"]),
            Route("/_emulator/faults", admin(ws.admin_faults), methods=["PUT"]),
            Route("/_emulator/ground-truth", admin(ws.admin_ground_truth), methods=["GET"]),
            Route("/_emulator/advance", admin(ws.admin_advance), methods=["POST"]),
        ]
    )
    app.state.emulator = emulator
    return app
