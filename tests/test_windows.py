"""Window arithmetic: splits tile their parent exactly (no gap, no overlap); midnight belongs to one day."""

import datetime as dt
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.ingest.windows import MILLISECOND, Window, days_between

UTC = dt.UTC
moments = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 1, 1), timezones=st.just(UTC)
).map(lambda m: m.replace(microsecond=m.microsecond // 1000 * 1000))


@given(start=moments, width_ms=st.integers(1, 10 * 86_400_000), parts=st.integers(1, 64))
def test_split_tiles_the_parent(start: dt.datetime, width_ms: int, parts: int) -> None:
    parent = Window(start, start + width_ms * MILLISECOND)
    children = parent.split(parts)
    assert children[0].start == parent.start
    assert children[-1].end == parent.end
    for left, right in itertools.pairwise(children):
        assert left.end == right.start  # contiguous: no gap, no overlap
    assert len(children) == min(parts, width_ms)


@given(start=moments, width_ms=st.integers(2, 86_400_000), parts=st.integers(2, 32), offset=st.integers(0))
def test_every_moment_lies_in_exactly_one_child(
    start: dt.datetime, width_ms: int, parts: int, offset: int
) -> None:
    parent = Window(start, start + width_ms * MILLISECOND)
    moment = start + (offset % width_ms) * MILLISECOND
    assert sum(child.contains(moment) for child in parent.split(parts)) == 1


@given(parent_start=moments, width_ms=st.integers(1, 10**9), parts=st.integers(1, 8))
def test_keys_round_trip(parent_start: dt.datetime, width_ms: int, parts: int) -> None:
    for child in Window(parent_start, parent_start + width_ms * MILLISECOND).split(parts):
        assert Window.from_key(child.key()) == child


def test_midnight_belongs_to_the_day_it_starts() -> None:
    midnight = dt.datetime(2026, 11, 21, tzinfo=UTC)
    assert Window.day(dt.date(2026, 11, 21)).contains(midnight)
    assert not Window.day(dt.date(2026, 11, 20)).contains(midnight)
    assert Window.day(dt.date(2026, 11, 20)).contains(midnight - MILLISECOND)


def test_invalid_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Window(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="not after"):
        Window(dt.datetime(2026, 1, 2, tzinfo=UTC), dt.datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="before start"):
        days_between(dt.date(2026, 1, 2), dt.date(2026, 1, 1))
