"""The Bird API emulator keeps Bird's contract and the semantics written down in docs/emulator.md.

Protected: cursor pagination returns exactly the ground truth, newest-first order and `reverse`, half-open
windows (and the inclusive switch), every documented filter, the three end-of-list signals, Bird's 401/404/422
bodies, sending, determinism, the clock (statuses settle, interactions appear), each fault switch, request
stats, the admin endpoints and the metrics endpoint. Traffic is real HTTP against a loopback server.
"""

import asyncio
import base64
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import phonenumbers
import pytest
from conftest import EMULATOR_NOW, EMULATOR_SPEC

from pipelines.emulator.app import create_app
from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.faults import Faults, RequestStats
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from transforms.vocabulary import FINAL_STATUSES, INTERACTION_TYPES, STATUSES

DAY_START = datetime(2026, 1, 13, tzinfo=UTC)
DAY_END = datetime(2026, 1, 14, tzinfo=UTC)
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def client(emulator: RunningEmulator) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers=emulator.headers, timeout=10)


def messages_path(emulator: RunningEmulator, channel_id: str | None = None) -> str:
    channel = f"/{channel_id}" if channel_id else ""
    return f"/workspaces/{emulator.workspace_id}/channels{channel}/messages"


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def page_through(http: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Every message of a list query, following nextPageToken; returns (messages, requests made)."""
    found: list[dict[str, Any]] = []
    token = None
    requests = 0
    while True:
        response = http.get(path, params={**params, **({"pageToken": token} if token else {})})
        requests += 1
        assert response.status_code == 200, response.text
        body = response.json()
        found.extend(body["results"])
        token = body.get("nextPageToken")
        if not token:
            return found, requests


def all_messages(http: httpx.Client, emulator: RunningEmulator) -> list[dict[str, Any]]:
    return page_through(http, messages_path(emulator), {"limit": 1000})[0]


def channel_by_platform(emulator: RunningEmulator, platform: str) -> str:
    return next(c["id"] for c in emulator.store.channels() if c["platformId"] == platform)


# -- pagination, order and windows --


def test_pages_of_the_workspace_list_add_up_to_exactly_the_ground_truth(
    emulator_module: RunningEmulator,
) -> None:
    params = {"limit": 37, "startAt": iso(DAY_START), "endAt": iso(DAY_END)}
    with client(emulator_module) as http:
        found, requests = page_through(http, messages_path(emulator_module), params)
    ids = [m["id"] for m in found]
    truth = emulator_module.store.ground_truth_ids(DAY_START, DAY_END)
    assert len(ids) == len(set(ids)) == len(truth) > 200
    assert set(ids) == truth
    assert requests == -(-len(truth) // 37)  # the last non-empty page carries no token: no extra request


def test_pages_of_a_channel_list_add_up_to_that_channels_ground_truth(
    emulator_module: RunningEmulator,
) -> None:
    channel_id = channel_by_platform(emulator_module, "whatsapp")
    with client(emulator_module) as http:
        found, _ = page_through(
            http,
            messages_path(emulator_module, channel_id),
            {"limit": 10, "startAt": iso(DAY_START), "endAt": iso(DAY_END), "reverse": "true"},
        )
        envelope = http.get(
            messages_path(emulator_module, channel_id),
            params={"limit": 1, "startAt": iso(DAY_START), "endAt": iso(DAY_END)},
        ).json()
    assert {m["id"] for m in found} == emulator_module.store.ground_truth_ids(
        DAY_START, DAY_END, channel_id=channel_id
    )
    assert {m["channelId"] for m in found} == {channel_id}
    assert list(envelope) == ["startAt", "endAt", "nextPageToken", "results"]
    assert envelope["startAt"] == "2026-01-13T00:00:00.000Z"


def test_default_order_is_newest_first_and_reverse_is_oldest_first(emulator_module: RunningEmulator) -> None:
    params = {"limit": 50, "startAt": iso(DAY_START), "endAt": iso(DAY_END)}
    with client(emulator_module) as http:
        newest_first, _ = page_through(http, messages_path(emulator_module), params)
        oldest_first, _ = page_through(http, messages_path(emulator_module), {**params, "reverse": "true"})
    keys = [(m["createdAt"], m["id"]) for m in newest_first]
    assert keys == sorted(keys, reverse=True)
    assert [m["id"] for m in oldest_first] == [m["id"] for m in reversed(newest_first)]


def test_page_token_is_base64_json_of_the_last_items_epoch_ms_and_id(
    emulator_module: RunningEmulator,
) -> None:
    with client(emulator_module) as http:
        body = http.get(messages_path(emulator_module), params={"limit": 5}).json()
    epoch_ms, last_id = json.loads(base64.b64decode(body["nextPageToken"]))
    last = body["results"][-1]
    assert last_id == last["id"]
    assert datetime.fromtimestamp(epoch_ms / 1000, UTC) == datetime.fromisoformat(last["createdAt"])


@pytest.mark.parametrize("inclusive_end", [False, True])
def test_window_is_half_open_unless_the_end_is_switched_to_inclusive(inclusive_end: bool) -> None:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    with run_emulator(store=store, inclusive_end=inclusive_end) as emulator, client(emulator) as http:
        everything = all_messages(http, emulator)
        first, second = sorted(everything, key=lambda m: (m["createdAt"], m["id"]))[100:102]
        start = datetime.fromisoformat(first["createdAt"])
        end = datetime.fromisoformat(second["createdAt"])
        found, _ = page_through(http, messages_path(emulator), {"startAt": iso(start), "endAt": iso(end)})
    listed = {m["id"] for m in found}
    assert first["id"] in listed
    assert (second["id"] in listed) is inclusive_end
    assert all(start <= datetime.fromisoformat(m["createdAt"]) <= end for m in found)


def test_messages_created_after_the_clock_are_not_listed_until_it_reaches_them(
    emulator: RunningEmulator,
) -> None:
    emulator.store.advance(DAY_END)
    with client(emulator) as http:
        before = all_messages(http, emulator)
        emulator.store.advance(EMULATOR_NOW)
        after = all_messages(http, emulator)
    assert max(m["createdAt"] for m in before) < "2026-01-14"
    assert len(after) > len(before)


# -- filters --


def _receiver(m: dict[str, Any]) -> str:
    side = m["receiver"]
    return (
        side["contacts"][0]["identifierValue"] if "contacts" in side else side["connector"]["identifierValue"]
    )


def _sender(m: dict[str, Any]) -> str:
    side = m["sender"]
    return side["contact"]["identifierValue"] if "contact" in side else side["connector"]["identifierValue"]


def _country(m: dict[str, Any]) -> str | None:
    contact = m["receiver"]["contacts"][0] if m["direction"] == "outgoing" else m["sender"]["contact"]
    return contact.get("countryCode")


def _pick(messages: list[dict[str, Any]], predicate: Any) -> Any:
    return next(m for m in messages if predicate(m))


def filter_cases(
    messages: list[dict[str, Any]], line_or_telegram: set[str]
) -> list[tuple[str, dict[str, Any], Any]]:
    """(name, query params, predicate on Bird's JSON) for every documented filter, with values that match."""
    failed = [m for m in messages if "failure" in m]
    email = _pick(messages, lambda m: "email" in m.get("meta", {}))
    tagged = _pick(messages, lambda m: m.get("tags"))
    phone_out = _pick(messages, lambda m: m["direction"] == "outgoing" and _country(m) == "BR")
    incoming = _pick(messages, lambda m: m["direction"] == "incoming")
    two_ids = [messages[3]["id"], messages[200]["id"]]
    channels = sorted({m["channelId"] for m in messages})[:2]
    subject_part = email["meta"]["email"]["subject"][3:9].upper()
    return [
        ("channelId", {"channelId": channels}, lambda m: m["channelId"] in channels),
        ("platform", {"platform": ["line", "telegram"]}, lambda m: m["channelId"] in line_or_telegram),
        ("direction", {"direction": "incoming"}, lambda m: m["direction"] == "incoming"),
        ("id", {"id": ",".join(two_ids)}, lambda m: m["id"] in two_ids),
        ("from", {"from": _sender(incoming)}, lambda m: _sender(m) == _sender(incoming)),
        ("to", {"to": _receiver(phone_out)}, lambda m: _receiver(m) == _receiver(phone_out)),
        (
            "failureCode",
            {"failureCode": [15005, 15999]},
            lambda m: m.get("failure", {}).get("code") in (15005, 15999),
        ),
        (
            "failureSourceCode",
            {"failureSourceCode": "34"},
            lambda m: m.get("failure", {}).get("source", {}).get("code") == "34",
        ),
        (
            "failureSourceName",
            {"failureSourceName": failed[0]["failure"]["source"]["name"]},
            lambda m: (
                m.get("failure", {}).get("source", {}).get("name") == failed[0]["failure"]["source"]["name"]
            ),
        ),
        ("countryCode", {"countryCode": "br"}, lambda m: _country(m) == "BR"),
        (
            "tag",
            {"tag": [*tagged["tags"][:1], "no-such-tag"]},
            lambda m: tagged["tags"][0] in m.get("tags", []),
        ),
        (
            "emailSubject",
            {"emailSubject": subject_part},
            lambda m: subject_part.lower() in m.get("meta", {}).get("email", {}).get("subject", "").lower(),
        ),
    ]


def test_every_documented_filter_returns_exactly_the_matching_messages(
    emulator_module: RunningEmulator,
) -> None:
    channels = emulator_module.store.channels()
    line_or_telegram = {c["id"] for c in channels if c["platformId"] in ("line", "telegram")}
    with client(emulator_module) as http:
        messages = all_messages(http, emulator_module)
        for name, params, predicate in filter_cases(messages, line_or_telegram):
            found, _ = page_through(http, messages_path(emulator_module), {"limit": 1000, **params})
            expected = [m["id"] for m in messages if predicate(m)]
            assert expected, f"{name}: the case should select something"
            assert len(expected) < len(messages), f"{name}: the case should leave something out"
            assert [m["id"] for m in found] == expected, name


def test_channel_list_filters_on_navigator_and_batch(emulator_module: RunningEmulator) -> None:
    channel_id = channel_by_platform(emulator_module, "sms-messagebird")
    with client(emulator_module) as http:
        path = messages_path(emulator_module, channel_id)
        messages, _ = page_through(http, path, {"limit": 1000})
        navigated = _pick(messages, lambda m: "navigatorId" in m.get("meta", {}))["meta"]["navigatorId"]
        batch = _pick(messages, lambda m: m.get("origin", {}).get("type") == "batch")["origin"]["id"]
        by_navigator, _ = page_through(http, path, {"limit": 1000, "navigatorId": navigated})
        by_batch, _ = page_through(http, path, {"limit": 1000, "batchId": batch})
    assert [m["id"] for m in by_navigator] == [
        m["id"] for m in messages if m.get("meta", {}).get("navigatorId") == navigated
    ]
    assert [m["id"] for m in by_batch] == [
        m["id"] for m in messages if m.get("origin", {}).get("id") == batch
    ]
    assert by_navigator and by_batch


# -- end of list --


@pytest.mark.parametrize("end_signal", ["absent", "empty_string", "empty_page"])
def test_end_of_list_signal(end_signal: str) -> None:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    truth = store.ground_truth_ids(DAY_START, DAY_END)
    params = {"limit": 100, "startAt": iso(DAY_START), "endAt": iso(DAY_END)}
    with run_emulator(store=store, end_signal=end_signal) as emulator, client(emulator) as http:
        bodies = []
        token = None
        while True:
            body = http.get(
                messages_path(emulator), params={**params, **({"pageToken": token} if token else {})}
            )
            bodies.append(body.json())
            token = bodies[-1].get("nextPageToken")
            if not token:
                break
    assert {m["id"] for b in bodies for m in b["results"]} == truth
    last = bodies[-1]
    if end_signal == "absent":
        assert "nextPageToken" not in last and last["results"]
    elif end_signal == "empty_string":
        assert last["nextPageToken"] == "" and last["results"]
    else:
        assert last == {"results": []}
        assert bodies[-2]["results"] and bodies[-2]["nextPageToken"]


# -- errors --


def test_missing_or_wrong_access_key_is_401(emulator_module: RunningEmulator) -> None:
    path = emulator_module.base_url + messages_path(emulator_module)
    for headers in (
        {},
        {"Authorization": "AccessKey wrong"},
        {"Authorization": f"Bearer {emulator_module.access_key}"},
    ):
        response = httpx.get(path, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "Unauthorized"
    assert httpx.get(emulator_module.base_url + "/_emulator/stats").status_code == 401


def test_unknown_workspace_channel_or_message_is_404(emulator_module: RunningEmulator) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    sms = channel_by_platform(emulator_module, "sms-messagebird")
    email = channel_by_platform(emulator_module, "email-messagebird")
    ws = f"/workspaces/{emulator_module.workspace_id}"
    with client(emulator_module) as http:
        some_sms = http.get(messages_path(emulator_module, sms), params={"limit": 1}).json()["results"][0][
            "id"
        ]
        for path in (
            f"/workspaces/{unknown}/channels/messages",
            f"{ws}/channels/{unknown}/messages",
            f"{ws}/channels/{unknown}",
            f"{ws}/channels/{sms}/messages/{unknown}",
            f"{ws}/channels/{email}/messages/{some_sms}",  # exists, but on another channel
            f"{ws}/channels/{email}/messages/{some_sms}/interactions",
        ):
            response = http.get(path)
            assert response.status_code == 404, path
            assert response.json()["code"] == "NotFound"
            assert response.json()["message"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"id": "not-a-uuid"}, "id"),
        ({"channelId": "123"}, "channelId"),
        ({"startAt": "2026-01-13"}, "startAt"),
        ({"startAt": "2026-01-13T00:00:00"}, "startAt"),
        ({"endAt": "yesterday"}, "endAt"),
        ({"startAt": "2026-01-14T00:00:00Z", "endAt": "2026-01-13T00:00:00Z"}, "endAt"),
        ({"pageToken": "bm90IGEgdG9rZW4="}, "pageToken"),
        ({"pageToken": "x" * 8001}, "pageToken"),
        ({"direction": "sideways"}, "direction"),
        ({"reverse": "maybe"}, "reverse"),
        ({"platform": "s$"}, "platform"),
        ({"failureCode": "abc"}, "failureCode"),
    ],
)
def test_bad_parameters_are_422_with_bird_validation_details(
    emulator_module: RunningEmulator, params: dict[str, Any], field: str
) -> None:
    with client(emulator_module) as http:
        response = http.get(messages_path(emulator_module), params=params)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "ValidationError"
    assert body["message"]
    assert list(body["details"]) == [field]
    assert all(isinstance(problem, str) for problem in body["details"][field])


