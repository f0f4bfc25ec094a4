"""Report aggregations behind `bird-etl report`: failure rates per group over a half-open UTC window.

Protects: the Wilson interval against published values (Newcombe 1998), every metric column, the [start,
end) window, `by` validation, min_volume, day/week groupings, period comparison and the top failure codes;
and that message_counts (what reports read) give exactly what the message rows give.
"""

from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms.marts import failure_code_dimension
from transforms.reports import (
    GROUPINGS,
    METRIC_COLUMNS,
    compare_periods,
    counted_columns,
    failure_rates,
    message_counts,
    top_failure_codes,
    wilson_interval,
)
from transforms.schema import MESSAGE_SCHEMA

START = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
END = START + timedelta(days=7)


def messages(*rows: tuple[str, str, datetime, int | None]) -> pl.LazyFrame:
    """(channel_id, status, created_at, failure_code) rows as messages; other columns null."""
    return pl.LazyFrame(
        [
            {"channel_id": channel, "status": status, "created_at": created_at, "failure_code": code}
            for channel, status, created_at, code in rows
        ],
        schema=MESSAGE_SCHEMA,
    )


WEEK = messages(
    ("ch-a", "delivery_failed", START, 15005),
    ("ch-a", "sending_failed", START + timedelta(days=2), 12003),
    ("ch-a", "delivered", START + timedelta(days=2, hours=5), None),
    ("ch-a", "delivered", END, None),  # end is exclusive
    ("ch-a", "delivery_failed", START - timedelta(microseconds=1), 15005),  # before the window
    ("ch-b", "sent", START + timedelta(days=6), None),
    ("ch-b", "rejected", START + timedelta(days=6), 15005),
    ("ch-b", "delivered", START + timedelta(days=6), None),
    ("ch-b", "delivered", START + timedelta(days=6), None),
)


def test_wilson_interval_matches_published_values() -> None:
    published = pl.DataFrame(
        {
            "k": [81, 15, 0, 1],
            "n": [263, 148, 20, 29],
            "low": [0.2553, 0.0624, 0.0, 0.0061],
            "high": [0.3662, 0.1605, 0.1611, 0.1718],
        }
    )
    low, high = wilson_interval(pl.col("k"), pl.col("n"))
    computed = published.select(low=low.round(4), high=high.round(4))
    assert_frame_equal(computed, published.select("low", "high"))


def test_wilson_interval_is_null_for_empty_groups() -> None:
    low, high = wilson_interval(pl.lit(0), pl.lit(0))
    assert pl.select(low=low, high=high).row(0) == (None, None)


def test_failure_rates_by_channel() -> None:
    low_a, high_a = 0.2077, 0.9385  # Wilson 95% for 2 of 3
    low_b, high_b = 0.0456, 0.6994  # Wilson 95% for 1 of 4
    expected = pl.DataFrame(
        [
            ("ch-a", 3, 1, 2, 0, 2 / 3, 1 / 3, low_a, high_a),
            ("ch-b", 4, 2, 1, 1, 0.25, 0.5, low_b, high_b),
        ],
        schema={"channel_id": pl.String}
        | dict.fromkeys(METRIC_COLUMNS[:4], pl.Int64)
        | dict.fromkeys(METRIC_COLUMNS[4:], pl.Float64),
        orient="row",
    )
    report = failure_rates(WEEK, by=["channel"], start=START, end=END).collect()
    assert_frame_equal(report, expected, abs_tol=5e-5)


def test_window_bounds_in_other_offsets_are_the_same_instants() -> None:
    amsterdam = timezone(timedelta(hours=1))
    shifted = failure_rates(WEEK, by=[], start=START.astimezone(amsterdam), end=END.astimezone(amsterdam))
    assert_frame_equal(shifted.collect(), failure_rates(WEEK, by=[], start=START, end=END).collect())
    assert shifted.collect()["n_messages"].to_list() == [7]


def test_unknown_grouping_is_refused_with_the_allowed_names() -> None:
    with pytest.raises(ValueError, match=r"\['carrier'\].*channel, country, day, direction"):
        failure_rates(WEEK, by=["channel", "carrier"], start=START, end=END)


def test_naive_window_bounds_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        failure_rates(WEEK, by=["channel"], start=START.replace(tzinfo=None), end=END)


def test_min_volume_leaves_out_small_groups() -> None:
    report = failure_rates(WEEK, by=["channel"], start=START, end=END, min_volume=4).collect()
    assert report["channel_id"].to_list() == ["ch-b"]


