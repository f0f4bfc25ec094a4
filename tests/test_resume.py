"""A run killed mid-partition resumes from its checkpoint, and readers see the previous version throughout.

The killed run is a real OS process (SIGKILL); the emulator serves it over loopback from this process.
"""

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.server import RunningEmulator
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import RAW_MESSAGES, LandedPartition, land_messages
from pipelines.ingest.windows import Window
from pipelines.lake import Lake

DAY = dt.date(2026, 1, 13)
SETTINGS = {"page_size": 10, "spool_rows": 20, "initial_parts": 2, "leaf_concurrency": 2, "repair_rounds": 0}

LAND_SCRIPT = """
import asyncio, datetime as dt, os, sys
from pathlib import Path
from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.settings import BirdSettings
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import land_messages
from pipelines.lake import Lake

root = Path(sys.argv[1])
settings = BirdSettings.from_env()

async def main():
    async with AsyncBirdClient(settings) as client:
        await land_messages(
            client, Lake(root / "lake"), root / "staging", workspace_id=settings.workspace_id,
            day=dt.date.fromisoformat(sys.argv[2]), settings=FetchSettings(**eval(sys.argv[3])),
        )

asyncio.run(main())
"""


def _land(emulator: RunningEmulator, root: Path) -> tuple[LandedPartition, int]:
    settings = BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )

    async def go() -> tuple[LandedPartition, int]:
        async with AsyncBirdClient(settings) as client:
            landed = await land_messages(
                client,
                Lake(root / "lake"),
                root / "staging",
                workspace_id=emulator.workspace_id,
                day=DAY,
                settings=FetchSettings(**SETTINGS),
            )
            return landed, client.stats.requests

    return asyncio.run(go())


def _checkpointed_segments(root: Path) -> int:
    total = 0
    for path in (root / "staging").rglob("checkpoint.json"):
        with contextlib.suppress(OSError, ValueError):  # a checkpoint being replaced right now
            total += sum(len(leaf["segments"]) for leaf in json.loads(path.read_text())["leaves"])
    return total


def test_killed_run_resumes_and_the_old_version_stays_readable(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    lake = Lake(tmp_path / "lake")
    _, clean_requests = _land(emulator, tmp_path)  # version 1
    version_1 = lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY).collect()
    emulator.store.advance(emulator.store.now + dt.timedelta(days=2))  # statuses move on: version 2 differs
    emulator.faults.update({"latency_ms": 40})
    env = {
        **os.environ,
        "BIRD_API_URL": emulator.base_url,
        "BIRD_ACCESS_KEY": emulator.access_key,
        "BIRD_WORKSPACE_ID": emulator.workspace_id,
    }
    process = subprocess.Popen(
        [sys.executable, "-c", LAND_SCRIPT, str(tmp_path), DAY.isoformat(), repr(SETTINGS)], env=env
    )
    deadline = time.monotonic() + 60
    while _checkpointed_segments(tmp_path) < 3:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        # Readers see the whole previous version while the new one is being fetched.
        assert lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY).collect().equals(version_1)
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY).collect().equals(version_1)

    emulator.faults.update({"latency_ms": 0})
    landed, resumed_requests = _land(emulator, tmp_path)
    assert landed.stats.resumed_leaves >= 1
    assert resumed_requests < clean_requests
    window = Window.day(DAY)
    version_2 = lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY).collect()
    assert set(version_2["id"]) == emulator.store.ground_truth_ids(window.start, window.end)
    assert version_2["id"].is_unique().all()
    expected_status = {i: emulator.store.message(i)["status"] for i in version_2["id"]}
    assert dict(zip(version_2["id"], version_2["status"], strict=True)) == expected_status
    assert not version_2.equals(version_1)
    # No temporary file is left in the lake, and the staging area is gone.
    assert sorted(p.name for p in lake.partition_dir(RAW_MESSAGES, emulator.workspace_id, DAY).iterdir()) == [
        "data.parquet"
    ]
    assert not list((tmp_path / "staging").rglob("*.parquet"))
    assert pl.read_parquet(lake.partition_file(RAW_MESSAGES, emulator.workspace_id, DAY)).height == len(
        version_2
    )