def test_a_page_token_from_another_window_is_rejected(emulator_module: RunningEmulator) -> None:
    with client(emulator_module) as http:
        token = http.get(
            messages_path(emulator_module),
            params={"limit": 1, "startAt": iso(DAY_START), "endAt": iso(DAY_END)},
        ).json()["nextPageToken"]
        later = {"startAt": iso(DAY_END), "endAt": iso(DAY_END + timedelta(days=1)), "pageToken": token}
        response = http.get(messages_path(emulator_module), params=later)
    assert response.status_code == 422
    assert "pageToken" in response.json()["details"]


# -- the message object --


def test_messages_have_birds_shape_and_a_realistic_mix(emulator_module: RunningEmulator) -> None:
    with client(emulator_module) as http:
        messages = all_messages(http, emulator_module)
    for m in messages:
        assert {
            "id",
            "channelId",
            "sender",
            "receiver",
            "status",
            "lastStatusAt",
            "createdAt",
            "updatedAt",
        } <= set(m)
        assert all(ISO_MS.match(m[f]) for f in ("createdAt", "updatedAt", "lastStatusAt"))
        assert m["status"] in STATUSES
        assert ("failure" in m) == (m["status"] in {"sending_failed", "delivery_failed", "rejected"})
        assert len(m.get("tags", [])) <= 10 and all(t == t.lower() for t in m.get("tags", []))
        assert ("body" in m) != ("template" in m)
    statuses = Counter(m["status"] for m in messages)
    assert {"delivered", "delivery_failed", "sending_failed", "rejected", "sent"} <= set(statuses)
    assert 0.05 < Counter(m["direction"] for m in messages)["incoming"] / len(messages) < 0.15
    codes = {m["failure"]["code"] for m in messages if "failure" in m}
    assert {15005, 15001, 15999} <= codes
    numbers = [
        c["identifierValue"]
        for m in messages
        if m["direction"] == "outgoing" and m["status"] != "rejected"
        for c in m["receiver"]["contacts"]
        if c["identifierKey"] == "phonenumber"
    ]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)
    assert len(set(numbers)) < len(numbers)  # a bounded pool of contacts: numbers repeat
    malformed = [m for m in messages if m.get("failure", {}).get("code") == 11002]
    assert all(m["status"] == "rejected" for m in malformed)
    assert any(not json.dumps(m.get("body"), ensure_ascii=False).isascii() for m in messages)  # emoji, CJK


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    def first_page(spec: DatasetSpec) -> bytes:
        store = MessageStore.generate(spec, now=EMULATOR_NOW)
        return store.page(
            start_ms=None, end_ms=None, after=None, oldest_first=False, limit=1000, keep=()
        ).items[0]

    assert first_page(EMULATOR_SPEC) == first_page(EMULATOR_SPEC)
    assert first_page(EMULATOR_SPEC) != first_page(
        DatasetSpec(seed=8, days=3, messages_per_day=300, end=EMULATOR_SPEC.end)
    )
    assert (
        MessageStore.generate(EMULATOR_SPEC).workspace_id
        == EMULATOR_SPEC.resolved_workspace_id()
        != DatasetSpec(seed=8).resolved_workspace_id()
    )


