"""The Bird client's offline contract: request validation, parameter rendering, settings, errors and decoding.

Protects: bad requests fail before anything is sent (limit 0/1001, non-UUID ids, naive datetimes, endAt
before startAt, bad platform/direction, filters of the other list kind); parameters go out as Bird expects
(repeated keys, RFC 3339 UTC milliseconds with Z, windows rounded so no message is lost or gained); settings
come from the environment at call time with clear errors and never show the key; Bird's error bodies become
typed errors; backoff grows exponentially with jitter and a Retry-After replaces it; pages keep each message's
JSON byte for byte and treat a missing or empty nextPageToken as the end.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import tenacity

from pipelines.bird.errors import (
    AuthenticationError,
    BirdAPIError,
    ConfigError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    ValidationError,
    api_error,
)
from pipelines.bird.models import (
    decode_channel_page,
    decode_interactions,
    decode_message,
    decode_message_page,
)
from pipelines.bird.query import MessageQuery, format_datetime
from pipelines.bird.retry import RetryPolicy, parse_retry_after
from pipelines.bird.settings import BirdSettings, Secret

WS = "6f1c2a34-9f0e-4a4e-9d51-3f0c1b2a7e10"
CH = "0b9d3e4f-1a2b-4c5d-8e9f-a0b1c2d3e4f5"
MSG = "67312601-d865-4b5a-a2df-46ddb9d66e08"
KEY = "sEcReT-aCcEsS-kEy-0123456789"
START = datetime(2026, 11, 19, tzinfo=UTC)
END = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": True}, "limit"),
        ({"ids": ("not-a-uuid",)}, "ids must be a UUID"),
        ({"channel_ids": (CH, "123")}, "channel_ids must be a UUID"),
        ({"batch_id": "x"}, "batch_id must be a UUID"),
        ({"start_at": datetime(2026, 11, 19)}, "timezone-aware"),
        ({"end_at": datetime(2026, 11, 19)}, "timezone-aware"),
        ({"start_at": END, "end_at": START}, "before start_at"),
        ({"platform": "sm"}, "platform must match"),
        ({"platform": ("sms-messagebird", "bad platform")}, "platform must match"),
        ({"direction": "inbound"}, "direction must be one of"),
        ({"failure_codes": ("15005",)}, "failure_codes must be integers"),
        ({"tags": ("",)}, "non-empty strings"),
        ({"email_subject": ""}, "email_subject"),
    ],
)
def test_invalid_queries_fail_before_sending(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment):
        MessageQuery(**kwargs)


def test_limit_bounds_are_inclusive() -> None:
    assert MessageQuery(limit=1).to_params("workspace") == [("limit", "1")]
    assert MessageQuery(limit=1000).to_params("channel") == [("limit", "1000")]


def test_every_filter_is_rendered_with_bird_names_and_repeated_keys() -> None:
    query = MessageQuery(
        limit=50,
        reverse=True,
        platform=["sms-messagebird", "whatsapp"],
        direction="outgoing",
        ids=[MSG.upper()],
        start_at=START,
        end_at=END,
        from_="+31612345678",
        to=["+31612345678", "+14155550100"],
        failure_codes=[15005, 12003],
        failure_source_codes=["1"],
        failure_source_names=["sms-messagebird"],
        country_codes=["NL", "US"],
        tags=["promo", "otp"],
        email_subject="Your order",
        channel_ids=[CH],
    )
    assert query.to_params("workspace") == [
        ("limit", "50"),
        ("reverse", "true"),
        ("channelId", CH),
        ("platform", "sms-messagebird"),
        ("platform", "whatsapp"),
        ("direction", "outgoing"),
        ("id", MSG),
        ("startAt", "2026-11-19T00:00:00.000Z"),
        ("endAt", "2026-11-20T00:00:00.000Z"),
        ("from", "+31612345678"),
        ("to", "+31612345678"),
        ("to", "+14155550100"),
        ("failureCode", "15005"),
        ("failureCode", "12003"),
        ("failureSourceCode", "1"),
        ("failureSourceName", "sms-messagebird"),
        ("countryCode", "NL"),
        ("countryCode", "US"),
        ("tag", "promo"),
        ("tag", "otp"),
        ("emailSubject", "Your order"),
    ]


def test_channel_only_filters_are_refused_on_the_workspace_list_and_vice_versa() -> None:
    channel_query = MessageQuery(navigator_id=MSG, batch_id=MSG)
    assert ("batchId", MSG) in channel_query.to_params("channel")
    assert ("navigatorId", MSG) in channel_query.to_params("channel")
    with pytest.raises(InvalidRequestError, match="navigator_id filters only the channel"):
        channel_query.to_params("workspace")
    with pytest.raises(InvalidRequestError, match="channel_ids filters only the workspace"):
        MessageQuery(channel_ids=[CH]).to_params("channel")


def test_datetimes_go_out_as_utc_milliseconds_rounded_up() -> None:
    amsterdam = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2026, 11, 19, 1, 0, tzinfo=amsterdam), "t") == "2026-11-19T00:00:00.000Z"
    # Bird's timestamps are whole milliseconds: [12:00:00.000500, ...) holds the same messages as [.001, ...).
    assert (
        format_datetime(datetime(2026, 11, 19, 12, 0, 0, 500, tzinfo=UTC), "t") == "2026-11-19T12:00:00.001Z"
    )
    assert (
        format_datetime(datetime(2026, 11, 19, 12, 0, 0, 999_001, tzinfo=UTC), "t")
        == "2026-11-19T12:00:01.000Z"
    )
    assert (
        format_datetime(datetime(2026, 11, 19, 12, 0, 0, 7000, tzinfo=UTC), "t") == "2026-11-19T12:00:00.007Z"
    )


def test_an_empty_window_is_allowed_and_false_reverse_is_not_sent() -> None:
    assert MessageQuery(start_at=START, end_at=START, reverse=False).to_params("workspace") == [
        ("limit", "1000"),
        ("startAt", "2026-11-19T00:00:00.000Z"),
        ("endAt", "2026-11-19T00:00:00.000Z"),
    ]


def test_settings_from_env_read_at_call_time_and_missing_values_are_clear() -> None:
    settings = BirdSettings.from_env({"BIRD_ACCESS_KEY": KEY, "BIRD_WORKSPACE_ID": WS.upper()})
    assert settings.api_url == "https://api.bird.com"
    assert settings.workspace_id == WS
    assert settings.access_key.reveal() == KEY
    with pytest.raises(ConfigError, match="BIRD_ACCESS_KEY and BIRD_WORKSPACE_ID not set"):
        BirdSettings.from_env({"BIRD_ACCESS_KEY": "  ", "BIRD_API_URL": "http://127.0.0.1:1"})
    with pytest.raises(ConfigError, match="BIRD_WORKSPACE_ID not set"):
        BirdSettings.from_env({"BIRD_ACCESS_KEY": KEY, "BIRD_WORKSPACE_ID": ""})
    with pytest.raises(ConfigError, match="workspace_id must be a UUID"):
        BirdSettings(access_key=KEY, workspace_id="my-workspace")
    with pytest.raises(ConfigError, match="api_url"):
        BirdSettings(access_key=KEY, workspace_id=WS, api_url="api.bird.com")
    with pytest.raises(ConfigError, match="empty"):
        Secret("")


def test_settings_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIRD_ACCESS_KEY", KEY)
    monkeypatch.setenv("BIRD_WORKSPACE_ID", WS)
    monkeypatch.setenv("BIRD_API_URL", "http://127.0.0.1:8080")
    assert BirdSettings.from_env().api_url == "http://127.0.0.1:8080"


def test_the_access_key_never_shows_in_repr_or_str() -> None:
    settings = BirdSettings(access_key=KEY, workspace_id=WS)
    for text in (
        repr(settings),
        str(settings),
        repr(settings.access_key),
        str(settings.access_key),
        f"{settings}",
    ):
        assert KEY not in text
    assert "**********" in repr(settings)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (422, ValidationError),
        (429, RateLimitedError),
        (500, ServerError),
        (503, ServerError),
        (409, BirdAPIError),
    ],
)
def test_error_statuses_map_to_typed_errors(status: int, error_type: type[BirdAPIError]) -> None:
    error = api_error(status, b'{"code":"Code","message":"said Bird"}', method="GET", path="/workspaces/x")
    assert type(error) is error_type
    assert (error.status_code, error.code, error.message) == (status, "Code", "said Bird")
    assert str(error) == f"GET /workspaces/x -> HTTP {status} Code: said Bird"


def test_validation_error_keeps_details_and_non_json_bodies_still_read_well() -> None:
    body = b'{"code":"ValidationError","message":"bad params","details":{"limit":["must be <= 1000"]}}'
    error = api_error(422, body, method="GET", path="/p")
    assert isinstance(error, ValidationError)
    assert error.details == {"limit": ["must be <= 1000"]}
    assert str(error) == "GET /p -> HTTP 422 ValidationError: bad params [limit: must be <= 1000]"
    proxy = api_error(502, b"<html>\n<b>Bad gateway</b>\n</html>", method="GET", path="/p")
    assert isinstance(proxy, ServerError)
    assert "\n" not in str(proxy)
    assert "Bad gateway" in str(proxy)
    proxy.attempts = 8
    assert str(proxy).endswith("(gave up after 8 attempts)")


def test_retry_after_in_seconds_or_http_date() -> None:
    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Fri, 20 Nov 2026 12:00:05 GMT", now=now) == 5.0
    assert parse_retry_after("Fri, 20 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None


MESSAGE_JSON = (
    b'{"id":"%s","channelId":"%s","status":"brand_new_status","direction":"outgoing",'
    b'"createdAt":"2026-11-19T10:00:00.123Z","updatedAt":"2026-11-19T10:05:00.000Z",'
    b'"lastStatusAt":"2026-11-19T10:05:00.000Z","futureField":{"x":[1, 2]},'
    b'"failure":{"code":15999,"source":{"code":"1","name":"sms-messagebird"}},'
    b'"receiver":{"contacts":[{"identifierValue":"+31612345678","countryCode":"NL"}]},'
    b'"body":{"type":"text","text":{"text":"h\\u00e9llo \xf0\x9f\x90\xa6"}}}'
) % (MSG.encode(), CH.encode())


def test_a_page_keeps_each_message_json_exactly_as_served() -> None:
    body = b'{"results":[ %s ,\n %s],"nextPageToken":"WzE3MzIyMTIxNTU1NTAsIjY3MzEyNjAxIl0"}' % (
        MESSAGE_JSON,
        MESSAGE_JSON,
    )
    page = decode_message_page(body)
    assert page.raw == [MESSAGE_JSON, MESSAGE_JSON]
    assert page.next_page_token == "WzE3MzIyMTIxNTU1NTAsIjY3MzEyNjAxIl0"
    key = page.keys[0]
    assert (key.id, key.channel_id, key.status, key.direction) == (MSG, CH, "brand_new_status", "outgoing")
    assert key.created_at == datetime(2026, 11, 19, 10, 0, 0, 123000, tzinfo=UTC)


@pytest.mark.parametrize("tail", [b"", b',"nextPageToken":""', b',"nextPageToken":null'])
def test_a_missing_or_empty_next_page_token_is_the_end(tail: bytes) -> None:
    assert decode_message_page(b'{"results":[]%s}' % tail).next_page_token is None
    assert decode_channel_page(b'{"results":[]%s}' % tail).next_page_token is None


def test_message_model_is_tolerant_of_unknown_fields_and_values() -> None:
    message = decode_message(MESSAGE_JSON)
    assert message.status == "brand_new_status"
    assert message.failure is not None and message.failure.code == 15999
    assert message.failure.source is not None and message.failure.source.code == "1"
    assert message.receiver is not None and message.receiver.contacts is not None
    assert message.receiver.contacts[0].country_code == "NL"
    assert message.body == {"type": "text", "text": {"text": "héllo 🐦"}}


def test_interactions_decode_typed_and_raw() -> None:
    item = (
        b'{"id":"i1","messageId":"%s","channelId":"%s","type":"opened","createdAt":"2026-11-19T11:00:00.000Z",'
        b'"metadata":{"link":{"url":"https://example.com"}}}'
    ) % (MSG.encode(), CH.encode())
    interactions = decode_interactions(b'{"results":[%s]}' % item)
    assert interactions.raw == [item]
    assert interactions.items[0].type == "opened"
    assert interactions.items[0].metadata == {"link": {"url": "https://example.com"}}


def _state_after(error: Exception, attempt_number: int) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt_number
    state.set_exception((type(error), error, None))
    return state


def test_backoff_grows_exponentially_with_bounded_jitter_and_retry_after_wins() -> None:
    policy = RetryPolicy(initial=0.5, maximum=30.0, jitter=1.0)
    server_error = api_error(503, b"{}", method="GET", path="/p")
    for attempt, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0)]:
        waits = [policy.wait_seconds(_state_after(server_error, attempt)) for _ in range(50)]
        assert all(base <= wait <= base + 1.0 for wait in waits)
        assert len(set(waits)) > 1, "jittered"
    assert policy.wait_seconds(_state_after(server_error, 12)) == 30.0
    throttled = api_error(429, b"{}", method="GET", path="/p", retry_after=2.5)
    assert policy.wait_seconds(_state_after(throttled, 5)) == 2.5
    assert (
        policy.wait_seconds(_state_after(api_error(429, b"{}", method="GET", path="/p", retry_after=90), 1))
        == 30
    )
