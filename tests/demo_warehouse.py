"""One demo warehouse per test session, built by the real pipeline (`bird-etl backfill --emulator`).

Test modules load these fixtures with `pytest_plugins = ["tests.demo_warehouse"]`.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from filelock import FileLock

# The emulator's dataset ends today (UTC), so the last two whole days are archived: small, yet enough for a
# report day with a previous day to compare against.
DEMO_DAYS = 2


@pytest.fixture(scope="session")
def demo_days() -> list[dt.date]:
    """The UTC days the demo warehouse holds, oldest first."""
    today = dt.datetime.now(dt.UTC).date()
    return [today - dt.timedelta(days=DEMO_DAYS - i) for i in range(DEMO_DAYS)]


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str, demo_days: list[dt.date]) -> Path:
    """The data directory of the demo warehouse, shared by the xdist workers of this session."""
    base = tmp_path_factory.getbasetemp()
    root = base if worker_id == "master" else base.parent
    data_dir = root / "demo-warehouse"
    ready = data_dir / "READY"
    with FileLock(str(root / "demo-warehouse.lock")):
        if not ready.exists():
            days = demo_days
            env = {k: v for k, v in os.environ.items() if not k.startswith("BIRD_")}
            command = [
                str(Path(sys.executable).with_name("bird-etl")),
                "--data-dir",
                str(data_dir),
                "backfill",
                "--start",
                days[0].isoformat(),
                "--end",
                days[-1].isoformat(),
                "--emulator",
            ]
            result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
            if result.returncode != 0:
                pytest.fail(
                    f"building the demo warehouse failed: {result.stdout[-2000:]} {result.stderr[-2000:]}"
                )
            ready.touch()
    return data_dir