def test_weekdays_carry_more_traffic_than_weekends() -> None:
    spec = DatasetSpec(seed=7, days=7, messages_per_day=400, end=EMULATOR_SPEC.end)
    store = MessageStore.generate(spec, now=EMULATOR_NOW)
    per_day = Counter()
    for row in store.daily_counts(spec.start, datetime(2026, 1, 15, tzinfo=UTC)):
        per_day[datetime.fromisoformat(row["date"]).weekday()] += row["count"]
    assert min(per_day[d] for d in range(5)) > max(per_day[5], per_day[6])


# -- clock --


def test_advancing_the_clock_settles_statuses_and_reveals_interactions(emulator: RunningEmulator) -> None:
    store = emulator.store
    with client(emulator) as http:
        before = {m["id"]: m for m in all_messages(http, emulator)}
        interactions_before = {
            mid: len(
                http.get(
                    f"/workspaces/{emulator.workspace_id}/channels/{m['channelId']}/messages/{mid}/interactions"
                ).json()["results"]
            )
            for mid, m in before.items()
            if m["channelId"] == channel_by_platform(emulator, "email-messagebird")
            and m["direction"] == "outgoing"
        }
        store.advance(EMULATOR_NOW + timedelta(days=6))
        after = {m["id"]: m for m in all_messages(http, emulator)}
        interactions_after = {
            mid: http.get(
                f"/workspaces/{emulator.workspace_id}/channels/{before[mid]['channelId']}/messages/{mid}/interactions"
            ).json()["results"]
            for mid in interactions_before
        }
    pending = [mid for mid, m in before.items() if m["status"] not in FINAL_STATUSES]
    assert pending
    changed = [mid for mid in pending if after[mid]["status"] != before[mid]["status"]]
    assert changed
    assert all(after[mid]["updatedAt"] > before[mid]["updatedAt"] for mid in changed)
    assert all(after[mid]["lastStatusAt"] == after[mid]["updatedAt"] for mid in changed)
    assert sum(len(v) for v in interactions_after.values()) > sum(interactions_before.values())
    for mid, found in interactions_after.items():
        for interaction in found:
            assert interaction["type"] in INTERACTION_TYPES
            assert interaction["messageId"] == mid
            assert interaction["createdAt"] > before[mid]["createdAt"]
    assert store.message(changed[0])["status"] == after[changed[0]]["status"]


