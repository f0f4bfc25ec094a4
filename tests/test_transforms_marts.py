"""The daily marts on a small hand-computed example, and the failure-code dimension.

Protects: each mart's grain and every column (counts, shares, rates with their denominators, delivery-time
percentiles over delivered messages only), unknown statuses counted as "other", unknown failure codes kept
and flagged, and (property) that delivery_daily accounts for every input message exactly once.
"""

from datetime import UTC, date, datetime

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from transforms import vocabulary
from transforms.marts import delivery_daily, failure_breakdown, failure_code_dimension, interaction_daily
from transforms.schema import (
    DELIVERY_DAILY_SCHEMA,
    FAILURE_BREAKDOWN_SCHEMA,
    FAILURE_CODE_SCHEMA,
    INTERACTION_DAILY_SCHEMA,
    INTERACTION_SCHEMA,
    MESSAGE_SCHEMA,
)

DAY_20, DAY_21 = date(2026, 11, 20), date(2026, 11, 21)
SEED = pl.DataFrame(
    {
        "failure_code": [12003, 15005],
        "name": ["UNSUPPORTED_DESTINATION", "UNKNOWN_SUBSCRIBER"],
        "description": ["Destination not allowed", "Unknown subscriber"],
    }
)


def at(day: date, hour: int = 12, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=UTC)


def messages(*rows: dict[str, object]) -> pl.LazyFrame:
    """messages rows with the columns the marts read; the rest of MESSAGE_SCHEMA stays null."""
    defaults = {"workspace_id": "ws-1", "channel_id": "ch-sms", "platform": "sms-messagebird"}
    defaults |= {"direction": "outgoing", "country_code": "NL", "created_at": at(DAY_20)}
    return pl.LazyFrame([defaults | row for row in rows], schema=MESSAGE_SCHEMA)


def sms_day() -> pl.LazyFrame:
    failed_15005 = {"status": "delivery_failed", "failure_code": 15005}
    failed_15005 |= {"failure_source_name": "sms-messagebird", "failure_source_code": "1"}
    return messages(
        {"id": "m1", "status": "delivered", "delivery_seconds": 2.0},
        {"id": "m2", "status": "delivered", "delivery_seconds": 4.0},
        {"id": "m3", "status": "delivered", "delivery_seconds": 10.0},
        {"id": "m4", **failed_15005, "delivery_seconds": 30.0},
        {"id": "m5", "status": "sent"},
        {"id": "m6", "status": "deleted"},
        {"id": "m7", "status": "mystery"},
        {"id": "m8", "status": "delivered", "delivery_seconds": 6.0,
         "created_at": at(DAY_20, 23, 59, 59, 999_999)},
        {"id": "m9", "status": "sending_failed", "country_code": "US", "failure_code": 12003,
         "failure_source_name": "pre-processing"},
        {"id": "m10", **failed_15005, "created_at": at(DAY_21, 0)},
        {"id": "m11", "status": "delivery_failed", "failure_code": 99999,
         "failure_source_name": "sms-messagebird", "failure_source_code": "34",
         "failure_description": "served text", "created_at": at(DAY_21, 1)},
    )  # fmt: skip


def test_delivery_daily() -> None:
    key = ("ws-1", "ch-sms", "sms-messagebird")
    expected = pl.DataFrame(
        [
            (DAY_20, *key, "NL", "outgoing", 8, 4, 1, 1, 2, 0.5, 0.125, 5.0, 9.4),
            (DAY_20, *key, "US", "outgoing", 1, 0, 1, 0, 0, 0.0, 1.0, None, None),
            (DAY_21, *key, "NL", "outgoing", 2, 0, 2, 0, 0, 0.0, 1.0, None, None),
        ],
        schema=DELIVERY_DAILY_SCHEMA,
        orient="row",
    )
    assert_frame_equal(delivery_daily(sms_day()).collect(), expected)


def test_failure_breakdown() -> None:
    codes = failure_code_dimension(SEED, pl.Series([99999])).lazy()
    known = ("UNKNOWN_SUBSCRIBER", "Unknown subscriber", "platform error", True)
    expected = pl.DataFrame(
        [
            (DAY_20, "ws-1", "ch-sms", 12003, "pre-processing", None, 1, 2, 0.5,
             "UNSUPPORTED_DESTINATION", "Destination not allowed", "service error", True),
            (DAY_20, "ws-1", "ch-sms", 15005, "sms-messagebird", "1", 1, 2, 0.5, *known),
            (DAY_21, "ws-1", "ch-sms", 15005, "sms-messagebird", "1", 1, 2, 0.5, *known),
            (DAY_21, "ws-1", "ch-sms", 99999, "sms-messagebird", "34", 1, 2, 0.5,
             None, "served text", "unknown", False),
        ],
        schema=FAILURE_BREAKDOWN_SCHEMA,
        orient="row",
    )  # fmt: skip
    assert_frame_equal(failure_breakdown(sms_day(), codes).collect(), expected)


