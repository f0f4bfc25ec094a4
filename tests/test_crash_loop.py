"""SIGKILL at any point of a land + load run loses nothing, leaves readers whole files and leaves no litter.

Twenty times over, a real OS process archives one day (paging into spool files -> the Parquet partition ->
the DuckDB load and publish) against the emulator, and is killed with SIGKILL at a random moment of a chosen
phase. After each kill every published file must still be readable (each `data.parquet`, and
`warehouse.duckdb` read-only); the next run (in this process) must finish with exactly the emulator's ground
truth in the lake and the warehouse, and leave no temporary file (`.*.tmp`) anywhere under the data dir.
With BIRD_ETL_WRITE_RELIABILITY=1 the figures go to docs/reliability.md.
"""

import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from pipelines.ingest.channels import CHANNELS, channels_frame, scan_channels
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import RAW_MESSAGES, land_messages
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from tests.conftest import EMULATOR_NOW
from tests.reliability_report import markdown_table, publish_section
from transforms.messages import flatten_messages
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 13)
KILLS = 20
# The phase to kill in, and how long after it starts: a uniform draw up to about the phase's length.
KILL_WINDOWS = {"paging": 0.4, "writing": 0.02, "loading": 0.5}
SPEC = DatasetSpec(seed=7, days=1, messages_per_day=150, end=DAY + dt.timedelta(days=1))
FETCH = FetchSettings(page_size=10, spool_rows=40, initial_parts=4, leaf_concurrency=4, repair_rounds=0)
REPO = Path(__file__).resolve().parents[1]

SCRIPT = """
import asyncio, contextlib, datetime as dt, sys
from pathlib import Path
from pipelines.bird.settings import BirdSettings
from pipelines.lake import Lake
from tests.test_crash_loop import archive_day

def announce(phase):
    print(phase, flush=True)

class AnnouncingLake(Lake):
    @contextlib.contextmanager
    def write_partition(self, *args, **kwargs):
        announce("writing")
        with super().write_partition(*args, **kwargs) as writer:
            yield writer

root = Path(sys.argv[1])
announce("ready")
sys.stdin.readline()  # imports done ahead of time: go
lake = AnnouncingLake(root / "lake")
asyncio.run(archive_day(BirdSettings.from_env(), root, dt.date.fromisoformat(sys.argv[2]), lake, announce))
"""


def _client(settings: BirdSettings) -> AsyncBirdClient:
    return AsyncBirdClient(
        settings, retry=RetryPolicy(max_attempts=5, initial=0.01, maximum=0.1, jitter=0.01)
    )


async def refresh_channels(settings: BirdSettings, root: Path) -> None:
    """The channel dimension, in the lake and the warehouse (done once, before the loop)."""
    async with _client(settings) as client:
        channels = channels_frame(await client.list_channels(), settings.workspace_id)
    Lake(root / "lake").write_snapshot(CHANNELS, settings.workspace_id, channels.to_arrow())
    Warehouse(root).load_channels(channels)


async def archive_day(
    settings: BirdSettings, root: Path, day: dt.date, lake: Lake, announce: Callable[[str], None]
) -> None:
    """What a backfill run does for one day, without Dagster: land, flatten, load."""
    workspace_id = settings.workspace_id
    announce("paging")
    async with _client(settings) as client:
        await land_messages(
            client, lake, root / "staging", workspace_id=workspace_id, day=day, settings=FETCH
        )
    announce("loading")
    window = Window.day(day)
    raw = lake.scan_partition(RAW_MESSAGES, workspace_id, day)
    assert raw is not None
    flat = flatten_messages(raw, scan_channels(lake, workspace_id)).collect()
    Warehouse(root).load_messages(
        workspace_id=workspace_id, start=window.start, end=window.end, messages=flat
    )
    announce("done")


