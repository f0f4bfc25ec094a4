"""flatten_messages turns Bird's message JSON into the `messages` contract: every column, one row per id.

Protects: the exact MESSAGE_SCHEMA, incoming vs outgoing sides, missing or null optional objects, unknown
statuses and fields kept, unicode, countries from phone numbers (+1 US vs CA, unparseable kept with null),
offsets normalised to UTC, and deduplication to the latest updated_at. The fast paths (Bird's own timestamp
form, ids that are not repeated) must agree with the general format and a full sort on any input.
"""

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal, assert_series_equal

from transforms.messages import ISO_TIMESTAMP_FORMAT, flatten_messages, latest_version, parse_timestamp
from transforms.schema import CHANNEL_SCHEMA, MESSAGE_SCHEMA, RAW_MESSAGE_SCHEMA, UTC_TS

INGESTED_AT = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
CHANNELS = pl.LazyFrame(
    {
        "workspace_id": ["ws-1"],
        "channel_id": ["ch-sms"],
        "platform": ["sms-messagebird"],
        "name": ["SMS NL"],
        "identifier": ["+3197010000001"],
        "status": ["active"],
        "connector_id": ["conn-1"],
    },
    schema=CHANNEL_SCHEMA,
)


def bird_message(**fields: Any) -> dict[str, Any]:
    """A failed outgoing SMS as Bird serves it; keyword arguments replace (or, with None, null) fields."""
    message = {
        "id": "msg-1",
        "channelId": "ch-sms",
        "sender": {"connector": {"id": "conn-1", "identifierValue": "+3197010000001"}},
        "receiver": {
            "contacts": [
                {
                    "id": "contact-1",
                    "identifierKey": "phonenumber",
                    "identifierValue": "+31612345678",
                    "countryCode": "NL",
                }
            ]
        },
        "status": "delivery_failed",
        "reason": "details: unknown subscriber; reason: unknown_subscriber; code: 1",
        "direction": "outgoing",
        "lastStatusAt": "2026-11-20T10:00:04.250Z",
        "createdAt": "2026-11-20T10:00:00.000Z",
        "updatedAt": "2026-11-20T10:00:05.000Z",
        "details": "unknown subscriber",
        "failure": {
            "code": 15005,
            "description": "Unknown subscriber",
            "source": {"code": "1", "name": "sms-messagebird"},
        },
        "tags": ["promo", "black-friday"],
        "reference": "order-42",
        "parts": [{"platformReference": "p-1"}, {"platformReference": "p-2"}],
        "scheduledFor": None,
        "meta": {"campaign": {"id": "camp-1", "name": "Black Friday"}, "email": {"subject": "Hi"}},
        "body": {"type": "text", "text": {"text": "Hallo 👋"}},
    }
    message.update(fields)
    return message


def raw_messages(*messages: dict[str, Any], ingested_at: datetime = INGESTED_AT) -> pl.LazyFrame:
    """raw_messages rows as the lander writes them: key columns typed, the object kept as JSON."""
    return pl.LazyFrame(
        [
            {
                "workspace_id": "ws-1",
                "id": message["id"],
                "channel_id": message["channelId"],
                "status": message["status"],
                "direction": message.get("direction"),
                "created_at": datetime.fromisoformat(message["createdAt"]),
                "updated_at": datetime.fromisoformat(message["updatedAt"]),
                "raw": json.dumps(message, ensure_ascii=False),
                "ingested_at": ingested_at,
            }
            for message in messages
        ],
        schema=RAW_MESSAGE_SCHEMA,
    )


