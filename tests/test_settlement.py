"""The settlement policy: which earlier days a daily run pulls again, and the listing requests that saves.

Pure functions over tiny inline frames and hand-made partition states.
"""

import datetime as dt

import polars as pl
import pytest

from pipelines.settlement import (
    PartitionState,
    SettlementPolicy,
    days_to_consider,
    is_unsettled,
    listing_requests,
    new_day,
    plan_refresh,
)
from transforms.schema import UTC_TS

UTC = dt.UTC
AS_OF = dt.datetime(2026, 3, 10, 0, 30, tzinfo=UTC)  # a run at 00:30: the new day is 2026-03-09
POLICY = SettlementPolicy()


def day(n: int) -> dt.date:
    """The day `n` days before the new day."""
    return new_day(AS_OF) - dt.timedelta(days=n)


def test_the_new_day_is_the_last_whole_day() -> None:
    assert new_day(AS_OF) == dt.date(2026, 3, 9)
    assert new_day(dt.datetime(2026, 3, 10, 23, 59, tzinfo=UTC)) == dt.date(2026, 3, 9)


def test_days_to_consider_cover_the_longer_horizon_plus_one_closing_pull() -> None:
    considered = days_to_consider(AS_OF, POLICY)
    assert considered[0] == day(1)
    # Interactions: windows of 7 days after a message, and one more daily run to ask after they closed.
    assert considered[-1] == day(7)
    narrow = SettlementPolicy(interaction_horizon=dt.timedelta(days=1), fixed_lookback_days=4)
    assert days_to_consider(AS_OF, narrow) == [day(n) for n in range(1, 5)]


def test_unsettled_days_are_re_listed_settled_ones_are_left_alone() -> None:
    states = {
        day(1): PartitionState(day(1), 5000, n_unsettled=0),  # fixed lookback: re-listed anyway
        day(2): PartitionState(day(2), 5000, n_unsettled=12),
        day(3): PartitionState(day(3), 5000, n_unsettled=0, n_interactions_due=40),
        day(4): PartitionState(day(4), 5000, n_unsettled=3),  # beyond the 3-day horizon: never again
        day(5): PartitionState(day(5), 5000, n_unsettled=0),
    }
    plan = plan_refresh(states, as_of=AS_OF, policy=POLICY)
    assert plan.new_day == day(0)
    assert plan.relist == {day(1): "fixed lookback of 1 day(s)", day(2): "12 unsettled message(s)"}
    assert plan.interactions_only == {day(3): "40 message(s) with open interaction windows"}
    assert day(4) not in plan.relist and day(5) in plan.untouched


def test_a_day_never_landed_within_the_horizon_is_pulled() -> None:
    plan = plan_refresh({}, as_of=AS_OF, policy=SettlementPolicy(fixed_lookback_days=0))
    assert plan.relist == {day(1): "never landed", day(2): "never landed"}


def test_requests_saved_against_a_blind_lookback() -> None:
    states = {d: PartitionState(d, 20_000) for d in (day(1), day(2))}
    plan = plan_refresh(states, as_of=AS_OF, policy=POLICY)
    per_day = listing_requests(20_000)
    assert per_day == 20 + 2
    # Blind: the new day and both days within the horizon; planned: the new day and the fixed lookback.
    assert plan.blind_listing_requests == listing_requests(None) + 2 * per_day
    assert plan.listing_requests == listing_requests(None) + per_day
    assert plan.listing_requests_saved == per_day


def test_which_archived_rows_are_unsettled() -> None:
    observed = dt.datetime(2026, 3, 10, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "id": ["final", "sent-long-ago", "sent-recently", "scheduled-long-ago", "accepted-recently"],
            "status": ["delivered", "sent", "sent", "scheduled", "accepted"],
            "updated_at": [
                observed - dt.timedelta(hours=1),
                observed - dt.timedelta(hours=48),
                observed - dt.timedelta(hours=47),
                observed - dt.timedelta(days=5),
                observed - dt.timedelta(minutes=5),
            ],
            "ingested_at": [observed] * 5,
        },
        schema_overrides={"updated_at": UTC_TS, "ingested_at": UTC_TS},
    )
    by_ingested_at = rows.filter(is_unsettled(POLICY))["id"].to_list()
    assert by_ingested_at == ["sent-recently", "scheduled-long-ago", "accepted-recently"]
    a_day_later = rows.filter(is_unsettled(POLICY, observed_at=observed + dt.timedelta(days=1)))
    assert a_day_later["id"].to_list() == ["scheduled-long-ago", "accepted-recently"]


def test_a_negative_lookback_is_refused() -> None:
    with pytest.raises(ValueError, match="fixed_lookback_days"):
        SettlementPolicy(fixed_lookback_days=-1)
