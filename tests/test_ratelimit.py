"""The shared per-workspace request budget.

Protects: two OS processes sharing one state directory never start more than `rate_per_s` requests in any
1-second window between them (one uses the sync path, the other the async path with concurrent coroutines);
a 429 (`on_throttled`) halves the rate every process sees, once per cooldown and not below the floor, the rate
climbs back to the target over time, and the slower rate really spaces admissions out; a wall clock that
steps back does not stall the budget; workspaces do not share a budget; starts keep a margin under the
budget, so requests arriving late still fit Bird's sliding second; requests woken late by a busy event loop
are caught up within the second, so lateness does not cost budget.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.bird.ratelimit import ARRIVAL_MARGIN, SharedRateLimiter

WS = "6f1c2a34-9f0e-4a4e-9d51-3f0c1b2a7e10"
OTHER_WS = "0b9d3e4f-1a2b-4c5d-8e9f-a0b1c2d3e4f5"

# Each child process takes slots until `stop`, recording the wall-clock time each request may start.
_WORKER = """
import asyncio, json, sys, time
from pathlib import Path
from pipelines.bird.ratelimit import SharedRateLimiter

state_dir, out, start, stop, mode, workspace_id = sys.argv[1:7]
start, stop = float(start), float(stop)
limiter = SharedRateLimiter(Path(state_dir), workspace_id, rate_per_s=20.0)
starts = []
time.sleep(max(0.0, start - time.time()))
if mode == "sync":
    while time.time() < stop:
        limiter.acquire_sync()
        starts.append(time.time())
else:
    async def worker():
        while time.time() < stop:
            await limiter.acquire()
            starts.append(time.time())
    async def main():
        await asyncio.gather(*(worker() for _ in range(2)))
    asyncio.run(main())
Path(out).write_text(json.dumps(starts))
"""


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def max_in_any_second(starts: list[float]) -> int:
    """The most starts inside any half-open 1-second window [t, t + 1)."""
    ordered = sorted(starts)
    return max(bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered))


def test_two_processes_never_exceed_the_shared_rate(tmp_path: Path) -> None:
    start = time.time() + 1.5  # both children are importing by then
    stop = start + 3.0
    outputs = [tmp_path / "sync.json", tmp_path / "async.json"]
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                str(tmp_path / "state"),
                str(out),
                str(start),
                str(stop),
                mode,
                WS,
            ]
        )
        for out, mode in zip(outputs, ("sync", "async"), strict=True)
    ]
    for child in children:
        assert child.wait(timeout=60) == 0
    per_process = [json.loads(out.read_text()) for out in outputs]
    starts = [t for process_starts in per_process for t in process_starts]

    assert max_in_any_second(starts) <= 20
    assert all(len(process_starts) >= 10 for process_starts in per_process), "both processes got a fair share"
    assert len(starts) >= 30, "the budget was used, not just blocked"


def test_throttling_halves_the_shared_rate_then_it_recovers(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    limiter = SharedRateLimiter(tmp_path, WS, rate_per_s=20.0, floor_per_s=6.0, clock=clock)
    other_process = SharedRateLimiter(tmp_path, WS, rate_per_s=20.0, floor_per_s=6.0, clock=clock)
    assert limiter.current_rate() == 20.0

    limiter.on_throttled()
    assert other_process.current_rate() == 10.0
    other_process.on_throttled()  # the same burst of 429s counts once
    assert limiter.current_rate() == 10.0

    clock.now += 1.0  # +25% of the target per second
    assert limiter.current_rate() == pytest.approx(15.0)
    other_process.on_throttled()
    assert limiter.current_rate() == pytest.approx(7.5)

    for _ in range(10):  # a 429 every second: halved more than it recovers, down to the floor
        clock.now += 1.0
        limiter.on_throttled()
    assert limiter.current_rate() == 6.0

    clock.now += 1.0
    assert limiter.current_rate() == pytest.approx(11.0)
    clock.now += 100.0
    assert limiter.current_rate() == 20.0  # never above the target
    assert SharedRateLimiter(tmp_path, OTHER_WS, rate_per_s=20.0, clock=clock).current_rate() == 20.0


def test_a_throttled_rate_spaces_admissions_further_apart(tmp_path: Path) -> None:
    limiter = SharedRateLimiter(tmp_path, WS, rate_per_s=40.0)
    limiter.on_throttled()  # 40/s -> 20/s, recovering by 2/s each second
    starts = []
    for _ in range(11):
        limiter.acquire_sync()
        starts.append(time.monotonic())
    # Ten gaps at no more than ~21/s: a lower bound, which load can only make larger.
    assert starts[-1] - starts[0] >= 10 / 21.5


@pytest.mark.timeout(20)
def test_a_wall_clock_stepping_back_does_not_stall_the_budget(tmp_path: Path) -> None:
    clock = FakeClock(1000.0)
    limiter = SharedRateLimiter(tmp_path, WS, rate_per_s=20.0, clock=clock)
    limiter.acquire_sync()
    clock.now = 400.0  # NTP stepped the clock back ten minutes
    limiter.acquire_sync()
    limiter.close()


def test_admissions_leave_a_margin_under_the_budget(tmp_path: Path) -> None:
    """Bird counts arrivals in a sliding second: at exactly its limit, a request that leaves a little late
    (busy event loop) lands in the same second as the next one's, so starts are spaced for less."""
    limiter = SharedRateLimiter(tmp_path, WS, rate_per_s=40.0)
    starts = []
    for _ in range(21):
        limiter.acquire_sync()
        starts.append(time.monotonic())
    # Twenty gaps of 1 / (40 * (1 - margin)) s in all; without the margin they would take 0.500 s.
    assert starts[-1] - starts[0] >= 20 / (40 * (1 - ARRIVAL_MARGIN)) - 0.002


def test_late_starts_are_caught_up_within_the_window(tmp_path: Path) -> None:
    """A busy event loop wakes requests late, a little each time: the requests behind may then start as soon
    as the last second holds room, so lateness does not cost budget, and no second holds more than the
    rate. (A schedule that only ever moves later loses every delay: here about a third of the budget.)"""
    limiter = SharedRateLimiter(tmp_path, WS, rate_per_s=20.0)
    starts: list[float] = []
    began = time.time()

    async def worker() -> None:
        while time.time() < began + 3.0:
            await limiter.acquire()
            starts.append(time.time())

    async def busy_loop() -> None:
        while time.time() < began + 3.0:
            time.sleep(0.03)  # CPU work (parsing a page, say) holds the event loop: waiters wake late
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(busy_loop(), *(worker() for _ in range(8)))

    asyncio.run(main())
    assert max_in_any_second(starts) <= 20
    within = [start for start in starts if start < began + 3.0]
    assert len(within) >= 3 * 20 * (1 - ARRIVAL_MARGIN) - 3, len(within)  # 57 in 3 s of a 19/s budget