def flatten(*messages: dict[str, Any]) -> pl.DataFrame:
    return flatten_messages(raw_messages(*messages), CHANNELS).collect()


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_every_column_of_a_failed_outgoing_sms() -> None:
    expected = pl.DataFrame(
        {
            "id": ["msg-1"],
            "workspace_id": ["ws-1"],
            "channel_id": ["ch-sms"],
            "platform": ["sms-messagebird"],
            "direction": ["outgoing"],
            "status": ["delivery_failed"],
            "is_known_status": [True],
            "reason": ["details: unknown subscriber; reason: unknown_subscriber; code: 1"],
            "details": ["unknown subscriber"],
            "created_at": [utc(2026, 11, 20, 10, 0, 0)],
            "updated_at": [utc(2026, 11, 20, 10, 0, 5)],
            "last_status_at": [datetime(2026, 11, 20, 10, 0, 4, 250_000, tzinfo=UTC)],
            "scheduled_for": [None],
            "sender_identifier": ["+3197010000001"],
            "receiver_identifier": ["+31612345678"],
            "receiver_kind": ["phone"],
            "country_code": ["NL"],
            "body_type": ["text"],
            "parts_count": [2],
            "tags": [["promo", "black-friday"]],
            "reference": ["order-42"],
            "batch_id": [None],
            "failure_code": [15005],
            "failure_description": ["Unknown subscriber"],
            "failure_source_code": ["1"],
            "failure_source_name": ["sms-messagebird"],
            "is_final": [True],
            "delivery_seconds": [4.25],
        },
        schema=MESSAGE_SCHEMA,
    )
    assert_frame_equal(flatten(bird_message()), expected)


def test_incoming_message_reads_the_contact_from_the_sender() -> None:
    incoming = bird_message(
        direction="incoming",
        status="delivered",
        sender={
            "contact": {"id": "c-9", "identifierKey": "phonenumber", "identifierValue": "+4915112345678"}
        },
        receiver={"connector": {"id": "conn-1", "identifierValue": "+3197010000001"}},
        failure=None,
    )
    row = flatten(incoming).row(0, named=True)
    assert row["sender_identifier"] == "+4915112345678"
    assert row["receiver_identifier"] == "+3197010000001"
    assert row["country_code"] == "DE"
    assert row["is_final"] is True
    assert row["delivery_seconds"] is None  # only outgoing messages have a delivery time


def test_missing_and_null_optional_objects_become_nulls() -> None:
    required_only = {
        key: bird_message()[key]
        for key in ("id", "channelId", "sender", "status", "lastStatusAt", "createdAt", "updatedAt")
    }
    required_only["receiver"] = {"contacts": []}
    nulls = bird_message(
        id="msg-2",
        failure=None,
        tags=None,
        parts=None,
        body=None,
        meta=None,
        receiver=None,
        reason=None,
        reference=None,
    )
    flat = flatten(required_only, nulls).sort("id")
    for column in (
        "receiver_identifier",
        "receiver_kind",
        "country_code",
        "body_type",
        "parts_count",
        "reference",
        "failure_code",
        "failure_description",
        "failure_source_code",
        "failure_source_name",
        "reason",
    ):
        assert flat[column].to_list() == [None, None], column
    assert flat["tags"].to_list() == [[], []]
    assert flat["direction"].to_list() == [None, "outgoing"]
    assert flat.schema == MESSAGE_SCHEMA


def test_unknown_status_body_type_and_fields_are_kept() -> None:
    novel = bird_message(
        status="quantum_entangled",
        body={"type": "hologram", "hologram": {"depth": 3}},
        brandNewField={"nested": [1, 2, 3]},
    )
    row = flatten(novel).row(0, named=True)
    assert (row["status"], row["is_known_status"], row["is_final"]) == ("quantum_entangled", False, False)
    assert row["body_type"] == "hologram"
    assert row["delivery_seconds"] is None


def test_unicode_text_survives() -> None:
    text = "Привет 👋 你好 — ünïcødé"
    row = flatten(bird_message(reason=text, details=text, reference=text, tags=["é", "🎉"])).row(
        0, named=True
    )
    assert (row["reason"], row["details"], row["reference"], row["tags"]) == (text, text, text, ["é", "🎉"])


