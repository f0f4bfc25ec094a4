"""When and how long to retry a Bird request.

Bird documents 429 ("not processed, safe to retry later") and 5xx ("safe to retry, preferably with a delay");
timeouts, dropped connections and truncated bodies are retried too because every call we make is a GET. Other
4xx are the caller's mistake and fail at once. Waits grow exponentially with jitter so that parallel workers
do not retry in lockstep; a `Retry-After` header, when Bird sends one, replaces the computed wait.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import tenacity

from pipelines.bird.errors import RateLimitedError, ServerError, TransportError

log = logging.getLogger(__name__)

RETRYABLE_ERRORS = (RateLimitedError, ServerError, TransportError)

T = TypeVar("T")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """At most `max_attempts` tries; waits of `initial * 2**n` plus up to `jitter` s, capped at `maximum` s.

    A Retry-After longer than `maximum` is capped too, so a hostile header cannot stall a run; the attempt
    budget still bounds the total.
    """

    max_attempts: int = 8
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial < 0 or self.maximum < 0 or self.jitter < 0:
            raise ValueError(f"invalid retry policy {self!r}")

    def wait_seconds(self, retry_state: tenacity.RetryCallState) -> float:
        """Retry-After when the last failure carried one, else exponential backoff with jitter."""
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            return min(error.retry_after, self.maximum)
        backoff = tenacity.wait_exponential_jitter(
            multiplier=self.initial, max=self.maximum, jitter=self.jitter
        )
        return backoff(retry_state)

    def call(self, attempt: Callable[[int], T]) -> T:
        """`attempt(n)` for n = 1, 2, ... until it succeeds or the policy gives up on a retryable error.

        The error that ends the retries carries the attempt count (`error.attempts`, shown in its message).
        """
        attempts = 0

        def numbered() -> T:
            nonlocal attempts
            attempts += 1
            return attempt(attempts)

        try:
            return tenacity.Retrying(**self._options())(numbered)
        except RETRYABLE_ERRORS as error:
            error.attempts = attempts
            raise

    async def acall(self, attempt: Callable[[int], Awaitable[T]]) -> T:
        """The async `call`: awaits `attempt(n)` and sleeps with asyncio between attempts."""
        attempts = 0

        async def numbered() -> T:
            nonlocal attempts
            attempts += 1
            return await attempt(attempts)

        try:
            return await tenacity.AsyncRetrying(**self._options())(numbered)
        except RETRYABLE_ERRORS as error:
            error.attempts = attempts
            raise

    def _options(self) -> dict[str, Any]:
        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self.wait_seconds,
            "retry": tenacity.retry_if_exception_type(RETRYABLE_ERRORS),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
        log.warning(
            "retrying in %.3fs (attempt %d of %d failed): %s",
            wait,
            retry_state.attempt_number,
            self.max_attempts,
            error,
        )
