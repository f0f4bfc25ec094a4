"""The walking skeleton end to end through Dagster: emulator -> raw_messages -> messages in DuckDB.

Real Dagster runs recorded in a real instance under tmp_path, real HTTP, real Parquet and DuckDB files.
"""

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.backfill import missing_days, refresh_channels, run_backfill, use_instance
from pipelines.definitions import defs
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from pipelines.ingest.windows import Window

DAYS = [dt.date(2026, 1, 12), dt.date(2026, 1, 13), dt.date(2026, 1, 14)]
SEVEN_DAYS = DatasetSpec(seed=11, days=7, messages_per_day=150, end=dt.date(2026, 1, 15))


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BIRD_ETL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    return tmp_path


def _point_at(emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIRD_API_URL", emulator.base_url)
    monkeypatch.setenv("BIRD_ACCESS_KEY", emulator.access_key)
    monkeypatch.setenv("BIRD_WORKSPACE_ID", emulator.workspace_id)


def _warehouse_ids(data_dir: Path, day: dt.date) -> list[str]:
    window = Window.day(day)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute(
            "select id from messages where created_at >= ? and created_at < ?", [window.start, window.end]
        ).fetchall()
    return [row[0] for row in rows]


def _truth(emulator: RunningEmulator, day: dt.date) -> set[str]:
    window = Window.day(day)
    return emulator.store.ground_truth_ids(window.start, window.end)


def test_definitions_load() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {job.name for job in defs.resolve_all_job_defs()} >= {"ingest_messages", "refresh_channels"}


def test_skeleton_end_to_end(
    emulator: RunningEmulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(emulator, monkeypatch)
    instance = use_instance(data_dir)
    assert refresh_channels(instance) is None
    outcomes = run_backfill(instance, {emulator.workspace_id: DAYS}, concurrency=1)
    # One run covers the three days (a single-run backfill of the workspace's range).
    assert [(o.days, o.success) for o in outcomes] == [(tuple(DAYS), True)], [o.error for o in outcomes]
    for day in DAYS:
        ids = _warehouse_ids(data_dir, day)
        assert len(ids) == len(set(ids))
        assert set(ids) == _truth(emulator, day)
    # Every blocking check ran and passed, and the runs are in the instance the UI reads.
    evaluations = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [
            dg.AssetCheckKey(dg.AssetKey("raw_messages"), name)
            for name in ("ids_unique", "row_count_matches_api")
        ]
    )
    assert len(evaluations) == 2
    assert missing_days(instance, emulator.workspace_id, [*DAYS, dt.date(2026, 1, 15)]) == [
        dt.date(2026, 1, 15)
    ]
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        platforms = {row[0] for row in con.execute("select distinct platform from messages").fetchall()}
    assert None not in platforms and "sms-messagebird" in platforms


def test_rematerializing_a_partition_changes_nothing(
    emulator: RunningEmulator, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _point_at(emulator, monkeypatch)
    instance = use_instance(data_dir)
    refresh_channels(instance)
    run_backfill(instance, {emulator.workspace_id: DAYS[:1]}, concurrency=1)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        before = con.execute("select * from messages order by id").fetchall()
    run_backfill(instance, {emulator.workspace_id: DAYS[:1]}, concurrency=1)
    with duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True) as con:
        after = con.execute("select * from messages order by id").fetchall()
    assert before == after


def test_seven_day_backfill_under_faults_is_exact(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """20% 429s, 5% 5xx, 2% drops, live inserts: exactly the emulator's ids, in worker processes."""
    store = MessageStore.generate(SEVEN_DAYS, now=dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC))
    with run_emulator(store=store) as emulator:
        _point_at(emulator, monkeypatch)
        monkeypatch.setenv("BIRD_RATE_LIMIT_PER_S", "200")
        instance = use_instance(data_dir)
        assert refresh_channels(instance) is None
        emulator.faults.update(
            {
                "error_429_rate": 0.2,
                "error_5xx_rate": 0.05,
                "drop_connection_rate": 0.02,
                "live_inserts_per_page": 1,
                "seed": 5,
            }
        )
        days = [SEVEN_DAYS.start.date() + dt.timedelta(days=i) for i in range(7)]
        outcomes = run_backfill(instance, {emulator.workspace_id: days}, concurrency=2)
        emulator.faults.update({"live_inserts_per_page": 0})
        assert all(o.success for o in outcomes), [o.error for o in outcomes]
        served = emulator.stats.to_dict()
        assert served["served_429"] > 0 and served["served_5xx"] > 0 and served["drops"] > 0
        for day in days:
            ids = _warehouse_ids(data_dir, day)
            assert len(ids) == len(set(ids)), day
            assert set(ids) == _truth(emulator, day), day


def test_two_backfills_share_one_request_budget(tmp_path: Path) -> None:
    """Two `bird-etl backfill` processes on one workspace together stay within its configured budget."""
    store = MessageStore.generate(SEVEN_DAYS, now=dt.datetime(2026, 1, 15, 6, tzinfo=dt.UTC))
    budget = 20
    with run_emulator(store=store) as emulator:
        env = {
            **os.environ,
            "BIRD_API_URL": emulator.base_url,
            "BIRD_ACCESS_KEY": emulator.access_key,
            "BIRD_WORKSPACE_ID": emulator.workspace_id,
            "BIRD_RATE_LIMIT_PER_S": str(budget),
        }
        commands = [
            [
                sys.executable,
                "-m",
                "pipelines.cli",
                "--data-dir",
                str(tmp_path),
                "backfill",
                "--start",
                start,
                "--end",
                end,
                "--concurrency",
                "1",
            ]
            for start, end in (("2026-01-08", "2026-01-11"), ("2026-01-12", "2026-01-14"))
        ]
        processes = [
            subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in commands
        ]
        outputs = [p.communicate(timeout=240)[0].decode() for p in processes]
        assert [p.returncode for p in processes] == [0, 0], outputs
        stats = emulator.stats.to_dict()
    assert stats["gets_total"] > 3 * budget  # long enough for the limit to matter
    # Arrivals are timed at the server on a machine busy with other tests: a backfill process paused for a
    # tenth of a second sends its queued requests together, a few more in one second than admitted. Over
    # three seconds that jitter is small beside the budget, and two processes not sharing it would send twice.
    assert emulator.stats.max_gets_in(3.0) <= 3 * budget, stats
    assert stats["served_429"] == 0
