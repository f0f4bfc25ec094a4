"""The DuckDB warehouse keeps one row per id whatever the order or repetition of partition loads.

Protects: idempotent migrations; tables that match the polars contracts; a partition load replaces exactly its
partition, twice is the same as once; a newer updated_at replaces a row, an older one never does; the marts
equal an independent SQL computation over the loaded messages; rebuild from the lake equals the incremental
loads; the published snapshot is what new readers see. Real DuckDB files under tmp_path.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import schema
from transforms.vocabulary import FINAL_STATUSES, STATUSES
from warehouse.migrate import available_migrations
from warehouse.store import PartitionLoad, Warehouse

WORKSPACE = "ws-1"
DAY = datetime(2026, 11, 20, tzinfo=UTC)
NEXT_DAY = DAY + timedelta(days=1)


def message(message_id: str, **overrides: Any) -> dict[str, Any]:
    """One MESSAGE_SCHEMA row: an outgoing SMS delivered a minute after creation, unless overridden."""
    row: dict[str, Any] = {
        "id": message_id,
        "workspace_id": WORKSPACE,
        "channel_id": "ch-sms",
        "platform": "sms-messagebird",
        "direction": "outgoing",
        "status": "delivered",
        "reason": None,
        "details": None,
        "created_at": DAY + timedelta(hours=1),
        "last_status_at": None,
        "scheduled_for": None,
        "sender_identifier": "+3197010000000",
        "receiver_identifier": "+31612345678",
        "receiver_kind": "phone",
        "country_code": "NL",
        "body_type": "text",
        "parts_count": 1,
        "tags": ["promo"],
        "reference": None,
        "batch_id": None,
        "failure_code": None,
        "failure_description": None,
        "failure_source_code": None,
        "failure_source_name": None,
    } | overrides
    row.setdefault("updated_at", row["created_at"] + timedelta(minutes=1))
    row["last_status_at"] = row["last_status_at"] or row["updated_at"]
    row["is_known_status"] = row["status"] in STATUSES
    row["is_final"] = row["status"] in FINAL_STATUSES
    row["delivery_seconds"] = (
        (row["last_status_at"] - row["created_at"]).total_seconds()
        if row["is_final"] and row["direction"] == "outgoing"
        else None
    )
    return row


def messages_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=schema.MESSAGE_SCHEMA)


def interactions_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    defaults = {name: None for name in schema.INTERACTION_SCHEMA.names()} | {
        "workspace_id": WORKSPACE,
        "channel_id": "ch-email",
        "platform": "email-sparkpost",
        "is_known_type": True,
    }
    return pl.DataFrame([defaults | row for row in rows], schema=schema.INTERACTION_SCHEMA)


def failed(message_id: str, code: int, source: str = "sms-messagebird", **overrides: Any) -> dict[str, Any]:
    failure = {
        "status": "delivery_failed",
        "failure_code": code,
        "failure_description": "unknown subscriber",
        "failure_source_code": "1",
        "failure_source_name": source,
    }
    return message(message_id, **(failure | overrides))


def table(warehouse: Warehouse, name: str) -> pl.DataFrame:
    """A relation's rows in a stable order, read from the published snapshot."""
    with warehouse.connect_readonly() as con:
        frame = con.sql(f"select * from {name}").pl()
    return frame.sort(frame.columns, nulls_last=True)


def load_day(warehouse: Warehouse, frame: pl.DataFrame, day: datetime = DAY, workspace: str = WORKSPACE):
    return warehouse.load_messages(
        workspace_id=workspace, start=day, end=day + timedelta(days=1), messages=frame
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    warehouse = Warehouse(tmp_path)
    warehouse.migrate()
    return warehouse


DATA_RELATIONS = (
    *("messages", "interactions", "channels", "failure_codes", "failure_sources"),
    *("delivery_daily", "failure_breakdown", "interaction_daily"),
)


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path)
    versions = [migration.version for migration in available_migrations()]
    assert warehouse.migrate() == versions
    assert warehouse.migrate() == []
    assert Warehouse(tmp_path).migrate() == []
    ledger = table(warehouse, "schema_migrations")
    assert ledger["version"].to_list() == versions
    assert warehouse.path.exists()


@pytest.mark.parametrize(
    ("relation", "contract"),
    [
        ("messages", schema.MESSAGE_SCHEMA),
        ("interactions", schema.INTERACTION_SCHEMA),
        ("channels", schema.CHANNEL_SCHEMA),
        ("failure_codes", schema.FAILURE_CODE_SCHEMA),
        ("delivery_daily", schema.DELIVERY_DAILY_SCHEMA),
        ("failure_breakdown", schema.FAILURE_BREAKDOWN_SCHEMA),
        ("interaction_daily", schema.INTERACTION_DAILY_SCHEMA),
    ],
)
def test_tables_match_the_polars_contracts(warehouse: Warehouse, relation: str, contract: pl.Schema) -> None:
    assert table(warehouse, relation).schema == contract