def test_failure_breakdown_without_a_dimension_row_still_labels_the_range() -> None:
    empty_codes = pl.LazyFrame(schema=FAILURE_CODE_SCHEMA)
    row = failure_breakdown(sms_day(), empty_codes).collect().row(0, named=True)
    assert (row["failure_code"], row["category"], row["is_known_code"]) == (12003, "service error", False)


def test_interaction_daily() -> None:
    mail = {"channel_id": "ch-mail", "platform": "email-sparkpost", "country_code": None}
    sent = messages(
        *({"id": name, "status": "delivered", **mail} for name in "abcd"),
        {"id": "e", "status": "delivery_failed", **mail},
        {"id": "f", "status": "delivered", "direction": "incoming", **mail},
    )
    on_mail = {"workspace_id": "ws-1", "channel_id": "ch-mail", "created_at": at(DAY_20, 18)}
    interactions = pl.LazyFrame(
        [
            {"id": "i1", "message_id": "a", "type": "opened", **on_mail},
            {"id": "i2", "message_id": "a", "type": "opened", **on_mail},
            {"id": "i3", "message_id": "b", "type": "opened", **on_mail},
            {"id": "i4", "message_id": "a", "type": "clicked", **on_mail},
            {"id": "i5", "message_id": "c", "type": "opened", **on_mail, "created_at": at(DAY_21, 8)},
        ],
        schema=INTERACTION_SCHEMA,
    )
    expected = pl.DataFrame(
        [
            (DAY_20, "ws-1", "ch-mail", "clicked", 1, 1, 4, 0.25),
            (DAY_20, "ws-1", "ch-mail", "opened", 3, 2, 4, 0.5),
            (DAY_21, "ws-1", "ch-mail", "opened", 1, 1, 0, None),
        ],
        schema=INTERACTION_DAILY_SCHEMA,
        orient="row",
    )
    assert_frame_equal(interaction_daily(interactions, delivery_daily(sent)).collect(), expected)


def test_failure_code_dimension_adds_observed_codes_as_unknown() -> None:
    observed = pl.Series([15005, 99999, None, 99999, 14001], dtype=pl.Int64)
    expected = pl.DataFrame(
        [
            (12003, "UNSUPPORTED_DESTINATION", "Destination not allowed", "service error", True),
            (14001, None, None, "customer error", False),
            (15005, "UNKNOWN_SUBSCRIBER", "Unknown subscriber", "platform error", True),
            (99999, None, None, "unknown", False),
        ],
        schema=FAILURE_CODE_SCHEMA,
        orient="row",
    )
    assert_frame_equal(failure_code_dimension(SEED, observed), expected)


message_rows = st.lists(
    st.fixed_dictionaries(
        {
            "status": st.sampled_from([*vocabulary.STATUSES, "mystery"]),
            "channel_id": st.sampled_from(["ch-a", "ch-b"]),
            "country_code": st.sampled_from(["NL", "US", None]),
            "direction": st.sampled_from(["incoming", "outgoing"]),
            "created_at": st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 1, 4)).map(
                lambda moment: moment.replace(tzinfo=UTC)
            ),
            "delivery_seconds": st.one_of(st.none(), st.floats(0, 1e5)),
        }
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(message_rows)
def test_delivery_daily_accounts_for_every_message_once(rows: list[dict[str, object]]) -> None:
    daily = delivery_daily(messages(*rows)).collect()
    statuses = [row["status"] for row in rows]
    assert daily["n_messages"].sum() == len(rows)
    assert daily["n_delivered"].sum() == statuses.count("delivered")
    assert daily["n_failed"].sum() == sum(status in vocabulary.FAILED_STATUSES for status in statuses)
    assert daily["n_pending"].sum() == sum(status in vocabulary.PENDING_STATUSES for status in statuses)
    assert (daily["n_other"] >= 0).all()
    assert daily["delivery_rate"].is_between(0, 1).all() and daily["failure_rate"].is_between(0, 1).all()
    assert daily.select(DELIVERY_DAILY_SCHEMA.names()[:6]).is_unique().all()
