"""One request budget per Bird workspace, shared by every run and process that reads it.

Bird limits GETs per workspace (50/s, shared with everything else that reads the workspace), so the budget
cannot live in one client: concurrent Dagster runs in separate processes must split it. The state is a tiny
SQLite file (WAL, every change under `BEGIN IMMEDIATE`), one row per workspace.

Each request first reserves the next slot of an evenly spaced schedule (GCRA without burst: the row's
"theoretical arrival time" moves on by `1/rate`), which queues waiters fairly across processes, then sleeps
until its slot. Before it starts, it also checks the starts of the last second (kept in the row): fewer than
the budget allows in one second, or it waits for the oldest to age out. So no 1-second window ever holds
more starts than the budget, across all processes, and a request that woke late (a busy event loop) is
caught up as soon as the window has room, instead of pushing every later start back: the budget is used,
not lost to lateness. The budget is ARRIVAL_MARGIN under the configured rate: Bird counts requests as they
arrive in a sliding second, and a request admitted on time can still arrive a little late, right behind the
next one. A 429 halves the effective rate for everyone (at most once per cooldown, so one burst of 429s counts
once); the rate then climbs back by a quarter of the target per second: a stray 429 costs about a second
of half the budget, while 429s that keep coming (another client of the workspace using its share) hold the
rate down.
"""

from __future__ import annotations

import asyncio
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final, NamedTuple

import orjson

STATE_FILE_NAME: Final = "bird-ratelimit.sqlite3"
_WINDOW_S: Final = 1.0  # Bird's limits are per second
_MIN_SLEEP_S: Final = 0.0005
# Share of the budget left unused as slack for requests that arrive later than they were admitted: between
# its admission and its first byte on the wire a request waits for its turn on the event loop, measured at
# 1 ms typically, 13-29 ms at the 99th percentile and up to 58 ms in a CPU-bound backfill, enough to put 50
# sends into a second whose admissions were 47 (5% under Bird's 50/s: 429s in 2 runs out of 3; at 8%, none
# in 3 runs).
ARRIVAL_MARGIN: Final = 0.08
# The table's name carries its layout: a state file of an older layout is left alone, not misread.
_CREATE_TABLE: Final = """
create table if not exists request_window (
    workspace_id text primary key,
    tat real not null,             -- next free slot (epoch s): where the next reservation goes
    starts text not null,          -- JSON list of the admitted starts of the last second (epoch s), in order
    rate real not null,            -- effective requests/s right after the last change
    rate_changed_at real not null, -- when `rate` was set; recovery counts from here
    throttled_at real              -- last time a 429 lowered the rate
)
"""


class _Budget(NamedTuple):
    tat: float
    starts: list[float]
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
        recovery_share_per_s: float = 0.25,
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
                "update request_window set rate = ?, rate_changed_at = ?, throttled_at = ?"
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
            slot = max(budget.tat, now)
            db.execute(
                "update request_window set tat = ? where workspace_id = ?",
                (slot + 1 / self._budget_per_s(budget, now), self.workspace_id),
            )
            return slot

    def _admit(self, slot: float) -> float:
        """0 to start now (the slot has come, the last second holds room), else the seconds to wait."""
        early = slot - self._clock()
        if early > 0:
            return early
        with self._transaction() as (db, now, budget):
            recent = [start for start in budget.starts if now - _WINDOW_S < start <= now]
            allowed = max(1, math.floor(self._budget_per_s(budget, now) * _WINDOW_S))
            if len(recent) >= allowed:
                return recent[-allowed] + _WINDOW_S - now  # until the start that fills the window ages out
            db.execute(
                "update request_window set starts = ? where workspace_id = ?",
                (orjson.dumps([*recent, now]), self.workspace_id),
            )
            return 0.0

    def _budget_per_s(self, budget: _Budget, now: float) -> float:
        """Starts per second allowed now: the effective rate, less the arrival margin."""
        return self._effective_rate(budget, now) * (1 - ARRIVAL_MARGIN)

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
                    "select tat, starts, rate, rate_changed_at, throttled_at from request_window"
                    " where workspace_id = ?",
                    (self.workspace_id,),
                ).fetchone()
                if row is None:
                    row = (now, b"[]", self.rate_per_s, now, None)
                    db.execute(
                        "insert into request_window (workspace_id, tat, starts, rate, rate_changed_at)"
                        " values (?, ?, ?, ?, ?)",
                        (self.workspace_id, *row[:4]),
                    )
                budget = _Budget(row[0], orjson.loads(row[1]), *row[2:])
                if budget.starts and budget.starts[-1] > now:  # the wall clock stepped back: start afresh
                    budget = budget._replace(tat=now, starts=[])
                yield db, now, budget
            except BaseException:
                db.execute("rollback")
                raise
            db.execute("commit")

    def _connection(self) -> sqlite3.Connection:
        """The open connection, reopened after a fork (a SQLite handle must not cross processes)."""
        if self._db is None or self._db_pid != os.getpid():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            _retry_while_locked(lambda: db.execute("pragma journal_mode=wal"))
            # No fsync, not even when the write-ahead log is checkpointed: the state is worth seconds (a lost
            # write only restarts the schedule), and an fsync queued behind a backfill's own writes held
            # the event loop for 150 ms, bunching requests into one second of Bird's limit.
            db.execute("pragma synchronous=off")
            db.execute(_CREATE_TABLE)
            self._db, self._db_pid = db, os.getpid()
        return self._db


def _retry_while_locked(statement: Callable[[], object], *, attempts: int = 200) -> None:
    """Run `statement`, again while the database is locked. Processes opening a new state file at once race
    to switch it to WAL, and SQLite answers that race with 'database is locked' at once instead of waiting
    for its busy timeout."""
    for attempt in range(attempts):
        try:
            statement()
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
