"""Typed errors for the Bird Channels API client.

Each failure a caller may want to handle differently has its own type, and API errors carry Bird's error body
(`{code, message, details}`) so a log line says what Bird said. Messages are one line and never contain the
access key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

_MAX_MESSAGE_CHARS = 300


class BirdError(Exception):
    """Base of every error the Bird client raises."""


class ConfigError(BirdError):
    """The client settings are missing or malformed (raised before any request)."""


class InvalidRequestError(BirdError, ValueError):
    """A request was rejected by client-side validation, before anything was sent."""


class PaginationError(BirdError):
    """Paging cannot finish safely: the API repeated a page token, or the page cap was reached."""


class UnexpectedResponseError(BirdError):
    """A 2xx body was valid JSON but does not match Bird's documented shape (not retried: it would repeat)."""


class _RetriedError(BirdError):
    """An error that may have been retried; `attempts` is set by the retry loop and shown in the message."""

    attempts: int = 1

    def _attempts_suffix(self) -> str:
        return f" (gave up after {self.attempts} attempts)" if self.attempts > 1 else ""


class TransportError(_RetriedError):
    """The exchange itself failed: timeout, refused or dropped connection, truncated or non-JSON body."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        super().__init__(method, path, reason)
        self.method = method
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.reason}{self._attempts_suffix()}"


class BirdAPIError(_RetriedError):
    """Bird answered with an error status; `code`, `message` and `details` are its error body."""

    def __init__(
        self,
        status_code: int,
        code: str | None,
        message: str,
        details: Mapping[str, list[str]] | None,
        method: str,
        path: str,
    ) -> None:
        super().__init__(status_code, code, message, details, method, path)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details: dict[str, list[str]] = dict(details or {})
        self.method = method
        self.path = path

    def __str__(self) -> str:
        code = f" {self.code}" if self.code else ""
        details = "; ".join(f"{field}: {', '.join(msgs)}" for field, msgs in self.details.items())
        details = f" [{details}]" if details else ""
        return (
            f"{self.method} {self.path} -> HTTP {self.status_code}{code}: {self.message}{details}"
            f"{self._attempts_suffix()}"
        )


class AuthenticationError(BirdAPIError):
    """401/403: the access key is wrong, revoked, or lacks a policy for this workspace or channel."""


class NotFoundError(BirdAPIError):
    """404: unknown workspace, channel or message."""


class ValidationError(BirdAPIError):
    """422: Bird rejected the request parameters; `details` maps each field to its messages."""


class RateLimitedError(BirdAPIError):
    """429: over the workspace's request budget; the request was not processed and is safe to retry."""

    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


class ServerError(BirdAPIError):
    """5xx: Bird's side failed; safe to retry after a delay."""


class _ErrorBody(msgspec.Struct):
    code: str | None = None
    message: str | None = None
    details: dict[str, list[str]] | None = None


_ERROR_BODY = msgspec.json.Decoder(_ErrorBody)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE_CHARS else line[: _MAX_MESSAGE_CHARS - 3] + "..."


def api_error(
    status_code: int, body: bytes, *, method: str, path: str, retry_after: float | None = None
) -> BirdAPIError:
    """The typed error for an error response; tolerant of bodies that are not Bird's JSON (proxies)."""
    try:
        parsed = _ERROR_BODY.decode(body)
    except msgspec.DecodeError:
        parsed = _ErrorBody(message=body.decode("utf-8", "replace"))
    message = _one_line(parsed.message or "") or "(no message)"
    args = (status_code, parsed.code, message, parsed.details, method, path)
    if status_code == 429:
        return RateLimitedError(*args, retry_after=retry_after)
    error_type: type[BirdAPIError]
    if status_code in (401, 403):
        error_type = AuthenticationError
    elif status_code == 404:
        error_type = NotFoundError
    elif status_code == 422:
        error_type = ValidationError
    elif status_code >= 500:
        error_type = ServerError
    else:
        error_type = BirdAPIError
    return error_type(*args)
