"""Which partitions the daily run pulls again, and why: status settlement and interaction windows.

Bird has no `updatedAt` filter, so a status change is only seen by listing a window again. A blind trailing
lookback re-lists every recent day every day; this module re-lists a day only while the archive's copy of
it can still be out of date (docs/keeping-current.md states the policy):
- a message is *unsettled* in the archive while its status is not final (vocabulary.FINAL_STATUSES) and it
  could still change after we looked: `scheduled` until the settling horizon, any other pending status
  until `receipt_window` after its `updated_at` (validity 36 h: receipts come within about 48 h);
- a partition is re-pulled while it holds an unsettled message, never after the settling horizon, and
  always within the fixed lookback (the floor).
Pure functions: no IO, no clock; the caller passes "as of".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

from pipelines.ingest.windows import Window
from transforms.schema import UTC_TS
from transforms.vocabulary import FINAL_STATUSES

METRICS_CALLS_PER_LANDING = 2  # land_messages asks Bird's channel metrics before and after paging


@dataclass(frozen=True)
class SettlementPolicy:
    """How long the archive keeps re-pulling a day, and which messages it asks interactions for."""

    settling_horizon: dt.timedelta = dt.timedelta(days=3)  # after a partition's end: never re-listed
    fixed_lookback_days: int = 1  # the days just before the new day, re-listed whatever their state
    receipt_window: dt.timedelta = dt.timedelta(hours=48)  # a pending status can change this long
    interaction_horizon: dt.timedelta = dt.timedelta(days=7)  # after created_at: interactions we collect
    # Ask a message again once its age has grown this many times since the last ask (1: at every run).
    interaction_backoff: float = 1.0

    def __post_init__(self) -> None:
        if self.fixed_lookback_days < 0:
            raise ValueError(f"fixed_lookback_days must be >= 0, got {self.fixed_lookback_days}")
        if self.interaction_backoff < 1:
            raise ValueError(f"interaction_backoff must be >= 1, got {self.interaction_backoff}")


def is_unsettled(policy: SettlementPolicy, *, observed_at: dt.datetime | None = None) -> pl.Expr:
    """Over raw_messages rows: the archived copy may be out of date (see the module docstring).

    `observed_at` is when Bird was listed (the "as of" of the run that landed the rows); without it, each
    row's `ingested_at` (the landing's wall clock).
    """
    status = pl.col("status")
    looked_at = pl.col("ingested_at") if observed_at is None else pl.lit(observed_at, dtype=UTC_TS)
    could_change_after_we_looked = looked_at < pl.col("updated_at") + policy.receipt_window
    return ~status.is_in(FINAL_STATUSES) & ((status == "scheduled") | could_change_after_we_looked)


@dataclass(frozen=True)
class PartitionState:
    """What the lake says about one partition; `n_messages` is None when it was never landed."""

    day: dt.date
    n_messages: int | None
    n_unsettled: int = 0
    n_interactions_due: int = 0


@dataclass(frozen=True)
class RefreshPlan:
    """The partitions one scheduled run pulls, with the reason for each and the listing cost avoided."""

    new_day: dt.date
    relist: dict[dt.date, str]  # re-list messages (then interactions) -> why
    interactions_only: dict[dt.date, str]  # messages settled, interactions still due -> why
    untouched: tuple[dt.date, ...]  # within the horizons, nothing can have changed
    listing_requests: int  # estimated requests of the planned re-listings (new day included)
    blind_listing_requests: int  # the same for a blind lookback over the settling horizon

    @property
    def listing_requests_saved(self) -> int:
        return self.blind_listing_requests - self.listing_requests


def new_day(as_of: dt.datetime) -> dt.date:
    """The last whole UTC day before `as_of`: the day a scheduled run lands for the first time."""
    return as_of.astimezone(dt.UTC).date() - dt.timedelta(days=1)


def days_to_consider(as_of: dt.datetime, policy: SettlementPolicy) -> list[dt.date]:
    """Earlier days whose messages or interactions may still need a pull, newest first."""
    latest = new_day(as_of)
    # A day's interactions get one closing pull after its last window has closed, up to a day later.
    horizon = max(policy.settling_horizon, policy.interaction_horizon + dt.timedelta(days=1))
    days, day = [], latest - dt.timedelta(days=1)
    while Window.day(day).end + horizon > as_of or (latest - day).days <= policy.fixed_lookback_days:
        days.append(day)
        day -= dt.timedelta(days=1)
    return days


def listing_requests(n_messages: int | None, *, page_size: int = 1000, initial_parts: int = 8) -> int:
    """Estimated requests to land a partition again: at least one page per initial leaf, plus metrics."""
    pages = max(initial_parts, math.ceil((n_messages or 0) / page_size))
    return pages + METRICS_CALLS_PER_LANDING


def plan_refresh(
    states: Mapping[dt.date, PartitionState],
    *,
    as_of: dt.datetime,
    policy: SettlementPolicy,
    page_size: int = 1000,
    initial_parts: int = 8,
) -> RefreshPlan:
    """Decide, for a run at `as_of`, which earlier partitions to re-list and which only need interactions.

    `states` holds the lake's view of the days from `days_to_consider` (a day absent from it counts as never
    landed, and is pulled while it lies within the settling horizon).
    """
    latest = new_day(as_of)
    relist: dict[dt.date, str] = {}
    interactions_only: dict[dt.date, str] = {}
    untouched: list[dt.date] = []
    blind = [latest]
    for day in days_to_consider(as_of, policy):
        state = states.get(day, PartitionState(day, None))
        within_settling = Window.day(day).end + policy.settling_horizon > as_of
        if within_settling:
            blind.append(day)
        if (latest - day).days <= policy.fixed_lookback_days:
            relist[day] = f"fixed lookback of {policy.fixed_lookback_days} day(s)"
        elif within_settling and state.n_messages is None:
            relist[day] = "never landed"
        elif within_settling and state.n_unsettled:
            relist[day] = f"{state.n_unsettled} unsettled message(s)"
        elif state.n_interactions_due:
            interactions_only[day] = f"{state.n_interactions_due} message(s) with open interaction windows"
        else:
            untouched.append(day)

    def cost(days: list[dt.date]) -> int:
        sizes = (states.get(day, PartitionState(day, None)).n_messages for day in days)
        return sum(listing_requests(n, page_size=page_size, initial_parts=initial_parts) for n in sizes)

    return RefreshPlan(
        new_day=latest,
        relist=relist,
        interactions_only=interactions_only,
        untouched=tuple(untouched),
        listing_requests=cost([latest, *relist]),
        blind_listing_requests=cost(blind),
    )
