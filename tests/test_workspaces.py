"""Several workspaces: their configuration, and how a backfill splits their days into Dagster runs."""

import datetime as dt

import dagster as dg
import pytest

from pipelines.backfill import MAX_DAYS_PER_RUN, plan_runs
from pipelines.bird.errors import ConfigError
from pipelines.bird.settings import workspaces_from_env
from pipelines.current_assets import register_workspaces_sensor
from pipelines.partitions import WORKSPACES, archive_key, days_by_workspace, register_workspaces
from pipelines.resources import BirdApi, request_budget_from_env

EU, US = "c1dc7efa-34ae-49b6-bb61-eccf360f1ee9", "0b9f7e35-1d4f-4c9e-9f0e-3f1d2c3b4a59"
DAY = dt.date(2026, 1, 12)


def _days(n: int, first: dt.date = DAY) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(n)]


def test_one_workspace_from_the_classic_variables() -> None:
    (only,) = workspaces_from_env({"BIRD_ACCESS_KEY": "k", "BIRD_WORKSPACE_ID": EU})
    assert (only.name, only.workspace_id, only.access_key.reveal()) == ("default", EU, "k")


def test_several_workspaces_each_with_its_own_key() -> None:
    env = {
        "BIRD_WORKSPACES": f"eu={EU}, us={US}",
        "BIRD_ACCESS_KEY_EU": "key-eu",
        "BIRD_ACCESS_KEY_US": "key-us",
        "BIRD_API_URL": "http://127.0.0.1:9",
    }
    eu, us = workspaces_from_env(env)
    assert (eu.name, eu.workspace_id, eu.access_key.reveal()) == ("eu", EU, "key-eu")
    assert (us.name, us.workspace_id, us.access_key.reveal()) == ("us", US, "key-us")
    assert eu.api_url == us.api_url == "http://127.0.0.1:9"
    assert "key-eu" not in repr(eu)


@pytest.mark.parametrize(
    ("listed", "keys", "message"),
    [
        (f"eu={EU},us={US}", {"BIRD_ACCESS_KEY_EU": "k"}, "BIRD_ACCESS_KEY_US not set"),
        (f"eu:{EU}", {}, "name=workspace-uuid pairs"),
        ("eu=not-a-uuid", {"BIRD_ACCESS_KEY_EU": "k"}, "must be a UUID"),
        (f"eu={EU},eu2={EU}", {"BIRD_ACCESS_KEY_EU": "k", "BIRD_ACCESS_KEY_EU2": "k"}, "twice"),
    ],
)
def test_a_bad_workspace_list_is_one_clear_error(listed: str, keys: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        workspaces_from_env({"BIRD_WORKSPACES": listed, **keys})


def test_each_workspace_may_have_its_own_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIRD_RATE_LIMIT_PER_S", "30")
    monkeypatch.setenv("BIRD_RATE_LIMIT_PER_S_EU", "10")
    assert request_budget_from_env("eu") == 10
    assert request_budget_from_env("us") == 30
    assert request_budget_from_env() == 30
    monkeypatch.setenv("BIRD_RATE_LIMIT_PER_S_EU", "fast")
    with pytest.raises(ValueError, match="BIRD_RATE_LIMIT_PER_S_EU must be a number"):
        request_budget_from_env("eu")


def test_runs_keep_the_workers_busy_and_never_span_a_gap() -> None:
    # 30 days of one workspace, two workers: two runs of 15 consecutive days.
    runs = plan_runs({EU: _days(30)}, concurrency=2)
    assert [(ws, len(days)) for ws, days in runs] == [(EU, 15), (EU, 15)]
    assert [d for _, days in runs for d in days] == _days(30)
    # Two workspaces, two workers: one run each.
    assert [(ws, len(days)) for ws, days in plan_runs({EU: _days(7), US: _days(7)}, concurrency=2)] == [
        (EU, 7),
        (US, 7),
    ]
    # A year in one worker is cut into runs of at most a month; a hole (--missing-only) starts a new run.
    assert max(len(days) for _, days in plan_runs({EU: _days(365)}, concurrency=1)) == MAX_DAYS_PER_RUN
    holey = [*_days(3), *_days(2, DAY + dt.timedelta(days=10))]
    assert [days for _, days in plan_runs({EU: holey}, concurrency=1)] == [tuple(holey[:3]), tuple(holey[3:])]
    assert [len(days) for _, days in plan_runs({EU: _days(5)}, concurrency=1, days_per_run=2)] == [2, 2, 1]


def test_partition_keys_round_trip_per_workspace() -> None:
    keys = [str(archive_key(ws, day)) for ws in (US, EU) for day in reversed(_days(3))]
    assert days_by_workspace(keys) == {EU: _days(3), US: _days(3)}


def test_the_sensor_adds_configured_workspaces_to_the_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIRD_WORKSPACES", f"eu={EU},us={US}")
    monkeypatch.setenv("BIRD_ACCESS_KEY_EU", "key-eu")
    monkeypatch.setenv("BIRD_ACCESS_KEY_US", "key-us")
    with dg.instance_for_test() as instance:
        register_workspaces(instance, [EU])
        context = dg.build_sensor_context(instance=instance, resources={"bird": BirdApi()})
        result = register_workspaces_sensor(context)
        (request,) = result.dynamic_partitions_requests
        assert (request.partitions_def_name, list(request.partition_keys)) == (WORKSPACES.name, [US])
        register_workspaces(instance, [US])
        again = register_workspaces_sensor(
            dg.build_sensor_context(instance=instance, resources={"bird": BirdApi()})
        )
        assert not again.dynamic_partitions_requests
