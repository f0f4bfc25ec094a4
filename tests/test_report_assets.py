"""The Dagster side of reporting: `failure_rate_report` writes the day's report (JSON, markdown, HTML) with a
markdown preview in its metadata, and its `failure_rate_jump` check warns about exactly the channels whose
failure rate jumped against their trailing baseline, with thresholds taken from run config.
"""

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pipelines.ingest.windows import Window
from pipelines.report_assets import REPORT_ASSETS, REPORT_JOBS, report_directory
from pipelines.reporting import failure_rate_jumps
from pipelines.resources import Archive
from transforms.reports import message_counts
from transforms.schema import MESSAGE_SCHEMA
from warehouse.store import Warehouse

pytest_plugins = ["tests.demo_warehouse"]

WORKSPACE = "workspace-1"
DAY = dt.date(2026, 1, 10)
TRAILING_DAYS = 7


def _messages(channel: str, day: dt.date, n: int, n_failed: int) -> list[dict]:
    noon = dt.datetime.combine(day, dt.time(12), dt.UTC)
    return [
        {
            "id": f"{channel}-{day}-{i}",
            "workspace_id": WORKSPACE,
            "channel_id": channel,
            "platform": "sms-messagebird",
            "direction": "outgoing",
            "status": "delivery_failed" if i < n_failed else "delivered",
            "is_known_status": True,
            "created_at": noon + dt.timedelta(seconds=i),
            "updated_at": noon + dt.timedelta(seconds=i),
            "is_final": True,
            "tags": [],
            "failure_code": 15005 if i < n_failed else None,
            "failure_source_name": "sms-messagebird" if i < n_failed else None,
        }
        for i in range(n)
    ]


def incident_messages() -> pl.DataFrame:
    """Eight days; on the last, `jumpy` fails 30% against a 2% baseline, `quiet` fails 5 of 10 messages."""
    rows = []
    for offset in range(TRAILING_DAYS, 0, -1):
        day = DAY - dt.timedelta(days=offset)
        rows += (
            _messages("steady", day, 100, 2)
            + _messages("jumpy", day, 100, 2)
            + _messages("quiet", day, 10, 0)
        )
    rows += (
        _messages("steady", DAY, 100, 3) + _messages("jumpy", DAY, 100, 30) + _messages("quiet", DAY, 10, 5)
    )
    return pl.DataFrame(rows, schema=MESSAGE_SCHEMA)


@pytest.fixture(scope="module")
def incident_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("incident")
    Warehouse(data_dir).load_messages(
        workspace_id=WORKSPACE,
        start=Window.day(DAY - dt.timedelta(days=TRAILING_DAYS)).start,
        end=Window.day(DAY).end,
        messages=incident_messages(),
    )
    return data_dir


def materialize(data_dir: Path, day: dt.date, **config: object) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        REPORT_ASSETS,
        partition_key=day.isoformat(),
        resources={"archive": Archive(data_dir=str(data_dir))},
        run_config={"ops": {"failure_rate_report": {"config": config}}},
    )


def test_failure_rate_jumps_flags_only_a_loud_meaningful_rise() -> None:
    rates = failure_rate_jumps(
        incident_messages().lazy(), Window.day(DAY), trailing_days=TRAILING_DAYS
    ).collect()
    by_channel = {row["channel_id"]: row for row in rates.iter_rows(named=True)}
    assert {channel for channel, row in by_channel.items() if row["is_jump"]} == {"jumpy"}
    assert by_channel["jumpy"]["baseline_n_messages"] == 700
    assert by_channel["jumpy"]["baseline_failure_rate"] == pytest.approx(14 / 700)
    assert by_channel["jumpy"]["failure_rate_change_pp"] == pytest.approx((0.30 - 0.02) * 100)
    assert by_channel["quiet"]["failure_rate"] == 0.5 and not by_channel["quiet"]["is_jump"]  # 10 messages
    lenient = failure_rate_jumps(
        incident_messages().lazy(), Window.day(DAY), trailing_days=TRAILING_DAYS, min_volume=5
    ).collect()
    assert set(lenient.filter("is_jump")["channel_id"]) == {"jumpy", "quiet"}
    # The asset passes the channels' message counts, not the rows: the same verdicts.
    counts = message_counts(incident_messages().lazy(), by=["channel"])
    counted = failure_rate_jumps(counts, Window.day(DAY), trailing_days=TRAILING_DAYS).collect()
    assert_frame_equal(counted, rates)


def test_the_check_warns_about_the_jumped_channel(incident_data_dir: Path) -> None:
    result = materialize(incident_data_dir, DAY)
    assert result.success
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.check_name == "failure_rate_jump"
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "jumpy (30.0% vs 2.0%)" in evaluation.description
    assert "steady" not in evaluation.description and "quiet" not in evaluation.description
    assert evaluation.metadata["jumped_channels"].value == 1


def test_the_check_thresholds_come_from_run_config(incident_data_dir: Path) -> None:
    result = materialize(incident_data_dir, DAY, jump={"min_change_pp": 40.0})
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed
    assert evaluation.metadata["thresholds"].value["min_change_pp"] == 40.0


def test_the_report_asset_writes_the_day_and_previews_it(
    demo_data_dir: Path, demo_days: list[dt.date], tmp_path: Path
) -> None:
    day = demo_days[-1]
    result = materialize(demo_data_dir, day, by="channel,direction")
    assert result.success
    (materialization,) = result.get_asset_materialization_events()
    metadata = materialization.materialization.metadata
    assert metadata["preview"].value.startswith(f"## Failure rate by channel, direction, {day} to {day}")

    directory = report_directory(demo_data_dir, day)
    document = json.loads((directory / "report.json").read_text())
    window = Window.day(day)
    with Warehouse(demo_data_dir).connect_readonly() as con:
        (n_messages,) = con.sql(
            "select count(*) from messages where created_at >= $start and created_at < $end",
            params={"start": window.start, "end": window.end},
        ).fetchall()[0]
    assert document["totals"]["n_messages"] == metadata["n_messages"].value == n_messages
    assert document["by"] == ["channel", "direction"]
    assert (directory / "report.md").read_text().startswith("## Failure rate by channel, direction")
    assert "<svg" in (directory / "report.html").read_text()
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.metadata["channels_checked"].value > 0


def test_the_report_job_and_checks_load_in_definitions() -> None:
    defs = dg.Definitions(assets=REPORT_ASSETS, jobs=REPORT_JOBS, resources={"archive": Archive()})
    job = defs.resolve_job_def("write_failure_rate_reports")
    assert job.partitions_def is not None
    spec_keys = {key.name for asset in REPORT_ASSETS for key in asset.check_keys}
    assert spec_keys == {"failure_rate_jump"}


def test_an_unknown_grouping_in_config_fails_the_run_clearly(incident_data_dir: Path) -> None:
    with pytest.raises(Exception, match="unknown grouping colour"):
        materialize(incident_data_dir, DAY, by="colour")
