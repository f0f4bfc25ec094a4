"""The daily schedule keeps the archive current: real Dagster runs against the emulator, files under tmp_path.

After the emulator's clock moves (older messages change status, interactions appear), the next scheduled
evaluation asks exactly for the days that can have changed; its runs bring the new statuses and interactions
into the warehouse with one row per id, leave settled days untouched, and cost only the requests counted.
A day from which Bird's lists withhold messages fails the reconciliation check with the difference.
"""

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from pipelines.assets import archived_messages, channels
from pipelines.current_assets import (
    AS_OF_TAG,
    CURRENT_ASSETS,
    CURRENT_JOBS,
    CURRENT_SCHEDULES,
    CURRENT_SENSORS,
    FRESHNESS_CHECKS,
    REASON_TAG,
    Settlement,
    keep_current_job,
    keep_current_schedule,
    matches_bird_channel_metrics,
)
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from pipelines.ingest.interactions import RAW_INTERACTIONS
from pipelines.ingest.land import RAW_MESSAGES
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from pipelines.partitions import archive_key, days_by_workspace, register_workspaces
from pipelines.resources import Archive, BirdApi
from tests.conftest import EMULATOR_NOW
from warehouse.store import Warehouse

# The shared fixture's three days at a lower volume: every run asks interactions of each eligible message.
SPEC = DatasetSpec(seed=7, days=3, messages_per_day=120, end=dt.date(2026, 1, 15))
DAYS = [dt.date(2026, 1, 12), dt.date(2026, 1, 13), dt.date(2026, 1, 14)]
# Settling horizon of 4 days, so that the oldest day lies within it and is left alone because it is settled.
SETTLEMENT = Settlement(settling_horizon_days=4.0, interaction_concurrency=8)
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@dataclass
class Archived:
    """A Dagster instance and definitions over an emulator and a data directory, with request bookkeeping."""

    emulator: RunningEmulator
    root: Path
    defs: dg.Definitions
    instance: dg.DagsterInstance

    @property
    def lake(self) -> Lake:
        return Lake(self.root / "lake")

    def run(self, day: dt.date, as_of: dt.datetime, selection: list[dg.AssetKey] | None = None) -> int:
        """Materialize a day as a run "as of" the given time; returns the GETs the emulator served it."""
        before = self.emulator.stats.to_dict()["gets_total"]
        register_workspaces(self.instance, [self.emulator.workspace_id])
        result = self.defs.resolve_job_def(keep_current_job.name).execute_in_process(
            partition_key=archive_key(self.emulator.workspace_id, day),
            asset_selection=selection,
            instance=self.instance,
            tags={AS_OF_TAG: as_of.isoformat()},
            run_config=QUIET,
        )
        assert result.success
        reconciled = [
            evaluation
            for evaluation in result.get_asset_check_evaluations()
            if evaluation.check_name == matches_bird_channel_metrics.check_key.name
        ]
        assert len(reconciled) == (selection is None or dg.AssetKey(RAW_MESSAGES) in selection)
        assert all(evaluation.passed for evaluation in reconciled)
        return self.emulator.stats.to_dict()["gets_total"] - before

    def partition_digest(self, dataset: str, day: dt.date) -> str:
        path = self.lake.partition_file(dataset, self.emulator.workspace_id, day)
        return hashlib.sha256(path.read_bytes()).hexdigest()


def _definitions(emulator: RunningEmulator, root: Path) -> dg.Definitions:
    bird = BirdApi(
        access_key=emulator.access_key,
        workspace_id=emulator.workspace_id,
        api_url=emulator.base_url,
        rate_limit_per_s=2000.0,
    )
    return _current_definitions(bird, Archive(data_dir=str(root), initial_parts=2), SETTLEMENT)


def _current_definitions(bird: BirdApi, archive: Archive, settlement: Settlement) -> dg.Definitions:
    """The keeping-current part of the code location, with these resources."""
    return dg.Definitions(
        assets=[channels, archived_messages, *CURRENT_ASSETS],
        asset_checks=[matches_bird_channel_metrics, *FRESHNESS_CHECKS],
        jobs=CURRENT_JOBS,
        schedules=CURRENT_SCHEDULES,
        sensors=CURRENT_SENSORS,
        resources={"bird": bird, "archive": archive, "settlement": settlement},
    )


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh emulator of SPEC per test, its clock at EMULATOR_NOW."""
    with run_emulator(store=MessageStore.generate(SPEC, now=EMULATOR_NOW)) as running:
        yield running


@pytest.fixture
def archived(emulator: RunningEmulator, tmp_path: Path) -> Iterator[Archived]:
    """The three emulated days archived as of the emulator's clock, channels first."""
    with dg.instance_for_test() as instance:
        defs = _definitions(emulator, tmp_path)
        archive = Archived(emulator, tmp_path, defs, instance)
        assert dg.materialize([channels], resources=defs.resources, instance=instance).success
        for day in DAYS:
            archive.run(day, EMULATOR_NOW)
        yield archive


def _evaluate(archive: Archived, at: dt.datetime) -> list[dg.RunRequest]:
    context = dg.build_schedule_context(
        instance=archive.instance,
        scheduled_execution_time=at,
        resources=archive.defs.resources,
        repository_def=archive.defs.get_repository_def(),
    )
    data = archive.defs.resolve_schedule_def(keep_current_schedule.name).evaluate_tick(context)
    assert data.run_requests is not None
    return list(data.run_requests)


def _warehouse_statuses(root: Path) -> dict[str, str]:
    with Warehouse(root).connect_readonly() as con:
        n_rows, n_ids = con.execute("select count(*), count(distinct id) from messages").fetchone()
        assert n_rows == n_ids, "a message id has two rows"
        return dict(con.execute("select id, status from messages").fetchall())


