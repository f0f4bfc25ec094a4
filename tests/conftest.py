"""Shared fixtures: a Bird API emulator on a free loopback port, over a small fixed workspace."""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore

# Three days (2026-01-12 .. 2026-01-14 UTC, about 1,000 messages); the clock stands six hours after the
# last day, so the newest messages are still settling and `store.advance` has something to change.
EMULATOR_SPEC = DatasetSpec(seed=7, days=3, messages_per_day=300, end=date(2026, 1, 15))
EMULATOR_NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)


def _serve() -> Iterator[RunningEmulator]:
    with run_emulator(store=MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)) as running:
        yield running


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """A fresh emulator per test: use it when the test changes the clock, the faults or the data."""
    yield from _serve()


@pytest.fixture(scope="module")
def emulator_module() -> Iterator[RunningEmulator]:
    """One emulator per test module, for tests that only read."""
    yield from _serve()
