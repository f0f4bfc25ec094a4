"""Run-time fault switches and the request log that shows a client how it behaved.

Faults are drawn from their own seeded RNG, so a fault run is reproducible for a given request sequence.
They apply to the API's GET requests only (the archive never sends); admin endpoints are never faulted.
"""

import random
import threading
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class Faults:
    """What can go wrong, switchable while the emulator runs (set attributes, or PUT /_emulator/faults)."""

    error_429_rate: float = 0.0
    retry_after_s: float | None = None  # sent as Retry-After with every 429 when set (Bird documents none)
    error_5xx_rate: float = 0.0
    latency_ms: float = 0.0
    drop_connection_rate: float = 0.0  # headers and part of the body, then the connection is cut
    rate_limit_per_s: float | None = None  # Bird's per-workspace GET limit is 50/s; above it, 429
    live_inserts_per_page: int = 0  # new messages created inside the window whenever a next page is asked for
    truncate_json_rate: float = 0.0  # 200 with a body cut short
    invalid_json_rate: float = 0.0  # 200 with an HTML body (a proxy's error page), not JSON
    slow_rate: float = 0.0  # share of GETs held back `slow_ms` before answering (past a client's timeout)
    slow_ms: float = 0.0
    reject_page_token_rate: float = 0.0  # a list request with a pageToken gets 422 on pageToken (expired)
    outside_window_rate: float = 0.0  # a list page carries one extra message created outside the window
    duplicate_rate: float = 0.0  # a next page repeats the last message of the page before it
    deleted_channel_id: str | None = None  # this channel is deleted (404, gone from /channels) ...
    delete_after_gets: int = 0  # ... once this many GETs were served: a channel deleted mid-run
    seed: int = 0
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes, all or none; a new `seed` restarts the RNG. ValueError/TypeError if invalid."""
        known = {f.name for f in fields(self) if f.init}
        if unknown := set(changes) - known:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        checked = {name: _coerce(name, value) for name, value in changes.items()}
        for name, value in checked.items():
            setattr(self, name, value)
        if "seed" in checked:
            self.rng = random.Random(self.seed)

    def roll(self, rate: float) -> bool:
        """True with probability `rate`; draws nothing when the fault is off, so switches stay independent."""
        return rate > 0 and self.rng.random() < rate

    def to_dict(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if name != "rng"}


_OPTIONAL_FIELDS = {"retry_after_s", "rate_limit_per_s", "deleted_channel_id"}
_INTEGER_FIELDS = {"live_inserts_per_page", "delete_after_gets", "seed"}
_STRING_FIELDS = {"deleted_channel_id"}


def _coerce(name: str, value: Any) -> float | int | str | None:
    if value is None and name in _OPTIONAL_FIELDS:
        return None
    if name in _STRING_FIELDS:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string or null")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number")
    return int(value) if name in _INTEGER_FIELDS else float(value)


class RateLimiter:
    """Per-workspace sliding one-second budget of GETs; requests refused with 429 do not use it up."""

    def __init__(self) -> None:
        self._accepted: dict[str, deque[float]] = {}

    def allow(self, workspace_id: str, limit_per_s: float, at: float) -> bool:
        recent = self._accepted.setdefault(workspace_id, deque())
        while recent and recent[0] <= at - 1.0:
            recent.popleft()
        if len(recent) >= limit_per_s:
            return False
        recent.append(at)
        return True


class RequestStats:
    """What the emulator saw and served: GETs per workspace, faults served, and every GET's arrival time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.gets: Counter[str] = Counter()
        # "429", "5xx", "drop", "truncated", "live_insert", "invalid_json", "slow", "token_rejected",
        # "outside_window", "duplicate", "deleted_channel"
        self.served: Counter[str] = Counter()
        self.arrivals: list[float] = []  # time.monotonic() of each GET, in arrival order

    def record_get(self, workspace_id: str) -> float:
        at = time.monotonic()
        with self._lock:
            self.gets[workspace_id] += 1
            self.arrivals.append(at)
        return at

    def total_gets(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def record(self, what: str, n: int = 1) -> None:
        with self._lock:
            self.served[what] += n

    def max_gets_in(self, window_s: float = 1.0) -> int:
        """Most GETs that arrived within any sliding window of `window_s` seconds (Bird's limit: one)."""
        with self._lock:
            arrivals = list(self.arrivals)
        best, first = 0, 0
        for last, at in enumerate(arrivals):
            while arrivals[first] <= at - window_s:
                first += 1
            best = max(best, last - first + 1)
        return best

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            gets, served = dict(self.gets), dict(self.served)
        return {
            "gets": gets,
            "gets_total": sum(gets.values()),
            "served_429": served.get("429", 0),
            "served_5xx": served.get("5xx", 0),
            "drops": served.get("drop", 0),
            "truncated": served.get("truncated", 0),
            "live_inserts": served.get("live_insert", 0),
            "invalid_json": served.get("invalid_json", 0),
            "slow": served.get("slow", 0),
            "tokens_rejected": served.get("token_rejected", 0),
            "outside_window": served.get("outside_window", 0),
            "duplicates": served.get("duplicate", 0),
            "deleted_channel_404s": served.get("deleted_channel", 0),
            "max_gets_per_second": self.max_gets_in(1.0),
        }