def test_day_and_week_groupings() -> None:
    by_day = failure_rates(WEEK, by=["day"], start=START, end=END).collect()
    assert by_day.select("day", "n_messages").rows() == [
        (date(2026, 11, 23), 1),
        (date(2026, 11, 25), 2),
        (date(2026, 11, 29), 4),
    ]
    wide = failure_rates(
        WEEK, by=["week", "failure_code"], start=START - timedelta(days=1), end=END + timedelta(days=1)
    )
    assert wide.collect().select("week", "failure_code", "n_messages", "n_failed").rows() == [
        (date(2026, 11, 16), 15005, 1, 1),
        (date(2026, 11, 23), 12003, 1, 1),
        (date(2026, 11, 23), 15005, 2, 2),
        (date(2026, 11, 23), None, 4, 0),
        (date(2026, 11, 30), None, 1, 0),
    ]


def test_compare_periods_keeps_groups_from_either_period() -> None:
    previous = messages(
        ("ch-a", "delivered", START - timedelta(days=3), None),
        ("ch-a", "delivery_failed", START - timedelta(days=3), 15005),
        ("ch-c", "delivered", START - timedelta(days=3), None),
    )
    current = failure_rates(WEEK, by=["channel"], start=START, end=END)
    before = failure_rates(previous, by=["channel"], start=START - timedelta(days=7), end=START)
    compared = compare_periods(current, before).collect()
    assert compared.select(
        "channel_id", "n_messages", "previous_n_messages", "previous_n_failed", "failure_rate_change_pp"
    ).rows() == [
        ("ch-a", 3, 2, 1, pytest.approx(100 * (2 / 3 - 1 / 2))),
        ("ch-b", 4, None, None, None),
        ("ch-c", None, 1, 0, None),
    ]


def test_top_failure_codes() -> None:
    codes = failure_code_dimension(
        pl.DataFrame({"failure_code": [15005], "name": ["UNKNOWN_SUBSCRIBER"], "description": ["gone"]}),
        pl.Series([12003]),
    ).lazy()
    top = top_failure_codes(WEEK, codes, start=START, end=END, n=1).collect()
    assert top.rows(named=True) == [
        {
            "failure_code": 15005,
            "failure_name": "UNKNOWN_SUBSCRIBER",
            "category": "platform error",
            "is_known_code": True,
            "n_failed": 2,
            "n_window_failures": 3,
            "share_of_failures": pytest.approx(2 / 3),
            "failure_description": "gone",
        }
    ]
    everything = top_failure_codes(WEEK, codes, start=START, end=END).collect()
    assert everything.select("failure_code", "category", "is_known_code").rows() == [
        (15005, "platform error", True),
        (12003, "service error", False),
    ]


@pytest.mark.parametrize(
    "by",
    [["channel"], ["day", "failure_code"], ["week", "channel"], [], list(GROUPINGS)],
    ids=lambda by: ",".join(by) or "totals",
)
def test_message_counts_give_what_the_message_rows_give(by: list[str]) -> None:
    counts = message_counts(WEEK, by=by)
    codes = failure_code_dimension(
        pl.DataFrame({"failure_code": [15005], "name": ["UNKNOWN_SUBSCRIBER"], "description": ["gone"]}),
        pl.Series([12003]),
    ).lazy()
    for start, end in [(START, END), (START - timedelta(days=7), END + timedelta(days=1))]:
        assert_frame_equal(
            failure_rates(counts, by=by, start=start, end=end).collect(),
            failure_rates(WEEK, by=by, start=start, end=end).collect(),
        )
        assert_frame_equal(
            top_failure_codes(counts, codes, start=start, end=end).collect(),
            top_failure_codes(WEEK, codes, start=start, end=end).collect(),
        )


def test_message_counts_keep_the_grouping_columns_status_and_failure_code() -> None:
    assert counted_columns(["week", "country"]) == ["country_code", "failure_code", "status"]
    counts = message_counts(WEEK, by=["channel"]).collect()
    assert counts.columns == ["day", "channel_id", "failure_code", "status", "n_messages"]
    assert counts["n_messages"].sum() == WEEK.collect().height


def test_message_counts_refuse_a_window_that_splits_a_day() -> None:
    counts = message_counts(WEEK, by=["channel"])
    with pytest.raises(ValueError, match="whole UTC days"):
        failure_rates(counts, by=["channel"], start=START + timedelta(hours=1), end=END)