# -- sending --


def test_a_sent_message_is_accepted_then_listed(emulator: RunningEmulator) -> None:
    sms = channel_by_platform(emulator, "sms-messagebird")
    payload = {
        "receiver": {"contacts": [{"identifierValue": "+31612345678"}]},
        "body": {"type": "text", "text": {"text": "Hallo 👋"}},
        "tags": ["Demo"],
        "reference": "test-1",
    }
    with client(emulator) as http:
        response = http.post(messages_path(emulator, sms), json=payload)
        assert response.status_code == 202, response.text
        sent = response.json()
        listed = http.get(messages_path(emulator, sms), params={"id": sent["id"]}).json()["results"]
        invalid = http.post(messages_path(emulator, sms), json={"receiver": {"contacts": []}, "meta": "x"})
    assert sent["status"] == "accepted"
    assert sent["createdAt"] == "2026-01-15T06:00:00.000Z"
    assert sent["tags"] == ["demo"]
    assert sent["receiver"]["contacts"][0]["countryCode"] == "NL"
    assert [m["id"] for m in listed] == [sent["id"]]
    assert invalid.status_code == 422
    assert set(invalid.json()["details"]) == {"receiver.contacts", "body", "meta"}


# -- faults --


def test_429_and_5xx_faults_are_served_with_birds_bodies_and_counted(emulator: RunningEmulator) -> None:
    emulator.faults.update({"error_429_rate": 1.0, "retry_after_s": 0.25})
    with client(emulator) as http:
        limited = http.get(messages_path(emulator))
        emulator.faults.update({"error_429_rate": 0.0, "error_5xx_rate": 1.0})
        failing = http.get(messages_path(emulator))
        emulator.faults.update({"error_5xx_rate": 0.0})
        fine = http.get(messages_path(emulator))
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "0.25"
    assert limited.json()["code"] == "TooManyRequests"
    assert failing.status_code in (500, 502, 503)
    assert fine.status_code == 200
    stats = emulator.stats.to_dict()
    assert (stats["served_429"], stats["served_5xx"], stats["gets_total"]) == (1, 1, 3)


