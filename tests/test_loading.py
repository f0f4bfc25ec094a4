"""The warehouse feeder: days handed over while others land are loaded exactly as `load_days` loads them,
and a failed load is reported to the caller, never swallowed, without hiding the caller's own error.

Real parts throughout: days landed from the emulator over loopback into a Parquet lake under tmp_path, and a
real DuckDB warehouse.
"""

import asyncio
import datetime as dt
import time
from pathlib import Path

import pytest

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.server import RunningEmulator
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import RAW_MESSAGES, land_messages
from pipelines.lake import Lake
from pipelines.loading import LOAD_MIN_ROWS, MissingPartitionError, WarehouseFeeder, load_days
from warehouse.store import Warehouse

DAYS = [dt.date(2026, 1, 12), dt.date(2026, 1, 13), dt.date(2026, 1, 14)]


@pytest.fixture(scope="module")
def lake(emulator_module: RunningEmulator, tmp_path_factory: pytest.TempPathFactory) -> Lake:
    """The emulator's three days, landed once for the module."""
    root = tmp_path_factory.mktemp("landed")
    lake = Lake(root / "lake")

    async def land() -> None:
        settings = BirdSettings(
            access_key=emulator_module.access_key,
            workspace_id=emulator_module.workspace_id,
            api_url=emulator_module.base_url,
        )
        async with AsyncBirdClient(settings) as client:
            for day in DAYS:
                await land_messages(
                    client,
                    lake,
                    root / "staging",
                    workspace_id=emulator_module.workspace_id,
                    day=day,
                    settings=FetchSettings(initial_parts=2),
                )

    asyncio.run(land())
    return lake


def _rows(warehouse: Warehouse) -> list[tuple[object, ...]]:
    with warehouse.connect_readonly() as con:
        return con.execute("select * from messages order by id").fetchall()


def test_fed_days_load_as_load_days_loads_them(
    lake: Lake, emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    workspace_id = emulator_module.workspace_id
    fed, batch = Warehouse(tmp_path / "fed"), Warehouse(tmp_path / "batch")
    with WarehouseFeeder(lake, fed, RAW_MESSAGES) as feeder:
        for day in DAYS:
            feeder.submit(workspace_id, day, rows=100)
        results = feeder.close()
    expected = load_days(lake, batch, RAW_MESSAGES, {workspace_id: DAYS})
    assert sorted((r.start, r.n_rows) for r in results) == sorted((r.start, r.n_rows) for r in expected)
    assert sum(r.n_rows for r in results) > 0
    assert _rows(fed) == _rows(batch)


def test_enough_rows_start_a_load_before_the_feeder_closes(
    lake: Lake, emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    warehouse = Warehouse(tmp_path)
    with WarehouseFeeder(lake, warehouse, RAW_MESSAGES) as feeder:
        feeder.submit(emulator_module.workspace_id, DAYS[0], rows=LOAD_MIN_ROWS)
        deadline = time.monotonic() + 60
        while not warehouse.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warehouse.path.exists(), "a day of LOAD_MIN_ROWS rows is loaded without waiting for more"


def test_a_failed_load_reaches_the_caller(
    lake: Lake, emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    warehouse = Warehouse(tmp_path)
    feeder = WarehouseFeeder(lake, warehouse, RAW_MESSAGES)
    feeder.submit(emulator_module.workspace_id, dt.date(2025, 6, 1), rows=100)  # never landed
    with pytest.raises(MissingPartitionError):
        feeder.close()


def test_leaving_on_an_error_still_loads_what_was_handed_over(
    lake: Lake, emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    warehouse = Warehouse(tmp_path)
    with (
        pytest.raises(RuntimeError, match="paging failed"),
        WarehouseFeeder(lake, warehouse, RAW_MESSAGES) as feeder,
    ):
        feeder.submit(emulator_module.workspace_id, DAYS[0], rows=100)
        raise RuntimeError("paging failed")
    assert len(_rows(warehouse)) > 0


def test_the_callers_error_is_the_one_raised(
    lake: Lake, emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    with (
        pytest.raises(RuntimeError, match="paging failed"),
        WarehouseFeeder(lake, Warehouse(tmp_path), RAW_MESSAGES) as feeder,
    ):
        feeder.submit(emulator_module.workspace_id, dt.date(2025, 6, 1), rows=100)  # never landed: fails
        raise RuntimeError("paging failed")
