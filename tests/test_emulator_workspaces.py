"""One emulator serves several Bird workspaces, each behind its own access key (issue 9).

Protected: each workspace lists exactly its own messages with its own key; a valid key is refused with 403 on
another served workspace (404 under the switch) and an unknown key with 401; rate limits, faults, stats,
clocks and the admin endpoints are per workspace; generated workspaces are deterministic and share no ids;
`serve` prints every workspace id and key; the single-workspace API (`run_emulator(spec)`, `.store`, ...)
still means one workspace. Traffic is real HTTP against a loopback server unless said otherwise.
"""

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from conftest import EMULATOR_NOW, EMULATOR_SPEC

from pipelines.emulator import server
from pipelines.emulator.app import create_app
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults
from pipelines.emulator.server import RunningEmulator, run_emulator, serve
from pipelines.emulator.store import MessageStore
from pipelines.emulator.workspaces import EmulatedWorkspace, generate_workspaces

WHOLE_RANGE = (EMULATOR_SPEC.start, EMULATOR_NOW + timedelta(days=1))


def _two_workspaces(faults: Faults | None = None) -> list[EmulatedWorkspace]:
    return generate_workspaces(EMULATOR_SPEC, 2, now=EMULATOR_NOW, faults=faults)


@pytest.fixture(scope="module")
def two() -> Iterator[RunningEmulator]:
    """Two workspaces served at once, for tests that only read."""
    with run_emulator(workspaces=_two_workspaces()) as running:
        yield running


def _client(base_url: str, workspace: EmulatedWorkspace) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers=workspace.headers, timeout=10)


def _messages_path(workspace_id: str) -> str:
    return f"/workspaces/{workspace_id}/channels/messages"


def _all_ids(http: httpx.Client, workspace_id: str) -> list[str]:
    ids: list[str] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        response = http.get(_messages_path(workspace_id), params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += [m["id"] for m in body["results"]]
        if not body.get("nextPageToken"):
            return ids
        params["pageToken"] = body["nextPageToken"]


def test_each_workspace_lists_its_own_messages_with_its_own_key(two: RunningEmulator) -> None:
    first, second = two.workspaces
    listed = {}
    for workspace in two.workspaces:
        with _client(two.base_url, workspace) as http:
            ids = _all_ids(http, workspace.workspace_id)
            channels = http.get(f"/workspaces/{workspace.workspace_id}/channels", params={"limit": 100})
        assert len(ids) == len(set(ids))
        assert set(ids) == workspace.store.ground_truth_ids(*WHOLE_RANGE)
        assert {c["id"] for c in channels.json()["results"]} == {
            c.id for c in workspace.store.channel_records()
        }
        listed[workspace.workspace_id] = set(ids)
    assert first.workspace_id != second.workspace_id
    assert not listed[first.workspace_id] & listed[second.workspace_id]
    assert first.access_key == "emulator-access-key"
    assert second.access_key == "emulator-access-key-2"


def test_a_key_is_refused_on_another_workspace(two: RunningEmulator) -> None:
    first, second = two.workspaces
    message_id = min(second.store.ground_truth_ids(*WHOLE_RANGE))
    channel = second.store.message(message_id)["channelId"]
    theirs = f"/workspaces/{second.workspace_id}"
    gets_before = (first.stats.total_gets(), second.stats.total_gets())
    with _client(two.base_url, first) as http:
        for path in (
            f"{theirs}/channels/messages",
            f"{theirs}/channels",
            f"{theirs}/channels/{channel}",
            f"{theirs}/channels/{channel}/messages",
            f"{theirs}/channels/{channel}/messages/{message_id}",
            f"{theirs}/channels/{channel}/messages/{message_id}/interactions",
        ):
            response = http.get(path)
            assert response.status_code == 403, path
            assert response.json()["code"] == "Forbidden"
        sent = http.post(
            f"{theirs}/channels/{channel}/messages",
            json={"receiver": {"contacts": [{"identifierValue": "+31612345678"}]}, "body": {"type": "text"}},
        )
        assert sent.status_code == 403
        unknown = http.get(_messages_path("00000000-0000-4000-8000-000000000000"))
        assert unknown.status_code == 404  # a workspace nobody serves: not found, as before
        assert http.get(_messages_path(first.workspace_id)).status_code == 200  # its own still works
    assert httpx.get(two.base_url + f"{theirs}/channels/messages", headers={}).status_code == 401
    wrong = {"Authorization": "AccessKey emulator-access-key-3"}
    assert httpx.get(two.base_url + f"{theirs}/channels/messages", headers=wrong).status_code == 401
    # refused before any fault or budget: neither workspace counted the 403s
    assert second.stats.total_gets() == gets_before[1]
    assert first.stats.total_gets() == gets_before[0] + 2  # the unknown workspace and its own list


def test_the_cross_workspace_refusal_can_read_as_404() -> None:
    """Bird may hide other workspaces instead; the switch lets a client be tested against that reading."""
    first, second = _two_workspaces()

    async def status(cross_workspace_status: int) -> tuple[int, str]:
        app = create_app(workspaces=[first, second], cross_workspace_status=cross_workspace_status)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://emulator", headers=first.headers
        ) as http:
            response = await http.get(_messages_path(second.workspace_id))
            return response.status_code, response.json()["code"]

    assert asyncio.run(status(403)) == (403, "Forbidden")
    assert asyncio.run(status(404)) == (404, "NotFound")
    with pytest.raises(ValueError, match="cross_workspace_status"):
        create_app(workspaces=[first, second], cross_workspace_status=401)


