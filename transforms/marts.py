"""Daily marts over messages and interactions, and the failure-code dimension they are labelled with.

Every rate travels with its numerator and denominator. Status buckets (vocabulary): delivered, failed
(FAILED_STATUSES), pending (PENDING_STATUSES) and other (deleted, skipped and statuses Bird added after us),
so the four counts always add up to n_messages.
"""

import polars as pl

from transforms import vocabulary
from transforms.schema import (
    DELIVERY_DAILY_SCHEMA,
    FAILURE_BREAKDOWN_SCHEMA,
    FAILURE_CODE_SCHEMA,
    INTERACTION_DAILY_SCHEMA,
)

CREATED_DAY = pl.col("created_at").dt.date().alias("day")
IS_DELIVERED = pl.col("status").is_in(vocabulary.DELIVERED_STATUSES)
IS_FAILED = pl.col("status").is_in(vocabulary.FAILED_STATUSES)
IS_PENDING = pl.col("status").is_in(vocabulary.PENDING_STATUSES)


def outcome_counts() -> list[pl.Expr]:
    """Aggregations counting messages per status bucket: n_messages, n_delivered, n_failed, n_pending."""
    return [
        pl.len().cast(pl.Int64).alias("n_messages"),
        IS_DELIVERED.sum().cast(pl.Int64).alias("n_delivered"),
        IS_FAILED.sum().cast(pl.Int64).alias("n_failed"),
        IS_PENDING.sum().cast(pl.Int64).alias("n_pending"),
    ]


def ratio(numerator: str, denominator: str) -> pl.Expr:
    """numerator / denominator, null (not NaN or inf) when the denominator is zero."""
    return pl.when(pl.col(denominator) > 0).then(pl.col(numerator) / pl.col(denominator))


def failure_category(code: pl.Expr) -> pl.Expr:
    """Expression form of vocabulary.failure_category: the category of the code's range."""
    return pl.when(code.is_not_null()).then(
        (code // 1000).replace_strict(
            vocabulary.FAILURE_CODE_CATEGORIES, default="unknown", return_dtype=pl.String
        )
    )


def with_failure_labels(frame: pl.LazyFrame, failure_codes: pl.LazyFrame) -> pl.LazyFrame:
    """Adds failure_name, documented_description, category and is_known_code by `failure_code`.

    Codes missing from the dimension keep their row: category from the code's range, is_known_code false.
    """
    labels = failure_codes.select(
        pl.col("failure_code").cast(pl.Int32),
        failure_name="name",
        documented_description="description",
        documented_category="category",
        is_documented=pl.col("is_known"),
    ).unique(subset="failure_code", keep="first", maintain_order=True)
    return (
        frame.join(labels, on="failure_code", how="left")
        .with_columns(
            category=pl.coalesce("documented_category", failure_category(pl.col("failure_code"))),
            is_known_code=pl.col("is_documented").fill_null(False),
        )
        .drop("documented_category", "is_documented")
    )


def delivery_daily(messages: pl.LazyFrame) -> pl.LazyFrame:
    """One row per UTC day of created_at x workspace x channel x platform x country_code x direction.

    delivery_rate and failure_rate are over n_messages (pending messages included, so a fresh day's rate
    still moves); the delivery-time percentiles are over delivered outgoing messages only.
    """
    delivered_seconds = pl.col("delivery_seconds").filter(IS_DELIVERED)
    return (
        messages.group_by(CREATED_DAY, "workspace_id", "channel_id", "platform", "country_code", "direction")
        .agg(
            *outcome_counts(),
            p50_delivery_seconds=delivered_seconds.quantile(0.5, interpolation="linear"),
            p95_delivery_seconds=delivered_seconds.quantile(0.95, interpolation="linear"),
        )
        .with_columns(
            n_other=pl.col("n_messages") - pl.col("n_delivered") - pl.col("n_failed") - pl.col("n_pending"),
            delivery_rate=ratio("n_delivered", "n_messages"),
            failure_rate=ratio("n_failed", "n_messages"),
        )
        .select(DELIVERY_DAILY_SCHEMA.names())
        .cast(dict(DELIVERY_DAILY_SCHEMA))
        .sort(DELIVERY_DAILY_SCHEMA.names()[:6], nulls_last=True)
    )


