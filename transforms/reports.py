"""Failure-rate reports for `bird-etl report`: rates per group over a half-open UTC window [start, end)."""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Final

import polars as pl

from transforms.marts import IS_FAILED, outcome_counts, ratio, with_failure_labels

# Report grouping name -> the messages column (or derived column) it groups by.
GROUPINGS: Final[Mapping[str, pl.Expr]] = {
    "workspace": pl.col("workspace_id"),
    "channel": pl.col("channel_id"),
    "platform": pl.col("platform"),
    "country": pl.col("country_code"),
    "direction": pl.col("direction"),
    "failure_code": pl.col("failure_code"),
    "failure_source": pl.col("failure_source_name"),
    "day": pl.col("created_at").dt.date().alias("day"),
    "week": pl.col("created_at").dt.truncate("1w").dt.date().alias("week"),
}
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


def _in_window(start: datetime, end: datetime) -> pl.Expr:
    """created_at in [start, end); naive datetimes are refused rather than guessed to be UTC."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware datetimes")
    created_at = pl.col("created_at")
    return (created_at >= start.astimezone(UTC)) & (created_at < end.astimezone(UTC))


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
    rates = messages.filter(_in_window(start, end))
    counted = rates.group_by(groups).agg(outcome_counts()) if groups else rates.select(outcome_counts())
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
        messages.filter(_in_window(start, end) & IS_FAILED)
        .group_by("failure_code")
        .agg(n_failed=pl.len().cast(pl.Int64))
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
