"""A batch of partition loads, decided at once, leaves what the same loads one after another would leave.

Protects the precedence rules `load_partitions` applies across a batch (warehouse/sql/resolve_batch.sql): for
an id, the newest updated_at wins; a version already in the warehouse is kept only when strictly newer; an
exact tie goes to the later partition; a later partition removes the rows of its window that it lacks (the
same day twice in one batch); interactions go to the later partition. Each case is loaded as one batch and
one partition at a time, from the same start, and must give the same tables, marts, load log and counts.
Also: marts read in several chunks equal marts read in one; seeds edited after the first load are reloaded;
no spool directory outlives a load.
"""

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from test_warehouse import (
    DATA_RELATIONS,
    DAY,
    NEXT_DAY,
    WORKSPACE,
    failed,
    interactions_frame,
    load_varied,
    message,
    messages_frame,
    table,
)

from warehouse import store
from warehouse.store import PartitionLoad, Warehouse

LATER_DAY = NEXT_DAY + timedelta(days=1)


def day_load(day: datetime, *rows: dict[str, Any]) -> PartitionLoad:
    return PartitionLoad(WORKSPACE, day, day + timedelta(days=1), messages_frame(*rows))


def interactions_load(day: datetime, *rows: dict[str, Any]) -> PartitionLoad:
    return PartitionLoad(WORKSPACE, day, day + timedelta(days=1), interactions_frame(*rows))


def at(day: datetime, hours: float) -> dict[str, Any]:
    """created_at `hours` into `day` (`message` has it updated a minute later unless told otherwise)."""
    return {"created_at": day + timedelta(hours=hours)}


def load_both_ways(
    tmp_path: Path,
    relation: str,
    batch: list[PartitionLoad],
    before: tuple[tuple[str, list[PartitionLoad]], ...] = (),
) -> Warehouse:
    """Load `before`, then `batch` as one batch into one warehouse and partition by partition into another;
    assert that both hold the same rows, marts and load log and report the same counts. Returns the first."""
    batched, one_by_one = Warehouse(tmp_path / "batched"), Warehouse(tmp_path / "one_by_one")
    for warehouse in (batched, one_by_one):
        for earlier_relation, loads in before:
            warehouse.load_partitions(earlier_relation, loads)
    results = batched.load_partitions(relation, batch)
    singles = [one_by_one.load_partitions(relation, [load])[0] for load in batch]
    for name in DATA_RELATIONS:
        assert_frame_equal(table(batched, name), table(one_by_one, name))
    assert_frame_equal(
        table(batched, "load_log").drop("loaded_at"), table(one_by_one, "load_log").drop("loaded_at")
    )
    assert [(r.n_rows, r.n_replaced) for r in results] == [(s.n_rows, s.n_replaced) for s in singles]
    return batched


def statuses(warehouse: Warehouse) -> dict[str, str]:
    return dict(table(warehouse, "messages").select("id", "status").rows())


def test_the_newest_version_wins_across_partitions_of_a_batch(tmp_path: Path) -> None:
    older = message("m1", status="sent", **at(DAY, 1))
    newer = message("m1", status="delivered", **at(NEXT_DAY, 1))
    warehouse = load_both_ways(
        tmp_path, "messages", [day_load(DAY, older, message("m2")), day_load(NEXT_DAY, newer)]
    )
    assert statuses(warehouse) == {"m1": "delivered", "m2": "delivered"}


def test_an_earlier_partition_with_a_newer_version_wins(tmp_path: Path) -> None:
    newer = message("m1", status="delivered", updated_at=LATER_DAY, **at(DAY, 1))
    older = message("m1", status="sent", **at(NEXT_DAY, 1))
    warehouse = load_both_ways(tmp_path, "messages", [day_load(DAY, newer), day_load(NEXT_DAY, older)])
    assert statuses(warehouse) == {"m1": "delivered"}
    assert table(warehouse, "messages")["created_at"].to_list() == [DAY + timedelta(hours=1)]


