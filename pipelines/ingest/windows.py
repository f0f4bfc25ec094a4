"""Half-open UTC time windows: the one place where window arithmetic happens.

Every window is `[start, end)` in UTC, at millisecond resolution (Bird's timestamps carry milliseconds).
Splitting a window yields contiguous children that cover the parent exactly, with no gap and no overlap,
so a message belongs to exactly one leaf window whatever the server does at the bounds.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass

UTC = dt.UTC
MILLISECOND = dt.timedelta(milliseconds=1)


@dataclass(frozen=True, order=True)
class Window:
    """A half-open UTC interval `[start, end)`."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError(f"window bounds must be timezone-aware, got {self.start!r} .. {self.end!r}")
        if self.end <= self.start:
            raise ValueError(
                f"window end {self.end.isoformat()} is not after its start {self.start.isoformat()}"
            )

    @classmethod
    def day(cls, day: dt.date) -> Window:
        start = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
        return cls(start, start + dt.timedelta(days=1))

    @property
    def width(self) -> dt.timedelta:
        return self.end - self.start

    def contains(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end

    def split(self, parts: int) -> list[Window]:
        """Split into `parts` contiguous children of (nearly) equal width on millisecond boundaries.

        Fewer children come back when the window is narrower than `parts` milliseconds.
        """
        total_ms = _to_ms(self.end) - _to_ms(self.start)
        parts = max(1, min(parts, total_ms))
        start_ms = _to_ms(self.start)
        bounds = [start_ms + (total_ms * i) // parts for i in range(parts)] + [_to_ms(self.end)]
        edges = [self.start, *(_from_ms(b) for b in bounds[1:-1]), self.end]
        return [Window(a, b) for a, b in itertools.pairwise(edges)]

    def key(self) -> str:
        """A stable, filesystem-safe name for checkpoints and spool files."""
        return f"{_to_ms(self.start)}-{_to_ms(self.end)}"

    @classmethod
    def from_key(cls, key: str) -> Window:
        start_ms, end_ms = key.split("-")
        return cls(_from_ms(int(start_ms)), _from_ms(int(end_ms)))


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Every date from `first` to `last`, both included."""
    if last < first:
        raise ValueError(f"end date {last} is before start date {first}")
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _to_ms(moment: dt.datetime) -> int:
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def _from_ms(ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(milliseconds=ms)
