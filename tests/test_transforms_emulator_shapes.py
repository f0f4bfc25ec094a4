"""flatten_messages and flatten_interactions accept every object the Bird emulator serves.

Protects against drift between the explicit JSON dtypes and the payloads the rest of the project produces:
a field served with another type would make json_decode raise. Also checks that countries derived from
phone numbers agree with the countryCode the emulator gives its contacts.
"""

from datetime import UTC, date, datetime

import orjson
import polars as pl
import pytest

from pipelines.emulator.dataset import DatasetSpec
from pipelines.emulator.store import MessageStore
from transforms.interactions import flatten_interactions
from transforms.messages import flatten_messages
from transforms.schema import (
    CHANNEL_SCHEMA,
    INTERACTION_SCHEMA,
    MESSAGE_SCHEMA,
    RAW_INTERACTION_SCHEMA,
    RAW_MESSAGE_SCHEMA,
)

NOW = datetime(2026, 1, 15, 6, 0, tzinfo=UTC)
WORKSPACE_ID = "ws-emulated"


@pytest.fixture(scope="module")
def store() -> MessageStore:
    return MessageStore.generate(
        DatasetSpec(seed=11, days=2, messages_per_day=400, end=date(2026, 1, 15)), now=NOW
    )


@pytest.fixture(scope="module")
def served(store: MessageStore) -> list[dict]:
    page = store.page(start_ms=None, end_ms=None, after=None, oldest_first=True, limit=100_000, keep=())
    return [orjson.loads(item) for item in page.items]


@pytest.fixture(scope="module")
def channels(store: MessageStore) -> pl.LazyFrame:
    return pl.LazyFrame(
        [
            (
                WORKSPACE_ID,
                c["id"],
                c["platformId"],
                c["name"],
                c["identifier"],
                c["status"],
                c["connectorId"],
            )
            for c in store.channels()
        ],
        schema=CHANNEL_SCHEMA,
        orient="row",
    )


def test_every_served_message_flattens(served: list[dict], channels: pl.LazyFrame) -> None:
    raw = pl.LazyFrame(
        [
            {
                "workspace_id": WORKSPACE_ID,
                "id": message["id"],
                "channel_id": message["channelId"],
                "status": message["status"],
                "direction": message["direction"],
                "created_at": datetime.fromisoformat(message["createdAt"]),
                "updated_at": datetime.fromisoformat(message["updatedAt"]),
                "raw": orjson.dumps(message).decode(),
                "ingested_at": NOW,
            }
            for message in served
        ],
        schema=RAW_MESSAGE_SCHEMA,
    )
    flat = flatten_messages(raw, channels).collect()
    assert flat.schema == MESSAGE_SCHEMA
    assert flat.height == len({message["id"] for message in served}) > 0
    assert flat["platform"].null_count() == 0
    given = pl.DataFrame(
        {
            "id": [message["id"] for message in served],
            "given_country": [
                ((message.get("receiver") or {}).get("contacts") or [{}])[0].get("countryCode")
                or ((message.get("sender") or {}).get("contact") or {}).get("countryCode")
                for message in served
            ],
        }
    )
    phones = flat.filter(pl.col("country_code").is_not_null()).join(given, on="id")
    assert phones.height > 0
    assert (phones["country_code"] == phones["given_country"]).all()


def test_every_served_interaction_flattens(
    store: MessageStore, served: list[dict], channels: pl.LazyFrame
) -> None:
    interactions = [interaction for message in served for interaction in store.interactions(message["id"])]
    raw = pl.LazyFrame(
        [
            {
                "workspace_id": WORKSPACE_ID,
                "id": interaction["id"],
                "message_id": interaction["messageId"],
                "channel_id": interaction["channelId"],
                "type": interaction["type"],
                "created_at": datetime.fromisoformat(interaction["createdAt"]),
                "raw": orjson.dumps(interaction).decode(),
                "ingested_at": NOW,
            }
            for interaction in interactions
        ],
        schema=RAW_INTERACTION_SCHEMA,
    )
    flat = flatten_interactions(raw, channels).collect()
    assert flat.schema == INTERACTION_SCHEMA
    assert flat.height == len(interactions) > 0