def test_an_exact_tie_goes_to_the_later_partition(tmp_path: Path) -> None:
    tie = {"updated_at": LATER_DAY, "last_status_at": LATER_DAY}
    first, second = (
        message("m1", status="sent", **tie),
        message("m1", status="delivered", **tie, **at(NEXT_DAY, 1)),
    )
    in_order = load_both_ways(
        tmp_path / "in_order", "messages", [day_load(DAY, first), day_load(NEXT_DAY, second)]
    )
    assert statuses(in_order) == {"m1": "delivered"}
    reversed_order = load_both_ways(
        tmp_path / "reversed", "messages", [day_load(NEXT_DAY, second), day_load(DAY, first)]
    )
    assert statuses(reversed_order) == {"m1": "sent"}


def test_ties_within_a_partition_go_to_the_newest_status_then_the_first(tmp_path: Path) -> None:
    updated = DAY + timedelta(hours=5)
    versions = [
        message("m1", status="sent", updated_at=updated, last_status_at=DAY + timedelta(hours=2)),
        message("m1", status="delivered", updated_at=updated, last_status_at=DAY + timedelta(hours=4)),
        message("m2", status="sent", updated_at=updated),
        message("m2", status="delivered", updated_at=updated),
    ]
    warehouse = load_both_ways(tmp_path, "messages", [day_load(DAY, *versions)])
    assert statuses(warehouse) == {"m1": "delivered", "m2": "delivered"}


def test_a_newer_stored_version_is_kept_and_an_equal_one_replaced(tmp_path: Path) -> None:
    at_five = DAY + timedelta(hours=5)
    stored_versions = [message(f"m{n}", status="delivered", updated_at=at_five) for n in (1, 2)]
    stored = (("messages", [day_load(DAY, *stored_versions)]),)
    tie = {"updated_at": at_five, "last_status_at": DAY}
    batch = [
        day_load(
            DAY,
            message("m1", status="sent", updated_at=DAY + timedelta(hours=4)),
            message("m2", status="sent", **tie),
        ),
        day_load(
            LATER_DAY,
            message("m1", status="accepted", **at(LATER_DAY, 1), updated_at=DAY + timedelta(hours=3)),
        ),
    ]
    warehouse = load_both_ways(tmp_path, "messages", batch, before=stored)
    assert statuses(warehouse) == {"m1": "delivered", "m2": "sent"}


def test_an_id_moving_to_another_day_leaves_its_old_day(tmp_path: Path) -> None:
    stored = (("messages", [day_load(DAY, message("m1"), failed("m2", 15005))]),)
    moved = message("m1", status="delivered", updated_at=NEXT_DAY + timedelta(hours=2), **at(NEXT_DAY, 1))
    warehouse = load_both_ways(tmp_path, "messages", [day_load(NEXT_DAY, moved)], before=stored)
    daily = table(warehouse, "delivery_daily").select("day", "n_messages").rows()
    assert daily == [(DAY.date(), 1), (NEXT_DAY.date(), 1)]


def test_the_same_day_twice_in_a_batch_keeps_only_the_later(tmp_path: Path) -> None:
    stored = (("messages", [day_load(DAY, message("gone"), message("m1"))]),)
    newer = message("m1", status="delivered", updated_at=DAY + timedelta(hours=3))
    batch = [
        day_load(DAY, message("a"), message("m1", status="sent")),
        day_load(NEXT_DAY, message("b", **at(NEXT_DAY, 1))),
        day_load(DAY, newer),  # removes "a" ...
        day_load(DAY, message("a", status="sent"), newer),  # ... which this load writes anew
    ]
    warehouse = load_both_ways(tmp_path, "messages", batch, before=stored)
    assert statuses(warehouse) == {"a": "sent", "b": "delivered", "m1": "delivered"}