def _warehouse_interaction_ids(root: Path) -> set[str]:
    with Warehouse(root).connect_readonly() as con:
        n_rows, n_ids = con.execute("select count(*), count(distinct id) from interactions").fetchone()
        assert n_rows == n_ids, "an interaction id has two rows"
        return {row[0] for row in con.execute("select id from interactions").fetchall()}


def _truth(emulator: RunningEmulator, days: list[dt.date]) -> tuple[dict[str, str], set[str]]:
    """Every message's status and every interaction id of the days, at the emulator's clock."""
    statuses, interaction_ids = {}, set()
    for day in days:
        window = Window.day(day)
        for message_id in emulator.store.ground_truth_ids(window.start, window.end):
            statuses[message_id] = emulator.store.message(message_id)["status"]
            interaction_ids |= {i["id"] for i in emulator.store.interactions(message_id)}
    return statuses, interaction_ids


def test_the_next_scheduled_run_pulls_only_what_can_have_changed(archived: Archived) -> None:
    emulator = archived.emulator
    landed_before, interactions_before = _truth(emulator, DAYS)
    assert _warehouse_statuses(archived.root) == landed_before
    assert _warehouse_interaction_ids(archived.root) == interactions_before
    oldest = DAYS[0]
    oldest_digest = archived.partition_digest(RAW_MESSAGES, oldest)

    later = EMULATOR_NOW + dt.timedelta(days=1)  # 2026-01-16 06:00: the schedule lands the 15th
    emulator.store.advance(to=later)
    statuses, interaction_ids = _truth(emulator, DAYS)
    changed = {i for i, status in statuses.items() if landed_before[i] != status}
    assert changed and interaction_ids > interactions_before, "the clock should have moved things"
    assert not any(message_id in changed for message_id in _ids(emulator, oldest)), "the 12th is settled"

    requests = {
        day: r
        for r in _evaluate(archived, later)
        for day in days_by_workspace([r.partition_key])[emulator.workspace_id]
    }
    relist = {dg.AssetKey(k) for k in (RAW_MESSAGES, "messages", RAW_INTERACTIONS, "interactions")}
    assert {day: set(r.asset_selection) for day, r in requests.items()} == {
        dt.date(2026, 1, 15): relist,
        DAYS[2]: relist,
        DAYS[1]: relist,
        oldest: {dg.AssetKey(RAW_INTERACTIONS), dg.AssetKey("interactions")},
    }
    assert requests[DAYS[1]].tags[REASON_TAG].endswith("unsettled message(s)")

    served = 0
    for day, request in sorted(requests.items()):
        served += archived.run(day, later, list(request.asset_selection))
    assert _warehouse_statuses(archived.root) == statuses
    assert _warehouse_interaction_ids(archived.root) == interaction_ids
    assert archived.partition_digest(RAW_MESSAGES, oldest) == oldest_digest
    assert served == _requests_recorded(archived, since=later)


def _ids(emulator: RunningEmulator, day: dt.date) -> set[str]:
    window = Window.day(day)
    return emulator.store.ground_truth_ids(window.start, window.end)


def _requests_recorded(archived: Archived, *, since: dt.datetime) -> int:
    """Requests the runs "as of" `since` report in their materializations and check evaluations."""
    total = 0
    for run in archived.instance.get_runs(dg.RunsFilter(tags={AS_OF_TAG: since.isoformat()})):
        for entry in archived.instance.all_logs(run.run_id):
            event = entry.dagster_event
            if event is None:
                continue
            if event.is_step_materialization:
                metadata = event.step_materialization_data.materialization.metadata
            elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
                metadata = event.asset_check_evaluation_data.metadata
            else:
                continue
            total += metadata["requests"].value if "requests" in metadata else 0
    return total


def test_messages_withheld_from_the_lists_fail_the_reconciliation(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    day = DAYS[1]
    withheld = sorted(_ids(emulator, day))[:7]
    emulator.store.withhold(withheld)
    short = Counter(emulator.store.message(message_id)["channelId"] for message_id in withheld)
    with dg.instance_for_test() as instance:
        register_workspaces(instance, [emulator.workspace_id])
        result = (
            _definitions(emulator, tmp_path)
            .resolve_job_def(keep_current_job.name)
            .execute_in_process(
                partition_key=archive_key(emulator.workspace_id, day),
                asset_selection=[dg.AssetKey(RAW_MESSAGES)],
                instance=instance,
                run_config=QUIET,
            )
        )
    (evaluation,) = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == matches_bird_channel_metrics.check_key.name
    ]
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["n_missing"].value == len(withheld)
    assert evaluation.metadata["n_extra"].value == 0
    assert evaluation.metadata["n_reported"].value == len(_ids(emulator, day))
    table = evaluation.metadata["channels_off"].value
    for channel_id, n in short.items():
        assert f"| {channel_id} |" in table and f"| {n} | 0 |" in table


def test_the_definitions_load_with_schedule_freshness_and_checks(tmp_path: Path) -> None:
    defs = _current_definitions(
        BirdApi(access_key="key", workspace_id="ws"), Archive(data_dir=str(tmp_path)), Settlement()
    )
    dg.Definitions.validate_loadable(defs)
    schedule = defs.resolve_schedule_def(keep_current_schedule.name)
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    checked = {key.asset_key.to_user_string() for check in FRESHNESS_CHECKS for key in check.check_keys}
    assert checked == {"raw_messages", "messages", "raw_interactions", "interactions", "channels"}
