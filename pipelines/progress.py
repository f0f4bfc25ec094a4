"""Messages landed so far by a backfill: the assets count, the CLI shows messages/s and an ETA.

The counter lives in shared memory so that partition runs in worker processes add to the same total.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.sharedctypes import Synchronized


class ProgressCounter:
    """A running total shared with the worker processes it is handed to."""

    def __init__(self) -> None:
        self._value: Synchronized[int] = multiprocessing.get_context("spawn").Value("q", 0)

    def add(self, count: int) -> None:
        with self._value.get_lock():
            self._value.value += count

    @property
    def total(self) -> int:
        return self._value.value

    def shared(self) -> Synchronized[int]:
        """The shared value, to pass to a worker process at its start."""
        return self._value

    def adopt(self, value: Synchronized[int]) -> None:
        """In a worker: count into the parent's shared value."""
        self._value = value


MESSAGES_LANDED = ProgressCounter()
