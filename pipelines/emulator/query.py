"""Query-string parsing and validation for the emulated endpoints, with Bird's error bodies.

Every problem with the parameters is collected and answered at once as Bird's 422
`{code: "ValidationError", message, details: {field: [messages]}}`. Array parameters arrive as repeated keys
(`?tag=a&tag=b`) or comma-separated (`?tag=a,b`); both are accepted.
"""

import base64
import binascii
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from starlette.datastructures import QueryParams

from pipelines.emulator.model import EPOCH, MessageFilter, iso_ms, to_ms

PAGE_TOKEN_MAX_CHARS = 8000
MAX_LIMIT = 1000
_PLATFORM = re.compile(r"^[A-Za-z0-9-]{3,60}$")
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class ApiError(Exception):
    """An error answered with Bird's JSON error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, list[str]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers
        self.body: dict[str, Any] = {"code": code, "message": message}
        if details is not None:
            self.body["details"] = details


def not_found(what: str) -> ApiError:
    return ApiError(404, "NotFound", f"{what} not found")


def encode_page_token(key: tuple[int, str]) -> str:
    """Bird's cursor shape: base64 of the JSON `[epoch_ms_of_createdAt, id]` of the last item served."""
    return base64.b64encode(orjson.dumps(list(key))).decode()


def decode_page_token(token: str) -> tuple[int, str]:
    """Inverse of `encode_page_token`; ValueError for anything that is not one of our cursors."""
    try:
        padded = token + "=" * (-len(token) % 4)
        decoded = orjson.loads(base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True))
    except (binascii.Error, orjson.JSONDecodeError, ValueError) as error:
        raise ValueError("not a page token") from error
    match decoded:
        case [int(ms), str(item_id)] if ms >= 0:
            return ms, str(uuid.UUID(item_id))
    raise ValueError("not a page token")


def parse_date_time(raw: str) -> datetime:
    """An RFC 3339 date-time: date, time and offset all required; ValueError otherwise."""
    parsed = datetime.fromisoformat(raw)
    if parsed.tzinfo is None or "T" not in raw.upper():
        raise ValueError(f"{raw!r} is not an RFC 3339 date-time")
    return parsed