def test_seeds_are_loaded(warehouse: Warehouse) -> None:
    codes = table(warehouse, "failure_codes")
    assert {11001, 12006, 14001, 15005} <= set(codes["failure_code"])
    assert codes["is_known"].all()
    assert dict(codes.select("failure_code", "category").iter_rows())[12003] == "service error"
    assert "sms-messagebird" in table(warehouse, "failure_sources")["failure_source_name"].to_list()


def test_loading_a_partition_twice_changes_nothing(warehouse: Warehouse) -> None:
    frame = messages_frame(message("m1"), failed("m2", 15005), message("m3", status="sent"))
    first = load_day(warehouse, frame)
    before = {name: table(warehouse, name) for name in DATA_RELATIONS}
    second = load_day(warehouse, frame)
    for name in DATA_RELATIONS:
        assert_frame_equal(table(warehouse, name), before[name])
    assert (first.n_rows, first.n_replaced) == (3, 0)
    assert (second.n_rows, second.n_replaced) == (3, 3)
    assert table(warehouse, "load_log")["n_rows"].to_list() == [3, 3]


def test_a_newer_status_replaces_the_row(warehouse: Warehouse) -> None:
    load_day(warehouse, messages_frame(message("m1", status="sent")))
    load_day(
        warehouse, messages_frame(message("m1", status="delivered", updated_at=DAY + timedelta(hours=3)))
    )
    messages = table(warehouse, "messages")
    assert messages.select("id", "status").rows() == [("m1", "delivered")]
    daily = table(warehouse, "delivery_daily")
    assert daily.select("n_messages", "n_delivered", "n_pending").rows() == [(1, 1, 0)]


def test_an_older_version_never_overwrites_a_newer_one(warehouse: Warehouse) -> None:
    newer = message("m1", status="delivered", updated_at=DAY + timedelta(hours=3))
    older = message("m1", status="sent", updated_at=DAY + timedelta(hours=2))
    load_day(warehouse, messages_frame(newer))
    load_day(warehouse, messages_frame(older, message("m2")))
    assert table(warehouse, "messages").select("id", "status").rows() == [
        ("m1", "delivered"),
        ("m2", "delivered"),
    ]


def test_duplicates_within_a_load_keep_the_latest(warehouse: Warehouse) -> None:
    versions = [
        message("m1", status=status, updated_at=DAY + timedelta(hours=hour))
        for hour, status in [(2, "sent"), (4, "delivery_failed"), (3, "delivered")]
    ]
    load_day(warehouse, messages_frame(*versions))
    assert table(warehouse, "messages").select("id", "status").rows() == [("m1", "delivery_failed")]


def test_an_interaction_given_twice_in_a_load_is_kept_once(warehouse: Warehouse) -> None:
    load_day(warehouse, messages_frame(message("m1", status="delivered")))
    twice = {"id": "i1", "message_id": "m1", "type": "opened", "created_at": DAY + timedelta(hours=3)}
    warehouse.load_interactions(
        workspace_id=WORKSPACE,
        start=DAY,
        end=DAY + timedelta(days=1),
        interactions=interactions_frame(twice, twice, {**twice, "created_at": DAY + timedelta(hours=5)}),
    )
    kept = table(warehouse, "interactions").select("id", "created_at").rows()
    assert kept == [("i1", DAY + timedelta(hours=5))]


def test_a_load_replaces_only_its_partition(warehouse: Warehouse) -> None:
    load_day(warehouse, messages_frame(message("a"), message("b")))
    load_day(warehouse, messages_frame(message("c", created_at=NEXT_DAY)), day=NEXT_DAY)
    load_day(warehouse, messages_frame(message("x", workspace_id="ws-2")), workspace="ws-2")
    result = load_day(warehouse, messages_frame(message("a")))
    assert sorted(table(warehouse, "messages")["id"]) == ["a", "c", "x"]
    assert result.days == (DAY.date(),)
    daily = sorted(table(warehouse, "delivery_daily").select("workspace_id", "day", "n_messages").rows())
    assert daily == [(WORKSPACE, DAY.date(), 1), (WORKSPACE, NEXT_DAY.date(), 1), ("ws-2", DAY.date(), 1)]


def test_rows_outside_the_partition_are_rejected(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match="outside partition"):
        load_day(warehouse, messages_frame(message("late", created_at=NEXT_DAY)))
    with pytest.raises(ValueError, match="outside partition"):
        load_day(warehouse, messages_frame(message("other", workspace_id="ws-2")))
    with pytest.raises(ValueError, match="schema"):
        load_day(warehouse, messages_frame(message("m1")).drop("tags"))
    assert table(warehouse, "messages").is_empty()


