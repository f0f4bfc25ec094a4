"""flatten_interactions turns Bird's interaction JSON into the `interactions` contract, one row per id.

Protects: the exact INTERACTION_SCHEMA, every metadata field, missing metadata, unknown types kept and
flagged, the platform fallback to the channel, conversion timestamps normalised to UTC, and deduplication.
"""

import json
from datetime import UTC, datetime
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from transforms.interactions import flatten_interactions
from transforms.schema import CHANNEL_SCHEMA, INTERACTION_SCHEMA, RAW_INTERACTION_SCHEMA

CREATED_AT = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
CHANNELS = pl.LazyFrame(
    [("ws-1", "ch-mail", "email-sparkpost", "Mail", "news@example.com", "active", "conn-2")],
    schema=CHANNEL_SCHEMA,
    orient="row",
)


def raw_interactions(*interactions: dict[str, Any], ingested_at: datetime = CREATED_AT) -> pl.LazyFrame:
    return pl.LazyFrame(
        [
            {
                "workspace_id": "ws-1",
                "id": interaction["id"],
                "message_id": interaction["messageId"],
                "channel_id": interaction["channelId"],
                "type": interaction["type"],
                "created_at": datetime.fromisoformat(interaction["createdAt"]),
                "raw": json.dumps(interaction, ensure_ascii=False),
                "ingested_at": ingested_at,
            }
            for interaction in interactions
        ],
        schema=RAW_INTERACTION_SCHEMA,
    )


def interaction(**fields: Any) -> dict[str, Any]:
    base = {
        "id": "int-1",
        "messageId": "msg-1",
        "channelId": "ch-mail",
        "type": "clicked",
        "createdAt": "2026-11-20T11:00:00Z",
        "receiver": {"contacts": [{"identifierValue": "jan@example.nl"}]},
    }
    return base | fields


def test_every_column_of_a_fully_described_interaction() -> None:
    full = interaction(
        platformId="email-messagebird",
        details="item_1_clicked",
        metadata={
            "link": {"name": "Shop 🛍", "url": "https://example.com/shop"},
            "button": {"payload": "BUY"},
            "reaction": {"emoji": "👍", "action": "react"},
            "conversion": {
                "type": "purchase",
                "status": "ok",
                "method": "pixel",
                "timestamp": "2026-11-20T13:05:00+02:00",
            },
            "prefetched": True,
        },
    )
    expected = pl.DataFrame(
        [
            (
                "int-1", "ws-1", "msg-1", "ch-mail", "email-messagebird", "clicked", True, "item_1_clicked",
                CREATED_AT, "https://example.com/shop", "Shop 🛍", "BUY", "👍", "react", "purchase", "ok",
                "pixel", datetime(2026, 11, 20, 11, 5, tzinfo=UTC),
            )
        ],
        schema=INTERACTION_SCHEMA,
        orient="row",
    )  # fmt: skip
    assert_frame_equal(flatten_interactions(raw_interactions(full), CHANNELS).collect(), expected)


def test_missing_metadata_unknown_type_and_platform_from_the_channel() -> None:
    bare = interaction(type="teleported", metadata=None)
    row = flatten_interactions(raw_interactions(bare), CHANNELS).collect().row(0, named=True)
    assert (row["type"], row["is_known_type"], row["platform"]) == ("teleported", False, "email-sparkpost")
    assert all(
        value is None for name, value in row.items() if name.startswith(("link_", "button_", "conversion_"))
    )


def test_one_row_per_interaction_id() -> None:
    raw = pl.concat(
        [
            raw_interactions(interaction(details="old copy")),
            raw_interactions(interaction(details="new copy"), ingested_at=datetime(2026, 11, 21, tzinfo=UTC)),
            raw_interactions(interaction(id="int-2", type="opened")),
        ]
    )
    flat = flatten_interactions(raw, CHANNELS).collect().sort("id")
    assert flat.select("id", "details").rows() == [("int-1", "new copy"), ("int-2", None)]
