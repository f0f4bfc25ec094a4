"""Running a paging event loop without the garbage collector's long pauses."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_paging(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)` with the objects alive before it (modules, Dagster's definitions and run
    machinery: about a quarter of a million) kept out of Python's cyclic collections until it ends.

    A full collection over them stalled a backfill's event loop for up to 160 ms: requests admitted before
    the stall left after it, bunched with later ones into one second of Bird's rate limit (429s, then a
    halved request rate). What the loop allocates itself is still collected as usual.
    """
    gc.freeze()
    try:
        return asyncio.run(coroutine)
    finally:
        gc.unfreeze()