def test_unknown_failure_codes_are_kept_and_flagged(warehouse: Warehouse) -> None:
    load_day(warehouse, messages_frame(failed("m1", 15005), failed("m2", 16042)))
    codes = {row["failure_code"]: row for row in table(warehouse, "failure_codes").iter_rows(named=True)}
    assert codes[16042]["is_known"] is False
    assert codes[16042]["category"] == "unknown"
    assert codes[15005]["is_known"] is True
    breakdown = table(warehouse, "failure_breakdown").filter(pl.col("failure_code") == 16042)
    assert breakdown["n_failed"].to_list() == [1]


def varied_messages() -> list[dict[str, Any]]:
    """Two days of messages over two channels, two countries and every kind of outcome."""
    rows = []
    statuses = [
        "delivered",
        "delivered",
        "delivery_failed",
        "sent",
        "sending_failed",
        "accepted",
        "brand_new",
    ]
    for day in (DAY, NEXT_DAY):
        for n in range(28):
            status = statuses[n % len(statuses)]
            common = {
                "created_at": day + timedelta(minutes=37 * n),
                "channel_id": "ch-sms" if n % 2 else "ch-wa",
                "platform": "sms-messagebird" if n % 2 else "whatsapp",
                "country_code": "NL" if n % 3 else "BE",
                "last_status_at": day + timedelta(minutes=37 * n + n),
            }
            message_id = f"{day.date()}-{n}"
            if status.endswith("failed"):
                rows.append(failed(message_id, (15005, 12003, 16042)[n % 3], status=status, **common))
            else:
                rows.append(message(message_id, status=status, **common))
    return rows


def interactions_for(messages: pl.DataFrame) -> pl.DataFrame:
    delivered = messages.filter(status="delivered")
    return interactions_frame(
        *(
            {
                "id": f"i-{message_id}-{kind}",
                "message_id": message_id,
                "channel_id": channel_id,
                "type": kind,
                "created_at": created_at + timedelta(hours=2),
            }
            for message_id, channel_id, created_at in delivered.select(
                "id", "channel_id", "created_at"
            ).rows()
            for kind in ("opened", "clicked")[: 1 + len(message_id) % 2]
        )
    )


def load_varied(warehouse: Warehouse) -> pl.DataFrame:
    messages = messages_frame(*varied_messages())
    for day in (DAY, NEXT_DAY):
        window = messages.filter(pl.col("created_at").dt.date() == day.date())
        load_day(warehouse, window, day=day)
        warehouse.load_interactions(
            workspace_id=WORKSPACE,
            start=day,
            end=day + timedelta(days=1),
            interactions=interactions_for(window),
        )
    return messages


def sql_rows(warehouse: Warehouse, sql: str) -> list[tuple]:
    with warehouse.connect_readonly() as con:
        return sorted(con.sql(sql).fetchall())


def test_marts_equal_an_independent_sql_computation(warehouse: Warehouse) -> None:
    load_varied(warehouse)
    expected_daily = sql_rows(
        warehouse,
        """
        select (created_at at time zone 'UTC')::date, workspace_id, channel_id, platform, country_code,
            direction, count(*), count(*) filter (status = 'delivered'),
            count(*) filter (status in ('delivery_failed', 'sending_failed', 'rejected')),
            count(*) filter (status in ('accepted', 'processing', 'scheduled', 'sent')),
            count(*) filter (status in ('deleted', 'skipped', 'brand_new'))
        from messages group by all
        """,
    )
    actual_daily = sql_rows(
        warehouse,
        "select day, workspace_id, channel_id, platform, country_code, direction, n_messages, n_delivered, "
        "n_failed, n_pending, n_other from delivery_daily",
    )
    assert actual_daily == expected_daily
    expected_failures = sql_rows(
        warehouse,
        """
        select (created_at at time zone 'UTC')::date, workspace_id, channel_id, failure_code,
            failure_source_name, count(*)
        from messages where status in ('delivery_failed', 'sending_failed', 'rejected') group by all
        """,
    )
    actual_failures = sql_rows(
        warehouse,
        "select day, workspace_id, channel_id, failure_code, failure_source_name, n_failed "
        "from failure_breakdown",
    )
    assert actual_failures == expected_failures
    expected_interactions = sql_rows(
        warehouse,
        """
        select (created_at at time zone 'UTC')::date, workspace_id, channel_id, type, count(*),
            count(distinct message_id)
        from interactions group by all
        """,
    )
    actual_interactions = sql_rows(
        warehouse,
        "select day, workspace_id, channel_id, type, n_interactions, n_unique_messages "
        "from interaction_daily",
    )
    assert actual_interactions == expected_interactions
    assert len(expected_daily) == 8 and len(expected_failures) > 3 and len(expected_interactions) > 2