class _Run:
    """A started archiving process that has done its imports and waits for `go`; its phase markers."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(root), DAY.isoformat()],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.phases: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.phases.append(line.strip())
                self._changed.notify_all()
        with self._changed:
            self.phases.append("exited")
            self._changed.notify_all()

    def wait_for(self, phase: str, timeout: float = 60.0) -> None:
        with self._changed:
            reached = self._changed.wait_for(
                lambda: phase in self.phases or "exited" in self.phases, timeout=timeout
            )
        assert reached, f"no {phase!r} after {timeout} s: {self.phases}"

    def go(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("go\n")
        self.process.stdin.flush()

    def kill(self) -> str:
        """SIGKILL now; the last phase announced (`starting` before any, `done`/`exited` if it ended)."""
        with self._changed:
            last = self.phases[-1] if self.phases else "starting"
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return last


def _readers_see_whole_files(root: Path) -> None:
    """What an analyst could open right after the kill: every partition file and the warehouse snapshot."""
    for path in (root / "lake").rglob("data.parquet"):
        pq.read_table(path)
    warehouse = Warehouse(root)
    if warehouse.path.exists():
        with contextlib.closing(warehouse.connect_readonly()) as con:
            con.execute("select count(*) from messages").fetchone()


def _warehouse_ids(root: Path, day: dt.date) -> list[str]:
    window = Window.day(day)
    with contextlib.closing(Warehouse(root).connect_readonly()) as con:
        rows = con.execute(
            "select id from messages where created_at >= ? and created_at < ?", [window.start, window.end]
        ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    with run_emulator(store=MessageStore.generate(SPEC, now=EMULATOR_NOW)) as running:
        yield running


@pytest.mark.slow
def test_twenty_sigkills_at_random_points_lose_and_leave_nothing(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    settings = BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )
    env = {
        **os.environ,
        "BIRD_API_URL": emulator.base_url,
        "BIRD_ACCESS_KEY": emulator.access_key,
        "BIRD_WORKSPACE_ID": emulator.workspace_id,
        "PYTHONPATH": str(REPO),
    }
    window = Window.day(DAY)
    truth = emulator.store.ground_truth_ids(window.start, window.end)
    lake = Lake(tmp_path / "lake")
    asyncio.run(refresh_channels(settings, tmp_path))
    emulator.faults.update({"latency_ms": 10})  # paging lasts long enough to be hit
    rng = random.Random(20)
    killed_in: Counter[str] = Counter()
    started = time.perf_counter()
    upcoming = _Run(tmp_path, env)
    for kill in range(KILLS):
        run, target = upcoming, list(KILL_WINDOWS)[kill % len(KILL_WINDOWS)]
        run.wait_for("ready")
        run.go()
        upcoming = _Run(tmp_path, env)  # the next one imports while this one works
        run.wait_for(target)
        time.sleep(rng.uniform(0, KILL_WINDOWS[target]))
        killed_in[run.kill()] += 1

        _readers_see_whole_files(tmp_path)
        asyncio.run(archive_day(settings, tmp_path, DAY, lake, lambda _phase: None))
        landed = lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY)
        assert landed is not None
        ids = landed.collect()["id"]
        assert ids.is_unique().all() and set(ids) == truth, f"kill {kill} in {target}"
        in_warehouse = _warehouse_ids(tmp_path, DAY)
        assert len(in_warehouse) == len(set(in_warehouse)) and set(in_warehouse) == truth
        assert not list(tmp_path.rglob(".*.tmp")), f"temporary files left after kill {kill}"
        assert not list((tmp_path / "staging").rglob("*.parquet"))
    upcoming.kill()
    seconds = time.perf_counter() - started
    assert sum(n for phase, n in killed_in.items() if phase in KILL_WINDOWS) >= KILLS // 2
    rows = [[phase, killed_in.get(phase, 0)] for phase in (*KILL_WINDOWS, "done")]
    publish_section(
        "crash-loop",
        markdown_table(["phase at SIGKILL", "kills"], rows)
        + f"\n\n{KILLS} kills; after each, every published file was readable, and the re-run ended with"
        f" exactly the {len(truth)} messages of the emulator in the lake and the warehouse and no temporary"
        f" file left; {seconds:.0f} s in all.",
    )