def test_dropped_connections_and_truncated_bodies_break_the_client_side(emulator: RunningEmulator) -> None:
    with client(emulator) as http:
        emulator.faults.update({"drop_connection_rate": 1.0})
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.get(messages_path(emulator), params={"limit": 100})
        emulator.faults.update({"drop_connection_rate": 0.0, "truncate_json_rate": 1.0})
        truncated = http.get(messages_path(emulator), params={"limit": 100})
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert emulator.stats.to_dict()["drops"] == emulator.stats.to_dict()["truncated"] == 1


def test_rate_limit_refuses_gets_beyond_the_per_second_budget(emulator: RunningEmulator) -> None:
    emulator.faults.update({"rate_limit_per_s": 3})
    with client(emulator) as http:
        statuses = [http.get(messages_path(emulator), params={"limit": 1}).status_code for _ in range(30)]
    assert statuses[:3] == [200, 200, 200]
    assert statuses.count(429) > 0
    assert set(statuses) == {200, 429}
    assert emulator.stats.to_dict()["served_429"] == statuses.count(429)


def test_latency_delays_every_get(emulator: RunningEmulator) -> None:
    emulator.faults.update({"latency_ms": 60})
    with client(emulator) as http:
        response = http.get(messages_path(emulator), params={"limit": 1})
    assert response.elapsed >= timedelta(milliseconds=60)