def window_ms(
    start: datetime | None, end: datetime | None, *, inclusive_end: bool
) -> tuple[int | None, int | None]:
    """The window as half-open bounds on millisecond createdAt values: createdAt in [start_ms, end_ms).

    Half-open [start, end) by default; `inclusive_end` reads endAt as inclusive, [start, end].
    """
    one_ms = timedelta(milliseconds=1)
    start_ms = None if start is None else -(-(start - EPOCH) // one_ms)  # ceil: createdAt >= start
    if end is None:
        return start_ms, None
    if inclusive_end:
        return start_ms, (end - EPOCH) // one_ms + 1  # createdAt <= end  <=>  createdAt < floor(end) + 1
    return start_ms, -(-(end - EPOCH) // one_ms)  # createdAt < end  <=>  createdAt < ceil(end)


class Params:
    """Typed access to a query string that records every validation problem by field."""

    def __init__(self, params: QueryParams) -> None:
        self._params = params
        self.errors: dict[str, list[str]] = defaultdict(list)

    def fail(self, name: str, problem: str) -> None:
        self.errors[name].append(problem)

    def raise_if_invalid(self) -> None:
        if self.errors:
            raise ApiError(422, "ValidationError", "The request did not pass validation", dict(self.errors))

    def values(self, name: str) -> list[str]:
        return [part.strip() for raw in self._params.getlist(name) for part in raw.split(",") if part.strip()]

    def one(self, name: str) -> str | None:
        return self._params.get(name)

    def limit(self) -> int:
        raw = self.one("limit")
        if raw is None:
            return 10
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            self.fail("limit", f"must be an integer between 1 and {MAX_LIMIT}")
            return 10
        return int(raw)

    def boolean(self, name: str) -> bool:
        raw = (self.one(name) or "false").lower()
        if raw not in _TRUE | _FALSE:
            self.fail(name, "must be true or false")
        return raw in _TRUE

    def uuids(self, name: str) -> list[str]:
        found = []
        for value in self.values(name):
            try:
                found.append(str(uuid.UUID(value)))
            except ValueError:
                self.fail(name, f"{value!r} is not a valid uuid")
        return found

    def one_uuid(self, name: str) -> str | None:
        found = self.uuids(name)
        if len(found) > 1:
            self.fail(name, "must be a single uuid")
        return found[0] if found else None

    def date_time(self, name: str, *, required: bool = False) -> datetime | None:
        raw = self.one(name)
        if raw is None:
            if required:
                self.fail(name, "is required")
            return None
        try:
            return parse_date_time(raw)
        except ValueError:
            self.fail(name, "must be an RFC 3339 date-time with a time zone, e.g. 2025-05-29T06:14:56.392Z")
            return None

    def integers(self, name: str) -> list[int]:
        found = []
        for value in self.values(name):
            if value.lstrip("-").isdigit():
                found.append(int(value))
            else:
                self.fail(name, f"{value!r} is not an integer")
        return found

    def platforms(self) -> list[str]:
        found = self.values("platform")
        for value in found:
            if not _PLATFORM.match(value):
                self.fail("platform", f"{value!r} must match ^[A-Za-z0-9-]+$ and be 3 to 60 characters")
        return found

    def page_token(self, start_ms: int | None, end_ms: int | None) -> tuple[int, str] | None:
        """The cursor, checked to decode and to point inside the queried window."""
        raw = self.one("pageToken")
        if raw is None or raw == "":
            return None
        if len(raw) > PAGE_TOKEN_MAX_CHARS:
            self.fail("pageToken", f"must be at most {PAGE_TOKEN_MAX_CHARS} characters")
            return None
        try:
            key = decode_page_token(raw)
        except ValueError:
            self.fail("pageToken", "is not a valid page token")
            return None
        if (start_ms is not None and key[0] < start_ms) or (end_ms is not None and key[0] >= end_ms):
            self.fail("pageToken", "does not belong to this query's startAt/endAt window")
            return None
        return key


@dataclass(frozen=True)
class ListQuery:
    """A validated message-list request."""

    limit: int
    oldest_first: bool
    start_at: datetime | None
    end_at: datetime | None
    start_ms: int | None
    end_ms: int | None
    after: tuple[int, str] | None
    filters: tuple[MessageFilter, ...]

    def envelope_bounds(self) -> bytes:
        """`"startAt":..,"endAt":..,` for the channel-list envelope (only the bounds that were asked for)."""
        parts = [
            f'"{name}":"{iso_ms(to_ms(moment))}",'
            for name, moment in (("startAt", self.start_at), ("endAt", self.end_at))
            if moment is not None
        ]
        return "".join(parts).encode()


def parse_list_query(params: QueryParams, *, channel_list: bool, inclusive_end: bool) -> ListQuery:
    """Validate the documented parameters of the workspace list or (`channel_list`) the channel list."""
    p = Params(params)
    limit = p.limit()
    oldest_first = p.boolean("reverse")
    start_at, end_at = p.date_time("startAt"), p.date_time("endAt")
    if start_at and end_at and end_at < start_at:
        p.fail("endAt", "must not be before startAt")
    start_ms, end_ms = window_ms(start_at, end_at, inclusive_end=inclusive_end)
    after = p.page_token(start_ms, end_ms)
    direction = p.one("direction")
    if direction is not None and direction not in ("incoming", "outgoing"):
        p.fail("direction", "must be one of incoming, outgoing")
    filters: list[MessageFilter] = []
    if channel_list:
        navigator_id, batch_id = p.one_uuid("navigatorId"), p.one_uuid("batchId")
        if navigator_id:
            filters.append(lambda m, now, v=navigator_id: bool(m.meta) and m.meta.get("navigatorId") == v)
        if batch_id:
            filters.append(lambda m, now, v=batch_id: bool(m.origin) and m.origin.get("id") == v)
    elif channel_ids := set(p.uuids("channelId")):
        filters.append(lambda m, now, v=channel_ids: m.channel.id in v)
    if platforms := set(p.platforms()):
        filters.append(lambda m, now, v=platforms: m.channel.platform_id in v)
    if direction:
        filters.append(lambda m, now, v=direction: m.direction == v)
    if ids := set(p.uuids("id")):
        filters.append(lambda m, now, v=ids: m.id in v)
    if senders := set(p.values("from")):
        filters.append(lambda m, now, v=senders: m.sender_value in v)
    if receivers := set(p.values("to")):
        filters.append(lambda m, now, v=receivers: m.receiver_value in v)
    if codes := set(p.integers("failureCode")):
        filters.append(lambda m, now, v=codes: (f := m.failure_at(now)) is not None and f.code in v)
    if source_codes := set(p.values("failureSourceCode")):
        filters.append(
            lambda m, now, v=source_codes: (f := m.failure_at(now)) is not None and f.source_code in v
        )
    if source_names := set(p.values("failureSourceName")):
        filters.append(
            lambda m, now, v=source_names: (f := m.failure_at(now)) is not None and f.source_name in v
        )
    if countries := {c.upper() for c in p.values("countryCode")}:
        filters.append(lambda m, now, v=countries: m.contact.country in v)
    if tags := {t.lower() for t in p.values("tag")}:
        filters.append(lambda m, now, v=tags: not v.isdisjoint(m.tags))
    if subject := p.one("emailSubject"):
        needle = subject.casefold()
        filters.append(lambda m, now, v=needle: (s := m.email_subject) is not None and v in s.casefold())
    p.raise_if_invalid()
    return ListQuery(limit, oldest_first, start_at, end_at, start_ms, end_ms, after, tuple(filters))