@pytest.mark.parametrize(
    ("identifier_key", "identifier", "kind", "country"),
    [
        ("phonenumber", "+14155550123", "phone", "US"),
        ("phonenumber", "+14165550123", "phone", "CA"),
        ("phonenumber", "+32470123456", "phone", "BE"),
        ("phonenumber", "+31 6 1234 5678", "phone", "NL"),
        ("phonenumber", "not a number", "phone", None),
        ("phonenumber", "+99912345678", "phone", None),
        ("phonenumber", "+80012345678", "phone", None),
        ("emailaddress", "jan@example.nl", "email", None),
        ("whatsappid", "3161234", "other", None),
        (None, "+33612345678", "phone", "FR"),
    ],
)
def test_receiver_kind_and_country(
    identifier_key: str | None, identifier: str, kind: str, country: str
) -> None:
    contact = {"id": "c", "identifierKey": identifier_key, "identifierValue": identifier}
    row = flatten(bird_message(receiver={"contacts": [contact]})).row(0, named=True)
    assert (row["receiver_identifier"], row["receiver_kind"], row["country_code"]) == (
        identifier,
        kind,
        country,
    )


def test_offsets_are_normalised_to_utc() -> None:
    shifted = bird_message(
        createdAt="2026-11-20T12:00:00+02:00",
        updatedAt="2026-11-20T12:00:09+02:00",
        lastStatusAt="2026-11-20T12:00:07.5+02:00",
        scheduledFor="2026-11-20T04:30:00-05:00",
    )
    row = flatten(shifted).row(0, named=True)
    assert row["created_at"] == utc(2026, 11, 20, 10, 0, 0)
    assert row["last_status_at"] == datetime(2026, 11, 20, 10, 0, 7, 500_000, tzinfo=UTC)
    assert row["scheduled_for"] == utc(2026, 11, 20, 9, 30, 0)
    assert row["delivery_seconds"] == 7.5


def test_keeps_the_latest_version_of_each_message() -> None:
    versions = [
        bird_message(status="sent", updatedAt="2026-11-20T10:00:01Z", failure=None),
        bird_message(status="delivery_failed", updatedAt="2026-11-20T10:00:05Z"),
        bird_message(status="accepted", updatedAt="2026-11-20T10:00:00Z", failure=None),
        bird_message(id="msg-2", status="delivered", failure=None),
    ]
    flat = flatten(*versions).sort("id")
    assert flat.select("id", "status").rows() == [("msg-1", "delivery_failed"), ("msg-2", "delivered")]


def test_same_updated_at_prefers_the_later_ingestion_then_the_later_row() -> None:
    first, second = bird_message(reference="first"), bird_message(reference="second")
    later_ingested = pl.concat(
        [raw_messages(second, ingested_at=utc(2026, 11, 22)), raw_messages(first, ingested_at=INGESTED_AT)]
    )
    assert flatten_messages(later_ingested, CHANNELS).collect()["reference"].to_list() == ["second"]
    assert flatten(first, second)["reference"].to_list() == ["second"]


def test_platform_comes_from_the_channel_and_unknown_channels_give_null() -> None:
    duplicated_channels = pl.concat([CHANNELS, CHANNELS])
    raw = raw_messages(bird_message(), bird_message(id="msg-2", channelId="ch-unknown"))
    flat = flatten_messages(raw, duplicated_channels).collect().sort("id")
    assert flat.select("id", "platform").rows() == [("msg-1", "sms-messagebird"), ("msg-2", None)]


def test_delivery_seconds_only_for_final_outgoing_messages() -> None:
    flat = flatten(
        bird_message(id="delivered", status="delivered", failure=None),
        bird_message(id="failed"),
        bird_message(id="sent", status="sent", failure=None),
    ).sort("id")
    assert flat.select("id", "delivery_seconds").rows() == [
        ("delivered", 4.25),
        ("failed", 4.25),
        ("sent", None),
    ]


