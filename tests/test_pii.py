"""PII policy: with `hash` no identifier or text reaches Parquet or DuckDB unhashed, and counts still work."""

import asyncio
import datetime as dt
import re
from pathlib import Path

import duckdb
import orjson
import polars as pl
import pytest

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.server import RunningEmulator
from pipelines.ingest.fetch import FetchSettings
from pipelines.ingest.land import RAW_MESSAGES, land_messages
from pipelines.ingest.pii import HASH_PREFIX, PiiMode, PiiPolicy
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from transforms.messages import flatten_messages
from transforms.schema import CHANNEL_SCHEMA
from warehouse.store import Warehouse

DAY = dt.date(2026, 1, 13)
MESSAGE = {
    "id": "m1",
    "sender": {"connector": {"id": "k", "identifierValue": "+3197010000000"}},
    "receiver": {
        "contacts": [
            {
                "id": "c",
                "identifierKey": "phonenumber",
                "identifierValue": "+31612345678",
                "countryCode": "NL",
                "annotations": {"name": "Anna de Vries"},
            }
        ]
    },
    "body": {"type": "text", "text": {"text": "Uw code is 123456"}},
    "meta": {"email": {"subject": "Hello Anna"}},
}


def test_hash_replaces_identifiers_and_text_deterministically() -> None:
    policy = PiiPolicy(PiiMode.HASH, key="secret-1")
    scrubbed = orjson.loads(policy.scrub_message(orjson.dumps(MESSAGE)))
    contact = scrubbed["receiver"]["contacts"][0]
    assert contact["identifierValue"].startswith(HASH_PREFIX)
    assert contact["annotations"]["name"].startswith(HASH_PREFIX)
    assert contact["countryCode"] == "NL"  # not personal: kept for the country dimension
    assert scrubbed["sender"]["connector"]["identifierValue"] == "+3197010000000"  # our own number
    assert scrubbed["body"]["type"] == "text" and "text" not in scrubbed["body"]
    assert scrubbed["meta"]["email"]["subject"].startswith(HASH_PREFIX)
    assert policy.scrub_message(orjson.dumps(MESSAGE)) == policy.scrub_message(orjson.dumps(MESSAGE))
    other_key = orjson.loads(PiiPolicy(PiiMode.HASH, key="secret-2").scrub_message(orjson.dumps(MESSAGE)))
    assert other_key["receiver"]["contacts"][0]["identifierValue"] != contact["identifierValue"]
    assert "secret-1" not in repr(policy)


def test_drop_removes_and_keep_leaves_bytes_alone() -> None:
    dropped = orjson.loads(PiiPolicy(PiiMode.DROP).scrub_message(orjson.dumps(MESSAGE)))
    assert dropped["receiver"]["contacts"][0]["identifierValue"] is None
    assert dropped["body"] == {"type": "text"}
    raw = orjson.dumps(MESSAGE)
    assert PiiPolicy(PiiMode.KEEP).scrub_message(raw) is raw
    with pytest.raises(ValueError, match="BIRD_ETL_PII_KEY"):
        PiiPolicy(PiiMode.HASH)


def _land_and_load(emulator: RunningEmulator, root: Path, policy: PiiPolicy) -> Warehouse:
    settings = BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )
    lake = Lake(root / "lake")

    async def go() -> None:
        async with AsyncBirdClient(settings) as client:
            await land_messages(
                client,
                lake,
                root / "staging",
                workspace_id=emulator.workspace_id,
                day=DAY,
                settings=FetchSettings(),
                pii=policy,
            )

    asyncio.run(go())
    raw = lake.scan_partition(RAW_MESSAGES, emulator.workspace_id, DAY)
    window = Window.day(DAY)
    warehouse = Warehouse(root)
    warehouse.load_messages(
        workspace_id=emulator.workspace_id,
        start=window.start,
        end=window.end,
        messages=flatten_messages(raw, pl.LazyFrame(schema=CHANNEL_SCHEMA)).collect(),
    )
    return warehouse


def _personal_values(emulator: RunningEmulator) -> tuple[set[str], list[str]]:
    """Contact identifiers and (a sample of) message texts of the day, as the emulator served them."""
    window = Window.day(DAY)
    identifiers, texts = set(), []
    for message_id in sorted(emulator.store.ground_truth_ids(window.start, window.end)):
        message = emulator.store.message(message_id)
        for side in ("sender", "receiver"):
            party = message.get(side) or {}
            for contact in [party.get("contact"), *(party.get("contacts") or [])]:
                if contact and contact.get("identifierValue"):
                    identifiers.add(contact["identifierValue"])
        text = ((message.get("body") or {}).get("text") or {}).get("text")
        if text and len(text) > 12:
            texts.append(text)
    return identifiers, texts[:25]


def _leaks(stored: str, identifiers: set[str], texts: list[str]) -> list[str]:
    tokens = set(re.findall(r"[\w.+-]+@[\w.-]+|\+?\d[\d -]{4,}\d", stored))
    return sorted(identifiers & tokens) + [text for text in texts if text in stored]


def _every_string_stored(root: Path) -> str:
    cells = []
    for path in root.rglob("*.parquet"):
        frame = pl.read_parquet(path)
        cells += [
            str(v) for column in frame.columns for v in frame[column].cast(pl.String, strict=False).to_list()
        ]
    for path in root.rglob("*.duckdb"):
        with duckdb.connect(str(path), read_only=True) as con:
            for (table,) in con.sql("select table_name from duckdb_tables()").fetchall():
                for row in con.sql(f'select * from "{table}"').fetchall():
                    cells += [str(v) for v in row]
    return "\n".join(cells)


def test_nothing_unhashed_reaches_parquet_or_duckdb(emulator_module: RunningEmulator, tmp_path: Path) -> None:
    identifiers, texts = _personal_values(emulator_module)
    assert len(identifiers) > 50 and texts
    hashed = _land_and_load(emulator_module, tmp_path / "hash", PiiPolicy(PiiMode.HASH, key="k3y"))
    assert _leaks(_every_string_stored(tmp_path / "hash"), identifiers, texts) == []
    kept = _land_and_load(emulator_module, tmp_path / "keep", PiiPolicy(PiiMode.KEEP))
    assert len(_leaks(_every_string_stored(tmp_path / "keep"), identifiers, texts)) > 50  # the check can fail
    # Joins and distinct counts survive hashing; country still comes from Bird's countryCode.
    query = "select count(distinct receiver_identifier), count(country_code) from messages"
    with hashed.connect_readonly() as a, kept.connect_readonly() as b:
        hashed_counts, kept_counts = a.sql(query).fetchall()[0], b.sql(query).fetchall()[0]
    assert hashed_counts[0] == kept_counts[0]
    assert hashed_counts[1] >= 0.9 * kept_counts[1]
