"""Failure-rate reports for `bird-etl report`: rates per group over a half-open UTC window [start, end).

Reports only count messages, so they run on `message_counts` (one row per UTC day x the columns a report
groups by, with n_messages): DuckDB counts a window's millions of messages into a few thousand such rows far
faster than polars could receive the messages. Every function here also takes message rows, and counts them
first (the notebooks pass rows).
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, time
from typing import Final

import polars as pl

from transforms.marts import (
    CREATED_DAY,
    IS_DELIVERED,
    IS_FAILED,
    IS_PENDING,
    ratio,
    with_failure_labels,
)

# Report grouping name -> the message_counts column (or derived column) it groups by.
GROUPINGS: Final[Mapping[str, pl.Expr]] = {
    "workspace": pl.col("workspace_id"),
    "channel": pl.col("channel_id"),
    "platform": pl.col("platform"),
    "country": pl.col("country_code"),
    "direction": pl.col("direction"),
    "failure_code": pl.col("failure_code"),
    "failure_source": pl.col("failure_source_name"),
    "day": pl.col("day"),
    "week": pl.col("day").dt.truncate("1w").alias("week"),
}
# Counted whatever the grouping: status for the outcome counts, failure_code for the top failure codes.
_ALWAYS_COUNTED: Final = ("status", "failure_code")
METRIC_COLUMNS: Final = (
    "n_messages",
    "n_delivered",
    "n_failed",
    "n_pending",
    "failure_rate",
    "delivery_rate",
    "failure_rate_low",
    "failure_rate_high",
)
# Two-sided 95% normal quantile.
Z_95: Final = 1.959963984540054


def wilson_interval(successes: pl.Expr, trials: pl.Expr, z: float = Z_95) -> tuple[pl.Expr, pl.Expr]:
    """(low, high) Wilson score interval for successes / trials; null for zero trials.

    Unlike the plain p +- z*se interval it stays inside [0, 1] and is wide for small groups, so 2 failures
    out of 3 messages reads as "somewhere between 21% and 94%" rather than an alarming 67%.
    """
    n = trials.cast(pl.Float64)
    p = successes.cast(pl.Float64) / n
    z2 = z * z
    scale = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / scale
    half_width = z * (p * (1 - p) / n + z2 / (4 * n * n)).sqrt() / scale
    return (
        pl.when(n > 0).then((centre - half_width).clip(0.0, 1.0)),
        pl.when(n > 0).then((centre + half_width).clip(0.0, 1.0)),
    )


def _group_expressions(by: Sequence[str]) -> list[pl.Expr]:
    unknown = [name for name in by if name not in GROUPINGS]
    if unknown:
        raise ValueError(f"unknown grouping {unknown}; allowed: {', '.join(sorted(GROUPINGS))}")
    return [GROUPINGS[name] for name in by]


def counted_columns(by: Sequence[str]) -> list[str]:
    """The messages columns `message_counts` keeps (besides the day) for a report grouped `by`."""
    roots = {root for expression in _group_expressions(by) for root in expression.meta.root_names()}
    return sorted((roots - {"day"}) | set(_ALWAYS_COUNTED))


def message_counts(messages: pl.LazyFrame, *, by: Sequence[str]) -> pl.LazyFrame:
    """One row per UTC day of created_at x `counted_columns(by)`: n_messages.

    warehouse/sql/report_message_counts.sql computes the same grain in DuckDB, which is how reports read it.
    """
    return messages.group_by(CREATED_DAY, *counted_columns(by)).agg(n_messages=pl.len().cast(pl.Int64))


def _utc(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The window bounds in UTC; naive datetimes are refused rather than guessed to be UTC."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    return start.astimezone(UTC), end.astimezone(UTC)


def _counted(messages: pl.LazyFrame, *, by: Sequence[str], start: datetime, end: datetime) -> pl.LazyFrame:
    """The message_counts rows of the messages created in [start, end).

    `messages` holds message rows (any window) or message_counts rows, recognised by their n_messages
    column; those count whole UTC days, so start and end must then be UTC midnights.
    """
    start, end = _utc(start, end)
    if "n_messages" not in messages.collect_schema().names():
        created_at = pl.col("created_at")
        return message_counts(messages.filter((created_at >= start) & (created_at < end)), by=by)
    if start.time() != time() or end.time() != time():
        raise ValueError(
            f"message_counts hold whole UTC days, so [{start}, {end}) must start and end at 00:00"
        )
    return messages.filter(pl.col("day").is_between(start.date(), end.date(), closed="left"))


def _outcome_counts() -> list[pl.Expr]:
    """n_messages, n_delivered, n_failed and n_pending (transforms.marts.outcome_counts) of counted rows."""
    n = pl.col("n_messages")
    return [
        n.sum().alias("n_messages"),
        n.filter(IS_DELIVERED).sum().alias("n_delivered"),
        n.filter(IS_FAILED).sum().alias("n_failed"),
        n.filter(IS_PENDING).sum().alias("n_pending"),
    ]


def failure_rates(
    messages: pl.LazyFrame,
    *,
    by: Sequence[str],
    start: datetime,
    end: datetime,
    min_volume: int = 0,
) -> pl.LazyFrame:
    """One row per group of `by` (names from GROUPINGS) of messages created in [start, end).

    failure_rate and delivery_rate are over n_messages; failure_rate_low/high bound the failure rate with a
    95% Wilson interval. Groups under `min_volume` messages are left out. Sorted by the group columns.
    """
    groups = _group_expressions(by)
    rows = _counted(messages, by=by, start=start, end=end)
    counted = rows.group_by(groups).agg(_outcome_counts()) if groups else rows.select(_outcome_counts())
    low, high = wilson_interval(pl.col("n_failed"), pl.col("n_messages"))
    group_names = [expression.meta.output_name() for expression in groups]
    report = (
        counted.filter(pl.col("n_messages") >= max(min_volume, 1))
        .with_columns(
            failure_rate=ratio("n_failed", "n_messages"),
            delivery_rate=ratio("n_delivered", "n_messages"),
            failure_rate_low=low,
            failure_rate_high=high,
        )
        .select(*group_names, *METRIC_COLUMNS)
    )
    return report.sort(group_names, nulls_last=True) if group_names else report


def compare_periods(current: pl.LazyFrame, previous: pl.LazyFrame) -> pl.LazyFrame:
    """Two `failure_rates` outputs (same `by`) side by side: one row per group seen in either period.

    Adds previous_n_messages, previous_n_failed, previous_failure_rate and failure_rate_change_pp (current
    minus previous failure rate, in percentage points; null when either period lacks the group). Groups
    must recur across periods to meet, so compare by channel or country rather than by day or week.
    """
    keys = [name for name in current.collect_schema().names() if name not in METRIC_COLUMNS]
    earlier = previous.select(
        *keys,
        previous_n_messages="n_messages",
        previous_n_failed="n_failed",
        previous_failure_rate="failure_rate",
    )
    if keys:
        joined = current.join(earlier, on=keys, how="full", coalesce=True, nulls_equal=True).sort(
            keys, nulls_last=True
        )
    else:
        joined = pl.concat([current, earlier], how="horizontal")
    return joined.with_columns(
        failure_rate_change_pp=(pl.col("failure_rate") - pl.col("previous_failure_rate")) * 100
    )


def top_failure_codes(
    messages: pl.LazyFrame,
    failure_codes: pl.LazyFrame,
    *,
    start: datetime,
    end: datetime,
    n: int = 10,
) -> pl.LazyFrame:
    """The `n` failure codes with the most failed messages created in [start, end), most first.

    One row per failure code: n_failed, n_window_failures (all failures in the window) and their ratio
    share_of_failures, with the code's name, category and is_known_code from the failure-code dimension.
    """
    counted = (
        _counted(messages, by=[], start=start, end=end)
        .filter(IS_FAILED)
        .group_by("failure_code")
        .agg(n_failed=pl.col("n_messages").sum())
        .with_columns(n_window_failures=pl.col("n_failed").sum())
        .with_columns(share_of_failures=ratio("n_failed", "n_window_failures"))
    )
    return (
        with_failure_labels(counted, failure_codes)
        .select(
            "failure_code",
            "failure_name",
            "category",
            "is_known_code",
            "n_failed",
            "n_window_failures",
            "share_of_failures",
            failure_description="documented_description",
        )
        .sort(["n_failed", "failure_code"], descending=[True, False], nulls_last=True)
        .head(n)
    )