def test_batch_id_and_template_body() -> None:
    templated = bird_message(batchId="batch-7", body=None, template={"projectId": "p", "version": "v"})
    row = flatten(templated).row(0, named=True)
    assert (row["batch_id"], row["body_type"]) == ("batch-7", "template")


def test_an_empty_partition_gives_an_empty_contract_frame() -> None:
    empty = flatten_messages(pl.LazyFrame(schema=RAW_MESSAGE_SCHEMA), CHANNELS).collect()
    assert_frame_equal(empty, pl.DataFrame(schema=MESSAGE_SCHEMA))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:00:04.250Z", datetime(2026, 11, 20, 10, 0, 4, 250_000, tzinfo=UTC)),
        ("2026-11-20T12:00:04.250+02:00", datetime(2026, 11, 20, 10, 0, 4, 250_000, tzinfo=UTC)),
        ("2026-11-20T10:00:04.25Z", datetime(2026, 11, 20, 10, 0, 4, 250_000, tzinfo=UTC)),
        ("2026-11-20T10:00:04.123456Z", datetime(2026, 11, 20, 10, 0, 4, 123_456, tzinfo=UTC)),
        ("2026-11-20T10:00:04Z", utc(2026, 11, 20, 10, 0, 4)),
        ("2026-02-30T10:00:04.250Z", None),
        ("--026-11-20T10:00:04.250Z", None),  # the fast parser alone would read year 26
        (None, None),
    ],
)
def test_parse_timestamp(text: str | None, expected: datetime | None) -> None:
    parsed = pl.select(parse_timestamp(pl.lit(text, dtype=pl.String))).item()
    assert parsed == expected


def edited(text: str, edits: list[tuple[int, str]]) -> str:
    """`text` with the character at each position replaced."""
    replacements = dict(edits)
    return "".join(replacements.get(position, character) for position, character in enumerate(text))


# Bird's form with up to three characters replaced: near misses of the fast parser's fixed width and format.
NEAR_BIRD_TIMESTAMPS = st.builds(
    edited,
    st.sampled_from(["2026-11-20T10:00:04.250Z", "2016-12-31T23:59:60.999Z", "2024-02-29T00:00:00.000Z"]),
    st.lists(st.tuples(st.integers(0, 23), st.sampled_from("0123456789-+:.TZz ")), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(NEAR_BIRD_TIMESTAMPS | st.text("0123456789-+:.TZ", max_size=30), min_size=1, max_size=20))
def test_parse_timestamp_agrees_with_the_general_iso_format(texts: list[str]) -> None:
    text = pl.col("text")
    general = text.str.to_datetime(ISO_TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    parsed = pl.DataFrame({"text": texts}).select(fast=parse_timestamp(text), general=general)
    # Compared in polars: some texts parse to years before 1, which Python datetimes cannot hold.
    assert_series_equal(parsed["fast"], parsed["general"], check_names=False)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 2), st.integers(0, 2)), max_size=12))
def test_latest_version_agrees_with_a_full_sort(versions: list[tuple[str, int, int]]) -> None:
    """Repeated ids, with ties on updated_at and on ingested_at, keep the row a full sort would keep."""
    rows = pl.DataFrame(
        {
            "id": [id_ for id_, _, _ in versions],
            "updated_at": [utc(2026, 11, 20, 10, 0, second) for _, second, _ in versions],
            "ingested_at": [utc(2026, 11, 21, hour) for _, _, hour in versions],
        },
        schema={"id": pl.String, "updated_at": UTC_TS, "ingested_at": UTC_TS},
    ).with_row_index("row")
    expected = rows.sort("updated_at", "ingested_at", "row").unique("id", keep="last")
    kept = latest_version(rows.lazy(), version="updated_at").collect()
    assert_frame_equal(kept.sort("id"), expected.sort("id"))
