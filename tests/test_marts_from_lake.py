"""The marts agree with an independent computation straight from the raw Parquet lake.

The pipeline runs for real (emulator -> Dagster -> lake -> warehouse); the expected numbers are computed by
DuckDB from the lake's raw JSON alone, without our transforms.
"""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.backfill import refresh_channels, run_backfill, use_instance
from pipelines.emulator.server import RunningEmulator
from pipelines.reporting import rebuild_warehouse

DAYS = [dt.date(2026, 1, 13), dt.date(2026, 1, 14)]
REBUILT = ("messages", "interactions", "delivery_daily", "failure_breakdown", "interaction_daily")

FROM_LAKE = """
with raw as (
    select
        cast(created_at at time zone 'UTC' as date) as day,
        channel_id,
        direction,
        status,
        try_cast(json_extract_string(raw, '$.failure.code') as integer) as failure_code,
        json_extract_string(raw, '$.failure.source.name') as failure_source_name
    from read_parquet($lake)
)
select day, channel_id, direction,
    count(*) as n_messages,
    count(*) filter (where status = 'delivered') as n_delivered,
    count(*) filter (where status in ('sending_failed', 'delivery_failed', 'rejected')) as n_failed,
    count(*) filter (where status in ('accepted', 'processing', 'scheduled', 'sent')) as n_pending
from raw
group by all
order by all
"""
FROM_MART = """
select day, channel_id, direction,
    sum(n_messages), sum(n_delivered), sum(n_failed), sum(n_pending)
from delivery_daily
group by all
order by all
"""
FAILURES_FROM_LAKE = """
select cast(created_at at time zone 'UTC' as date) as day, channel_id,
    try_cast(json_extract_string(raw, '$.failure.code') as integer) as failure_code,
    json_extract_string(raw, '$.failure.source.name') as failure_source_name,
    count(*) as n_failed
from read_parquet($lake)
where status in ('sending_failed', 'delivery_failed', 'rejected')
group by all
order by all nulls first
"""
FAILURES_FROM_MART = """
select day, channel_id, failure_code, failure_source_name, sum(n_failed)
from failure_breakdown
group by all
order by all nulls first
"""


def _contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    return {table: con.execute(f"select * from {table} order by all").fetchall() for table in REBUILT}


def test_marts_equal_an_independent_computation_from_raw_parquet(
    emulator: RunningEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIRD_ETL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BIRD_API_URL", emulator.base_url)
    monkeypatch.setenv("BIRD_ACCESS_KEY", emulator.access_key)
    monkeypatch.setenv("BIRD_WORKSPACE_ID", emulator.workspace_id)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    instance = use_instance(tmp_path)
    assert refresh_channels(instance) is None
    assert all(o.success for o in run_backfill(instance, {emulator.workspace_id: DAYS}))
    lake = str(tmp_path / "lake" / "raw_messages" / "**" / "data.parquet")
    with (
        duckdb.connect() as lake_db,
        duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as mart_db,
    ):
        expected = lake_db.execute(FROM_LAKE, {"lake": lake}).fetchall()
        actual = mart_db.execute(FROM_MART).fetchall()
        assert len(expected) > 10
        assert [tuple(row) for row in actual] == [tuple(row) for row in expected]
        failures = lake_db.execute(FAILURES_FROM_LAKE, {"lake": lake}).fetchall()
        assert sum(row[-1] for row in failures) > 5
        assert [tuple(r) for r in mart_db.execute(FAILURES_FROM_MART).fetchall()] == [
            tuple(r) for r in failures
        ]
        before = _contents(mart_db)

    # `bird-etl rebuild` recreates the same warehouse from the lake alone, without calling the API.
    (tmp_path / "warehouse.duckdb").unlink()
    shutil.rmtree(tmp_path / ".warehouse")
    assert rebuild_warehouse(tmp_path) == 2 * len(DAYS)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as rebuilt:
        after = _contents(rebuilt)
    for table in REBUILT:
        rows_before, rows_after = set(map(repr, before[table])), set(map(repr, after[table]))
        assert rows_before == rows_after, (
            table,
            sorted(rows_before - rows_after)[:2],
            sorted(rows_after - rows_before)[:2],
        )
    assert before["interactions"]