def interaction(interaction_id: str, message_id: str, hours: float, **overrides: Any) -> dict[str, Any]:
    return {
        "id": interaction_id,
        "message_id": message_id,
        "type": "opened",
        "created_at": DAY + timedelta(hours=hours),
    } | overrides


MESSAGES_OF_TWO_DAYS = (
    (
        "messages",
        [day_load(DAY, message("m1"), message("m2")), day_load(NEXT_DAY, message("n1", **at(NEXT_DAY, 1)))],
    ),
)


def test_an_interaction_in_two_partitions_of_a_batch_goes_to_the_later(tmp_path: Path) -> None:
    batch = [
        interactions_load(DAY, interaction("i1", "m1", 3), interaction("i2", "m2", 3)),
        interactions_load(NEXT_DAY, interaction("i1", "n1", 30, type="clicked")),
    ]
    warehouse = load_both_ways(tmp_path, "interactions", batch, before=MESSAGES_OF_TWO_DAYS)
    kept = table(warehouse, "interactions").select("id", "message_id", "type").rows()
    assert kept == [("i1", "n1", "clicked"), ("i2", "m2", "opened")]


def test_a_later_partition_removes_the_interactions_of_its_messages_it_lacks(tmp_path: Path) -> None:
    stored = (
        *MESSAGES_OF_TWO_DAYS,
        ("interactions", [interactions_load(NEXT_DAY, interaction("old", "n1", 30))]),
    )
    batch = [
        interactions_load(DAY, interaction("i1", "m1", 3), interaction("stray", "n1", 31)),
        interactions_load(NEXT_DAY, interaction("i2", "n1", 32)),
        interactions_load(DAY, interaction("i1", "m1", 4)),
    ]
    warehouse = load_both_ways(tmp_path, "interactions", batch, before=stored)
    assert sorted(table(warehouse, "interactions")["id"]) == ["i1", "i2"]


def test_marts_read_in_several_chunks_equal_marts_read_in_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = Warehouse(tmp_path / "whole")
    load_varied(whole)
    monkeypatch.setattr(store, "MART_CHUNK_ROWS", 5)
    monkeypatch.setattr(store, "MART_BATCH_ROWS", 3)
    chunked = Warehouse(tmp_path / "chunked")
    load_varied(chunked)
    for name in ("delivery_daily", "failure_breakdown", "interaction_daily"):
        assert_frame_equal(table(chunked, name), table(whole, name))
    assert table(whole, "delivery_daily").height > 5


def test_a_seed_edited_after_the_first_load_is_reloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for seed in store.SEEDS_DIR.glob("*.csv"):
        (seeds / seed.name).write_text(seed.read_text())
    monkeypatch.setattr(store, "SEEDS_DIR", seeds)
    warehouse = Warehouse(tmp_path / "data")
    warehouse.load_partitions("messages", [day_load(DAY, message("m1"))])
    with (seeds / "failure_sources.csv").open("a") as csv:
        csv.write("new-step,A step Bird added.,false\n")
    with (seeds / "failure_codes.csv").open("a") as csv:
        csv.write("19999,NEW_CODE,A code Bird added.\n")
    warehouse.load_partitions("messages", [day_load(NEXT_DAY, message("m2", **at(NEXT_DAY, 1)))])
    assert "new-step" in table(warehouse, "failure_sources")["failure_source_name"].to_list()
    codes = table(warehouse, "failure_codes").filter(pl.col("failure_code") == 19999)
    assert codes.select("name", "is_known").rows() == [("NEW_CODE", True)]


def test_no_spool_outlives_a_load(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path)
    leftover = warehouse.work_path.parent / ".spool.crashed"
    leftover.mkdir(parents=True)
    warehouse.load_partitions("messages", [day_load(DAY, message("m1"))])
    with pytest.raises(ValueError, match="outside partition"):
        warehouse.load_partitions("messages", [day_load(DAY, message("late", **at(NEXT_DAY, 1)))])
    assert list(warehouse.work_path.parent.glob(".spool.*")) == []