def test_live_inserts_add_messages_to_the_window_being_paged(emulator: RunningEmulator) -> None:
    truth_before = emulator.store.ground_truth_ids(DAY_START, DAY_END)
    emulator.faults.update({"live_inserts_per_page": 3})
    with client(emulator) as http:
        found, requests = page_through(
            http, messages_path(emulator), {"limit": 100, "startAt": iso(DAY_START), "endAt": iso(DAY_END)}
        )
    truth_after = emulator.store.ground_truth_ids(DAY_START, DAY_END)
    inserted = truth_after - truth_before
    assert len(inserted) == 3 * (requests - 1)  # every request that carried a pageToken
    assert emulator.stats.to_dict()["live_inserts"] == len(inserted)
    assert {m["id"] for m in found} <= truth_after
    assert len({m["id"] for m in found}) == len(found)


def test_fault_draws_are_reproducible_from_the_seed() -> None:
    async def statuses(seed: int) -> list[int]:
        store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
        faults = Faults(error_429_rate=0.3, error_5xx_rate=0.2, seed=seed)
        app = create_app(store, access_key="k", faults=faults)
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "AccessKey k"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://emulator", headers=headers
        ) as http:
            path = f"/workspaces/{store.workspace_id}/channels/messages"
            return [(await http.get(path, params={"limit": 1})).status_code for _ in range(40)]

    first, again, other = (asyncio.run(statuses(seed)) for seed in (1, 1, 2))
    assert first == again != other
    assert {200, 429} <= set(first)


def test_stats_report_the_busiest_sliding_second() -> None:
    stats = RequestStats()
    stats.arrivals = [0.0, 0.5, 0.9, 1.2, 1.3, 1.4, 3.0, 3.1]
    assert stats.max_gets_in() == 5  # (0.4, 1.4]: 0.5, 0.9, 1.2, 1.3, 1.4
    assert stats.max_gets_in(3.0) == 7  # (0.1, 3.1]
    stats.arrivals = [0.0, 1.0, 2.0]
    assert stats.max_gets_in() == 1
    assert RequestStats().max_gets_in() == 0


# -- admin, withholding, metrics --