def failure_breakdown(messages: pl.LazyFrame, failure_codes: pl.LazyFrame) -> pl.LazyFrame:
    """One row per UTC day of created_at x workspace x channel x failure_code x failure source (name, code).

    Counts failed messages (FAILED_STATUSES). share_of_day_failures = n_failed / n_day_failures, the latter
    being all failures of that channel that day. failure_description is the documented one, else the text
    Bird sent with the failures (the smallest, so the choice is stable).
    """
    grain = FAILURE_BREAKDOWN_SCHEMA.names()[:6]
    failures = (
        messages.filter(IS_FAILED)
        .group_by(CREATED_DAY, *grain[1:])
        .agg(n_failed=pl.len().cast(pl.Int64), served_description=pl.col("failure_description").min())
        .with_columns(n_day_failures=pl.col("n_failed").sum().over("day", "workspace_id", "channel_id"))
        .with_columns(share_of_day_failures=ratio("n_failed", "n_day_failures"))
    )
    return (
        with_failure_labels(failures, failure_codes)
        .with_columns(failure_description=pl.coalesce("documented_description", "served_description"))
        .select(FAILURE_BREAKDOWN_SCHEMA.names())
        .cast(dict(FAILURE_BREAKDOWN_SCHEMA))
        .sort(grain, nulls_last=True)
    )


def interaction_daily(interactions: pl.LazyFrame, daily: pl.LazyFrame) -> pl.LazyFrame:
    """One row per UTC day of the interaction's created_at x workspace x channel x interaction type.

    rate_over_delivered = n_unique_messages / n_delivered, where n_delivered counts the channel's outgoing
    messages created that day and delivered, taken from the `delivery_daily` mart (`daily`) rather than from
    the messages again. Interactions often land a day after their message, so this is a daily approximation
    of an open or click rate and can exceed 1 on a quiet day.
    """
    keys = ["day", "workspace_id", "channel_id"]
    delivered = (
        daily.filter(pl.col("direction") == "outgoing")
        .group_by(keys)
        .agg(n_delivered=pl.col("n_delivered").sum().cast(pl.Int64))
    )
    return (
        interactions.group_by(CREATED_DAY, "workspace_id", "channel_id", "type")
        .agg(
            n_interactions=pl.len().cast(pl.Int64),
            n_unique_messages=pl.col("message_id").n_unique().cast(pl.Int64),
        )
        .join(delivered, on=keys, how="left", nulls_equal=True)
        .with_columns(pl.col("n_delivered").fill_null(0))
        .with_columns(rate_over_delivered=ratio("n_unique_messages", "n_delivered"))
        .select(INTERACTION_DAILY_SCHEMA.names())
        .cast(dict(INTERACTION_DAILY_SCHEMA))
        .sort([*keys, "type"], nulls_last=True)
    )


def failure_code_dimension(seed: pl.DataFrame, observed_codes: pl.Series) -> pl.DataFrame:
    """One row per failure code: the seed's rows (is_known) plus each observed code the seed lacks.

    The seed needs failure_code, name and description; a missing or empty category comes from the code's
    range, as it does for the observed codes, which are kept with is_known false and no name.
    """
    seed_category = pl.col("category") if "category" in seed.columns else pl.lit(None, dtype=pl.String)
    documented = seed.select(
        pl.col("failure_code").cast(pl.Int32),
        "name",
        "description",
        category=pl.coalesce(seed_category, failure_category(pl.col("failure_code").cast(pl.Int32))),
        is_known=pl.lit(True),
    )
    undocumented = (
        pl.DataFrame({"failure_code": observed_codes.cast(pl.Int32)})
        .drop_nulls()
        .unique()
        .join(documented, on="failure_code", how="anti")
        .select(
            "failure_code",
            name=pl.lit(None, dtype=pl.String),
            description=pl.lit(None, dtype=pl.String),
            category=failure_category(pl.col("failure_code")),
            is_known=pl.lit(False),
        )
    )
    return pl.concat([documented, undocumented]).cast(dict(FAILURE_CODE_SCHEMA)).sort("failure_code")
