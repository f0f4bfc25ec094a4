"""The documented filters of Bird's two "list messages" endpoints, validated before anything is sent.

`MessageQuery` catches bad requests (limit out of range, naive datetimes, non-UUID ids, an inverted window) as
`InvalidRequestError` on construction, so a mistake never costs a request or surfaces as a 422 mid-backfill.
`to_params` renders it as Bird expects: arrays as repeated keys, datetimes as RFC 3339 UTC with milliseconds.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from pipelines.bird.errors import InvalidRequestError

ListKind = Literal["workspace", "channel"]

MAX_LIMIT: Final = 1000
MAX_PAGE_TOKEN_CHARS: Final = 8000
_PLATFORM_PATTERN: Final = re.compile(r"[A-Za-z0-9-]{3,60}")
_DIRECTIONS: Final = ("incoming", "outgoing")
_ONE_MS: Final = timedelta(milliseconds=1)

# (field, Bird's query key, the only list kind that accepts it or None for both)
_PARAMS: Final[tuple[tuple[str, str, ListKind | None], ...]] = (
    ("limit", "limit", None),
    ("reverse", "reverse", None),
    ("channel_ids", "channelId", "workspace"),
    ("platform", "platform", None),
    ("direction", "direction", None),
    ("ids", "id", None),
    ("navigator_id", "navigatorId", "channel"),
    ("batch_id", "batchId", "channel"),
    ("start_at", "startAt", None),
    ("end_at", "endAt", None),
    ("from_", "from", None),
    ("to", "to", None),
    ("failure_codes", "failureCode", None),
    ("failure_source_codes", "failureSourceCode", None),
    ("failure_source_names", "failureSourceName", None),
    ("country_codes", "countryCode", None),
    ("tags", "tag", None),
    ("email_subject", "emailSubject", None),
)


def format_datetime(value: datetime, field: str) -> str:
    """RFC 3339 UTC with milliseconds and `Z`, rounded UP to the millisecond.

    Bird's timestamps have millisecond precision, so rounding both bounds of a half-open window up keeps
    exactly the same messages as the microsecond bounds would.
    """
    utc = require_aware(value, field).astimezone(UTC)
    if utc.microsecond % 1000:
        utc = utc.replace(microsecond=utc.microsecond // 1000 * 1000) + _ONE_MS
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def require_aware(value: object, field: str) -> datetime:
    """The datetime itself if it is timezone-aware; naive times are ambiguous and rejected."""
    if not isinstance(value, datetime):
        raise InvalidRequestError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRequestError(f"{field} must be timezone-aware (got naive {value.isoformat()})")
    return value


def require_uuid(value: object, field: str) -> str:
    """The canonical form of a UUID string; anything else is an InvalidRequestError."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else str(uuid.UUID(str(value)))
    except ValueError:
        raise InvalidRequestError(f"{field} must be a UUID, got {value!r}") from None


def _as_tuple(value: str | Iterable[str] | Iterable[int] | None) -> tuple:
    """A single string is one value, not a sequence of characters."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _strings(value: str | Iterable[str] | None, field: str) -> tuple[str, ...]:
    items = _as_tuple(value)
    for item in items:
        if not isinstance(item, str) or not item:
            raise InvalidRequestError(f"{field} values must be non-empty strings, got {item!r}")
    return items


@dataclass(frozen=True, kw_only=True)
class MessageQuery:
    """Filters for `GET .../channels/messages` (workspace) and `GET .../channels/{id}/messages` (channel).

    The window is half-open, [start_at, end_at). `limit` defaults to Bird's maximum because the default of 10
    would multiply the requests an ingestion needs by a hundred.
    """

    limit: int = MAX_LIMIT
    reverse: bool = False
    platform: str | tuple[str, ...] | None = None
    direction: Literal["incoming", "outgoing"] | None = None
    ids: tuple[str, ...] = ()
    start_at: datetime | None = None
    end_at: datetime | None = None
    from_: tuple[str, ...] = ()
    to: tuple[str, ...] = ()
    failure_codes: tuple[int, ...] = ()
    failure_source_codes: tuple[str, ...] = ()
    failure_source_names: tuple[str, ...] = ()
    country_codes: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    email_subject: str | None = None
    channel_ids: tuple[str, ...] = ()
    navigator_id: str | None = None
    batch_id: str | None = None

    def __post_init__(self) -> None:
        def set_(name: str, value: object) -> None:
            object.__setattr__(self, name, value)

        limit = self.limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be an integer in 1..{MAX_LIMIT}, got {self.limit!r}")
        if self.platform is not None:
            platforms = _strings(self.platform, "platform")
            for platform in platforms:
                if not _PLATFORM_PATTERN.fullmatch(platform):
                    raise InvalidRequestError(
                        f"platform must match ^[A-Za-z0-9-]+$ with 3..60 characters, got {platform!r}"
                    )
            set_("platform", platforms[0] if isinstance(self.platform, str) else platforms)
        if self.direction is not None and self.direction not in _DIRECTIONS:
            raise InvalidRequestError(f"direction must be one of {_DIRECTIONS}, got {self.direction!r}")
        for name in ("ids", "channel_ids"):
            set_(name, tuple(require_uuid(value, name) for value in _as_tuple(getattr(self, name))))
        for name in ("navigator_id", "batch_id"):
            if getattr(self, name) is not None:
                set_(name, require_uuid(getattr(self, name), name))
        for name in ("start_at", "end_at"):
            if getattr(self, name) is not None:
                require_aware(getattr(self, name), name)
        if self.start_at is not None and self.end_at is not None and self.end_at < self.start_at:
            raise InvalidRequestError(
                f"end_at ({self.end_at.isoformat()}) is before start_at ({self.start_at.isoformat()})"
            )
        codes = _as_tuple(self.failure_codes)
        if any(isinstance(code, bool) or not isinstance(code, int) for code in codes):
            raise InvalidRequestError(f"failure_codes must be integers, got {codes!r}")
        set_("failure_codes", codes)
        for name in ("from_", "to", "failure_source_codes", "failure_source_names", "country_codes", "tags"):
            set_(name, _strings(getattr(self, name), name))
        subject = self.email_subject
        if subject is not None and (not isinstance(subject, str) or not subject):
            raise InvalidRequestError(f"email_subject must be a non-empty string, got {subject!r}")

    def to_params(self, kind: ListKind) -> list[tuple[str, str]]:
        """Query parameters for one list endpoint; a filter only the other has is an InvalidRequestError."""
        if kind not in ("workspace", "channel"):
            raise InvalidRequestError(f"kind must be 'workspace' or 'channel', got {kind!r}")
        params: list[tuple[str, str]] = []
        for name, key, only_for in _PARAMS:
            value = getattr(self, name)
            if value is None or value == () or value is False:
                continue
            if only_for is not None and only_for != kind:
                raise InvalidRequestError(f"{name} filters only the {only_for} message list, not {kind}")
            items = value if isinstance(value, tuple) else (value,)
            params.extend((key, _render(item, name)) for item in items)
        return params


def _render(value: object, field: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value, field)
    return str(value)
