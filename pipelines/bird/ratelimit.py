"""One request budget per Bird workspace, shared by every run and process that reads it.

Bird limits GETs per workspace (50/s, shared with everything else that reads the workspace), so the budget
cannot live in one client: concurrent Dagster runs in separate processes must split it. The state is a tiny
SQLite file (WAL, every change under `BEGIN IMMEDIATE`), one row per workspace.

GCRA with evenly spaced slots and no burst: each request first reserves the next slot (the row's "theoretical
arrival time" moves on by `1/rate`), which queues waiters fairly across processes, then sleeps until its slot.
Before it starts it also checks the last recorded start is at least `1/rate` ago, so a waiter that woke late
cannot bunch up with the next one: starts are at least `1/rate` apart across all processes, and no 1-second
window holds more than `rate` of them. The slots are spaced for ARRIVAL_MARGIN less than the budget: Bird
counts requests as they arrive in a sliding second, and a request admitted on time can still leave late (a
busy event loop, a TLS write) and arrive right behind the next one; at exactly 50/s against Bird's 50/s, such
jitter alone caused 429s in the benchmark. A 429 halves the effective rate for everyone (at most once per
cooldown, so one burst of 429s counts once); the rate then climbs back by a share of the target per second.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NamedTuple

STATE_FILE_NAME: Final = "bird-ratelimit.sqlite3"
_MIN_SLEEP_S: Final = 0.0005
# Share of the budget left unused as slack for requests that arrive later than they were admitted.
ARRIVAL_MARGIN: Final = 0.05
_CREATE_TABLE: Final = """
create table if not exists request_budget (
    workspace_id text primary key,
    tat real not null,             -- next free slot (epoch s): where the next reservation goes
    last_start real not null,      -- when the last admitted request started
    rate real not null,            -- effective requests/s right after the last change
    rate_changed_at real not null, -- when `rate` was set; recovery counts from here
    throttled_at real              -- last time a 429 lowered the rate
)
"""


class _Budget(NamedTuple):
    tat: float
    last_start: float
    rate: float
    rate_changed_at: float
    throttled_at: float | None


class SharedRateLimiter:
    """A cross-process request budget of `rate_per_s` for one workspace, with state under `state_dir`."""

    def __init__(
        self,
        state_dir: Path,
        workspace_id: str,
        rate_per_s: float = 40.0,
        *,
        floor_per_s: float = 1.0,
        recovery_share_per_s: float = 0.05,
        throttle_cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if rate_per_s <= 0 or floor_per_s <= 0 or recovery_share_per_s <= 0:
            raise ValueError("rate_per_s, floor_per_s and recovery_share_per_s must be positive")
        self.path = Path(state_dir) / STATE_FILE_NAME
        self.workspace_id = workspace_id
        self.rate_per_s = rate_per_s
        self.floor_per_s = min(floor_per_s, rate_per_s)
        self.recovery_share_per_s = recovery_share_per_s
        self.throttle_cooldown_s = throttle_cooldown_s
        self._clock = clock  # wall clock: it is the one all processes share
        self._db: sqlite3.Connection | None = None
        self._db_pid = 0
        self._db_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SharedRateLimiter({str(self.path)!r}, {self.workspace_id!r}, rate_per_s={self.rate_per_s})"

    async def acquire(self) -> None:
        """Wait until one request may start."""
        slot = self._reserve()
        while (wait := self._admit(slot)) > 0:
            await asyncio.sleep(max(wait, _MIN_SLEEP_S))

    def acquire_sync(self) -> None:
        """Blocking `acquire` for sync callers."""
        slot = self._reserve()
        while (wait := self._admit(slot)) > 0:
            time.sleep(max(wait, _MIN_SLEEP_S))

    def on_throttled(self) -> None:
        """Bird answered 429: halve the shared effective rate (not below the floor), once per cooldown."""
        with self._transaction() as (db, now, budget):
            if budget.throttled_at is not None and now - budget.throttled_at < self.throttle_cooldown_s:
                return
            lowered = max(self.floor_per_s, self._effective_rate(budget, now) / 2)
            db.execute(
                "update request_budget set rate = ?, rate_changed_at = ?, throttled_at = ?"
                " where workspace_id = ?",
                (lowered, now, now, self.workspace_id),
            )

    def current_rate(self) -> float:
        """The effective requests/s now, after throttling and recovery."""
        with self._transaction() as (_, now, budget):
            return self._effective_rate(budget, now)

    def close(self) -> None:
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _reserve(self) -> float:
        """Take the next free slot (an epoch time) for one request."""
        with self._transaction() as (db, now, budget):
            if budget.last_start > now:  # the wall clock stepped back: restart the schedule from now
                budget = budget._replace(tat=now, last_start=now - 1 / self.floor_per_s)
            slot = max(budget.tat, now)
            db.execute(
                "update request_budget set tat = ?, last_start = ? where workspace_id = ?",
                (slot + self._spacing(budget, now), budget.last_start, self.workspace_id),
            )
            return slot

    def _admit(self, slot: float) -> float:
        """0 to start now (the slot has come, the last start is 1/rate ago), else the seconds to wait."""
        early = slot - self._clock()
        if early > 0:
            return early
        with self._transaction() as (db, now, budget):
            wait = budget.last_start + self._spacing(budget, now) - now
            if wait > 0:
                return wait
            db.execute(
                "update request_budget set last_start = ? where workspace_id = ?", (now, self.workspace_id)
            )
            return 0.0

    def _spacing(self, budget: _Budget, now: float) -> float:
        """Seconds between two starts: the effective rate, less the arrival margin."""
        return 1 / (self._effective_rate(budget, now) * (1 - ARRIVAL_MARGIN))

    def _effective_rate(self, budget: _Budget, now: float) -> float:
        elapsed = max(0.0, now - budget.rate_changed_at)
        recovered = budget.rate + self.recovery_share_per_s * self.rate_per_s * elapsed
        return max(self.floor_per_s, min(self.rate_per_s, recovered))

    @contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, float, _Budget]]:
        """This workspace's row under `BEGIN IMMEDIATE`: locked before it is read, so no lost update."""
        with self._db_lock:
            db = self._connection()
            db.execute("begin immediate")
            try:
                now = self._clock()
                row = db.execute(
                    "select tat, last_start, rate, rate_changed_at, throttled_at from request_budget"
                    " where workspace_id = ?",
                    (self.workspace_id,),
                ).fetchone()
                if row is None:
                    row = (now, 0.0, self.rate_per_s, now, None)
                    db.execute(
                        "insert into request_budget (workspace_id, tat, last_start, rate, rate_changed_at)"
                        " values (?, ?, ?, ?, ?)",
                        (self.workspace_id, *row[:4]),
                    )
                yield db, now, _Budget(*row)
            except BaseException:
                db.execute("rollback")
                raise
            db.execute("commit")

    def _connection(self) -> sqlite3.Connection:
        """The open connection, reopened after a fork (a SQLite handle must not cross processes)."""
        if self._db is None or self._db_pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")
            db.execute(_CREATE_TABLE)
            self._db, self._db_pid = db, os.getpid()
        return self._db