def test_admin_endpoints_steer_an_emulator_over_http(emulator: RunningEmulator) -> None:
    with client(emulator) as http:
        assert http.put("/_emulator/faults", json={"error_429_rate": 1.0}).json()["error_429_rate"] == 1.0
        assert http.get(messages_path(emulator)).status_code == 429
        assert http.put("/_emulator/faults", json={"error_429_rate": 0}).status_code == 200
        assert http.put("/_emulator/faults", json={"no_such_fault": 1}).status_code == 422
        assert http.put("/_emulator/faults", json={"error_5xx_rate": "lots"}).status_code == 422
        assert emulator.faults.error_5xx_rate == 0.0
        truth = http.get("/_emulator/ground-truth", params={"startAt": iso(DAY_START), "endAt": iso(DAY_END)})
        moved = http.post("/_emulator/advance", json={"to": "2026-01-16T00:00:00Z"})
        stats = http.get("/_emulator/stats").json()
    assert set(truth.json()["ids"]) == emulator.store.ground_truth_ids(DAY_START, DAY_END)
    assert moved.json() == {"now": "2026-01-16T00:00:00.000Z"}
    assert emulator.store.now == datetime(2026, 1, 16, tzinfo=UTC)
    assert stats["served_429"] == 1 and stats["gets_total"] == 1  # admin calls are not counted


def test_withheld_messages_leave_the_lists_but_not_the_truth_or_metrics(emulator: RunningEmulator) -> None:
    store = emulator.store
    hidden = sorted(store.ground_truth_ids(DAY_START, DAY_END))[:5]
    metrics_before = store.daily_counts(DAY_START, DAY_END)
    store.withhold(hidden)
    with client(emulator) as http:
        found, _ = page_through(
            http, messages_path(emulator), {"limit": 1000, "startAt": iso(DAY_START), "endAt": iso(DAY_END)}
        )
    assert {m["id"] for m in found} == store.ground_truth_ids(DAY_START, DAY_END) - set(hidden)
    assert store.daily_counts(DAY_START, DAY_END) == metrics_before
    assert store.message(hidden[0])["id"] == hidden[0]


def test_metrics_count_every_message_by_day_channel_and_status(emulator_module: RunningEmulator) -> None:
    start, end = datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 15, tzinfo=UTC)
    with client(emulator_module) as http:
        rows = http.get(
            f"/workspaces/{emulator_module.workspace_id}/reporting/channels/metrics",
            params={"periodStart": iso(start), "periodEnd": iso(end), "groupBy": "day"},
        ).json()["results"]
        messages, _ = page_through(
            http, messages_path(emulator_module), {"limit": 1000, "startAt": iso(start), "endAt": iso(end)}
        )
        bad = http.get(
            f"/workspaces/{emulator_module.workspace_id}/reporting/channels/metrics",
            params={"periodStart": iso(start), "groupBy": "week"},
        )
    expected = Counter((m["createdAt"][:10], m["channelId"], m["status"]) for m in messages)
    assert {(r["date"], r["channelId"], r["status"]): r["count"] for r in rows} == dict(expected)
    assert sum(r["count"] for r in rows) == len(emulator_module.store.ground_truth_ids(start, end))
    assert {r["date"] for r in rows} == {"2026-01-12", "2026-01-13", "2026-01-14"}
    assert bad.status_code == 422 and set(bad.json()["details"]) == {"periodEnd", "groupBy"}


def test_channels_list_and_get(emulator_module: RunningEmulator) -> None:
    ws = f"/workspaces/{emulator_module.workspace_id}"
    with client(emulator_module) as http:
        first = http.get(f"{ws}/channels", params={"limit": 4}).json()
        rest = http.get(f"{ws}/channels", params={"limit": 4, "pageToken": first["nextPageToken"]}).json()
        sms = http.get(f"{ws}/channels", params={"platform": "sms-messagebird", "limit": 100}).json()
        one = http.get(f"{ws}/channels/{sms['results'][0]['id']}").json()
    listed = first["results"] + rest["results"]
    assert len(listed) == len({c["id"] for c in listed}) == 7
    assert "nextPageToken" not in rest
    assert {c["platformId"] for c in listed} == {
        "sms-messagebird",
        "whatsapp",
        "email-messagebird",
        "rcs-google",
        "line",
        "telegram",
    }
    assert len(sms["results"]) == 2
    assert one == sms["results"][0]
