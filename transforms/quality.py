"""Data contracts of a landed partition, as pure functions: the asset checks only report their outcome."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import polars as pl


@dataclass(frozen=True)
class CheckOutcome:
    """One contract's verdict on one partition, with the figures behind it."""

    name: str
    passed: bool
    description: str
    figures: dict[str, int | float | str] = field(default_factory=dict)


def raw_partition_checks(
    raw: pl.LazyFrame, *, start: dt.datetime, end: dt.datetime, paged_rows: int
) -> list[CheckOutcome]:
    """Ids unique, keys not null, every created_at inside [start, end), and the file holds what was paged.

    Streamed, so memory does not grow with the partition, bar 8 bytes per id while duplicates are counted.
    """
    summary = (
        raw.select(
            pl.len().alias("rows"),
            (
                pl.col("id").is_null()
                | pl.col("channel_id").is_null()
                | pl.col("created_at").is_null()
                | pl.col("updated_at").is_null()
            )
            .sum()
            .alias("null_keys"),
            ((pl.col("created_at") < start) | (pl.col("created_at") >= end)).sum().alias("outside_window"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    rows = summary["rows"]
    duplicates = duplicate_ids(raw, rows=rows)
    return [
        CheckOutcome(
            "ids_unique", duplicates == 0, "every message id appears once", {"duplicates": duplicates}
        ),
        CheckOutcome(
            "keys_not_null",
            summary["null_keys"] == 0,
            "id, channel_id, created_at and updated_at are never null",
            {"rows_with_null_key": summary["null_keys"]},
        ),
        CheckOutcome(
            "created_at_in_window",
            summary["outside_window"] == 0,
            f"every created_at lies in [{start.isoformat()}, {end.isoformat()})",
            {"outside_window": summary["outside_window"]},
        ),
        CheckOutcome(
            "row_count_matches_api",
            rows == paged_rows,
            "the partition holds exactly the messages the API paged",
            {"rows": rows, "paged": paged_rows},
        ),
    ]


def duplicate_ids(raw: pl.LazyFrame, *, rows: int, ids_per_pass: int = 2_000_000) -> int:
    """Rows whose `id` another row has (a null id counts as a value): what `len - n_unique` says, without
    holding the ids. Their 64-bit hashes are counted instead, a share of them per pass (at most about
    `ids_per_pass`), and only ids whose hashes repeat are compared as they are."""
    passes = max(1, math.ceil(rows / ids_per_pass))
    hashed = pl.col("id").hash()
    duplicates = 0
    for share in range(passes):
        hashes = raw.select(hashed).filter(hashed % passes == share).collect(engine="streaming").to_series()
        if hashes.n_unique() == len(hashes):
            continue
        repeated = hashes.filter(hashes.is_duplicated()).implode()
        suspects = raw.select("id").filter(hashed.is_in(repeated))
        duplicates += suspects.select(pl.len() - pl.col("id").n_unique()).collect().item()
    return duplicates


def channel_count_differences(archived: pl.LazyFrame, reported: pl.LazyFrame) -> pl.LazyFrame:
    """Per channel: messages in the archive (rows with `channel_id`) against Bird's own count.

    `reported` has one row per channel and status (`channel_id`, `count`), as Bird's channel metrics serve
    them. `n_missing` is what Bird counts and the archive lacks; `n_extra` the reverse.
    """
    archived_counts = archived.group_by("channel_id").agg(n_archived=pl.len().cast(pl.Int64))
    reported_counts = reported.group_by("channel_id").agg(n_reported=pl.col("count").sum().cast(pl.Int64))
    difference = pl.col("n_reported") - pl.col("n_archived")
    return (
        archived_counts.join(reported_counts, on="channel_id", how="full", coalesce=True)
        .with_columns(pl.col("n_archived", "n_reported").fill_null(0))
        .with_columns(n_missing=difference.clip(lower_bound=0), n_extra=(-difference).clip(lower_bound=0))
        .sort("channel_id")
    )


def reconciliation_outcome(differences: pl.DataFrame) -> CheckOutcome:
    """Passed when every channel holds exactly Bird's count; the figures say by how much it does not."""
    n_missing, n_extra = int(differences["n_missing"].sum()), int(differences["n_extra"].sum())
    off = differences.filter((pl.col("n_missing") > 0) | (pl.col("n_extra") > 0))
    return CheckOutcome(
        "matches_bird_channel_metrics",
        off.is_empty(),
        "every channel holds as many messages as Bird's channel metrics count",
        {
            "n_archived": int(differences["n_archived"].sum()),
            "n_reported": int(differences["n_reported"].sum()),
            "n_missing": n_missing,
            "n_extra": n_extra,
            "channels_off": off.height,
        },
    )