def test_interaction_loads_replace_the_interactions_of_the_partition(warehouse: Warehouse) -> None:
    messages = load_varied(warehouse)
    first_day = messages.filter(pl.col("created_at").dt.date() == DAY.date())
    fewer = interactions_for(first_day).filter(pl.col("type") == "opened")
    result = warehouse.load_interactions(workspace_id=WORKSPACE, start=DAY, end=NEXT_DAY, interactions=fewer)
    interactions = table(warehouse, "interactions")
    assert result.n_rows == fewer.height
    assert result.n_replaced == interactions_for(first_day).height
    assert (
        interactions.height
        == fewer.height
        + interactions_for(messages.filter(pl.col("created_at").dt.date() == NEXT_DAY.date())).height
    )
    assert interactions["id"].is_unique().all()


def test_rebuild_from_the_lake_equals_the_incremental_loads(tmp_path: Path) -> None:
    incremental = Warehouse(tmp_path / "incremental")
    messages = load_varied(incremental)
    rebuilt = Warehouse(tmp_path / "rebuilt")
    rebuilt.load_messages(  # stale rows that the rebuild must drop
        workspace_id="ws-gone",
        start=DAY,
        end=NEXT_DAY,
        messages=messages_frame(message("gone", workspace_id="ws-gone")),
    )
    days = [(day, messages.filter(pl.col("created_at").dt.date() == day.date())) for day in (DAY, NEXT_DAY)]
    results = rebuilt.rebuild(
        [(WORKSPACE, day, day + timedelta(days=1), frame) for day, frame in days],
        interactions=[
            (WORKSPACE, day, day + timedelta(days=1), interactions_for(frame)) for day, frame in days
        ],
    )
    assert [result.n_rows for result in results[:2]] == [frame.height for _, frame in days]
    for name in DATA_RELATIONS:
        assert_frame_equal(table(rebuilt, name), table(incremental, name))


def test_channels_load_replaces_the_workspace_channels(warehouse: Warehouse) -> None:
    def channels(*ids: str) -> pl.DataFrame:
        return pl.DataFrame(
            [
                {
                    "workspace_id": WORKSPACE,
                    "channel_id": i,
                    "platform": "whatsapp",
                    "name": i,
                    "identifier": None,
                    "status": "active",
                    "connector_id": None,
                }
                for i in ids
            ],
            schema=schema.CHANNEL_SCHEMA,
        )

    warehouse.load_channels(channels("ch-1", "ch-2"))
    warehouse.load_channels(channels("ch-2", "ch-3", "ch-3"))
    assert table(warehouse, "channels")["channel_id"].to_list() == ["ch-2", "ch-3"]


def test_a_new_connection_sees_the_new_snapshot_while_an_old_one_is_open(warehouse: Warehouse) -> None:
    old = warehouse.connect_readonly()
    load_day(warehouse, messages_frame(message("m1")))
    with warehouse.connect_readonly() as new:
        assert new.execute("select count(*) from messages").fetchone() == (1,)
    assert old.execute("select count(*) from messages").fetchone() == (0,)
    old.close()


def test_a_batch_load_equals_the_same_loads_one_by_one(tmp_path: Path) -> None:
    days = [DAY + timedelta(days=n) for n in range(3)]
    frames = [
        messages_frame(
            message(f"m{n}a", created_at=day + timedelta(hours=1), updated_at=day + timedelta(hours=2)),
            failed(f"m{n}b", 15005, created_at=day + timedelta(hours=3), updated_at=day + timedelta(hours=4)),
        )
        for n, day in enumerate(days)
    ]
    one_by_one, batched = Warehouse(tmp_path / "one"), Warehouse(tmp_path / "batch")
    for warehouse in (one_by_one, batched):
        warehouse.migrate()
    singles = [load_day(one_by_one, frame, day) for frame, day in zip(frames, days, strict=True)]
    loads = [
        PartitionLoad(WORKSPACE, day, day + timedelta(days=1), frame)
        for frame, day in zip(frames, days, strict=True)
    ]
    results = batched.load_partitions("messages", loads)
    for name in DATA_RELATIONS:
        assert_frame_equal(table(batched, name), table(one_by_one, name))
    assert [(r.n_rows, r.n_replaced) for r in results] == [(s.n_rows, s.n_replaced) for s in singles]
    assert results[0].days == tuple(day.date() for day in days)  # the marts of the batch, recomputed once


def test_a_batch_with_a_bad_partition_loads_nothing(warehouse: Warehouse) -> None:
    good = PartitionLoad(WORKSPACE, DAY, DAY + timedelta(days=1), messages_frame(message("m1")))
    outside = PartitionLoad(WORKSPACE, DAY + timedelta(days=1), DAY + timedelta(days=2), good.rows)
    with pytest.raises(ValueError, match="outside partition"):
        warehouse.load_partitions("messages", [good, outside])
    assert table(warehouse, "messages").height == 0