@pytest.mark.parametrize("shared_faults", [False, True], ids=["own-faults", "one-faults-object"])
def test_a_burst_on_one_workspace_does_not_429_another(shared_faults: bool) -> None:
    workspaces = _two_workspaces(Faults(rate_limit_per_s=3))
    if shared_faults:  # even the same switches object keeps one budget per workspace
        workspaces[1].faults = workspaces[0].faults
    with run_emulator(workspaces=workspaces) as running:
        first, second = running.workspaces
        with _client(running.base_url, first) as a, _client(running.base_url, second) as b:
            burst = [a.get(_messages_path(first.workspace_id), params={"limit": 1}) for _ in range(15)]
            other = [b.get(_messages_path(second.workspace_id), params={"limit": 1}) for _ in range(3)]
    assert [r.status_code for r in burst].count(429) > 0
    assert [r.status_code for r in other] == [200, 200, 200]
    first_stats, second_stats = first.stats.to_dict(), second.stats.to_dict()
    assert first_stats["gets"] == {first.workspace_id: 15}
    assert first_stats["served_429"] == [r.status_code for r in burst].count(429)
    assert second_stats["gets"] == {second.workspace_id: 3}
    assert second_stats["served_429"] == 0


def test_faults_clock_and_admin_endpoints_are_per_workspace() -> None:
    with run_emulator(workspaces=_two_workspaces()) as running:
        first, second = running.workspaces
        with _client(running.base_url, first) as a, _client(running.base_url, second) as b:
            assert b.put("/_emulator/faults", json={"error_5xx_rate": 1.0}).status_code == 200
            assert b.get(_messages_path(second.workspace_id)).status_code >= 500
            assert a.get(_messages_path(first.workspace_id)).status_code == 200
            later = EMULATOR_NOW + timedelta(days=1)
            assert b.post("/_emulator/advance", json={"to": later.isoformat()}).status_code == 200
            stats_a, stats_b = a.get("/_emulator/stats").json(), b.get("/_emulator/stats").json()
    assert first.faults.error_5xx_rate == 0 and second.faults.error_5xx_rate == 1.0
    assert first.store.now == EMULATOR_NOW and second.store.now == later
    assert stats_a["gets"] == {first.workspace_id: 1} and stats_a["served_5xx"] == 0
    assert stats_b["gets"] == {second.workspace_id: 1} and stats_b["served_5xx"] == 1


def test_generated_workspaces_are_deterministic_and_share_no_ids() -> None:
    specs = EMULATOR_SPEC.for_workspaces(3)
    assert specs[0] == EMULATOR_SPEC  # workspace 1 is exactly the single-workspace emulator's
    assert len({s.seed for s in specs}) == 3
    assert [s.seed for s in EMULATOR_SPEC.for_workspaces(3)] == [s.seed for s in specs]
    stores = [w.store for w in generate_workspaces(EMULATOR_SPEC, 3, now=EMULATOR_NOW)]
    again = [w.store for w in generate_workspaces(EMULATOR_SPEC, 3, now=EMULATOR_NOW)]
    for store, same in zip(stores, again, strict=True):
        assert store.workspace_id == same.workspace_id
        assert store.ground_truth_ids(*WHOLE_RANGE) == same.ground_truth_ids(*WHOLE_RANGE)
    assert len({s.workspace_id for s in stores}) == 3
    channel_ids = [{c.id for c in s.channel_records()} for s in stores]
    message_ids = [s.ground_truth_ids(*WHOLE_RANGE) for s in stores]
    for i in range(3):
        for j in range(i + 1, 3):
            assert not channel_ids[i] & channel_ids[j]
            assert not message_ids[i] & message_ids[j]
    with pytest.raises(ValueError):
        EMULATOR_SPEC.for_workspaces(0)


def test_workspaces_must_have_distinct_ids_and_keys() -> None:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    other = MessageStore.generate(EMULATOR_SPEC.for_workspaces(2)[1], now=EMULATOR_NOW)
    with pytest.raises(ValueError, match="access keys"):
        create_app(workspaces=[EmulatedWorkspace(store, "k"), EmulatedWorkspace(other, "k")])
    with pytest.raises(ValueError, match="workspace ids"):
        create_app(workspaces=[EmulatedWorkspace(store, "k"), EmulatedWorkspace(store, "k2")])
    with (
        pytest.raises(ValueError, match="workspaces alone"),
        run_emulator(store=store, workspaces=[EmulatedWorkspace(other)]),
    ):
        pass


def test_the_single_workspace_api_means_one_workspace() -> None:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    faults = Faults()
    with run_emulator(store=store, access_key="secret", faults=faults) as running:
        (only,) = running.workspaces
        assert (running.store, running.faults, running.stats) == (store, faults, only.stats)
        assert (running.workspace_id, running.access_key) == (store.workspace_id, "secret")
        assert running.headers == {"Authorization": "AccessKey secret"} == only.headers
        assert running.workspace(store.workspace_id) is only
        response = httpx.get(running.base_url + _messages_path(store.workspace_id), headers=running.headers)
        assert response.status_code == 200
        assert running.stats.to_dict()["gets"] == {store.workspace_id: 1}


def test_serve_prints_every_workspace_id_and_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[Any] = []
    monkeypatch.setattr(server.uvicorn, "run", lambda app, **options: served.append(app))
    spec = DatasetSpec(seed=3, days=1, messages_per_day=50, end=EMULATOR_SPEC.end)
    serve(host="127.0.0.1", port=8765, spec=spec, access_key="key", workspaces=3)
    out = capsys.readouterr().out
    workspaces = served[0].state.emulator.workspaces
    assert len(workspaces) == 3
    assert workspaces[0].store.workspace_id == spec.resolved_workspace_id()
    for workspace, key in zip(workspaces, ("key", "key-2", "key-3"), strict=True):
        assert workspace.workspace.access_key == key
        assert f"id {workspace.store.workspace_id}  access key {key} " in out
