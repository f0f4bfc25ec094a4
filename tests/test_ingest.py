"""Ingestion lands every message of a window exactly once, whatever the server's bounds, order and faults.

Real HTTP to the emulator on loopback; real spool, checkpoint and Parquet files under tmp_path.
"""

import asyncio
import datetime as dt
import threading
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from pipelines.bird.client import AsyncBirdClient
from pipelines.bird.models import RawMessagePage, decode_message_page, key_items
from pipelines.bird.query import MessageQuery
from pipelines.bird.retry import RetryPolicy
from pipelines.bird.settings import BirdSettings
from pipelines.emulator.model import to_ms
from pipelines.emulator.server import RunningEmulator, run_emulator
from pipelines.emulator.store import MessageStore
from pipelines.ingest.checkpoint import StagingArea
from pipelines.ingest.fetch import FetchResult, FetchSettings, PartitionFetcher, read_segments
from pipelines.ingest.land import (
    RAW_MESSAGES,
    LandedPartition,
    land_messages,
    unparsed_rows,
)
from pipelines.ingest.rows import key_page, parsed_from_json, spool_batch
from pipelines.ingest.windows import Window
from pipelines.lake import Lake
from tests.conftest import EMULATOR_NOW, EMULATOR_SPEC
from transforms.messages import flatten_messages
from transforms.quality import duplicate_ids
from transforms.schema import CHANNEL_SCHEMA

DAY = dt.date(2026, 1, 13)
FAST_RETRY = RetryPolicy(max_attempts=10, initial=0.01, maximum=0.2)


def _client(emulator: RunningEmulator) -> AsyncBirdClient:
    settings = BirdSettings(
        access_key=emulator.access_key, workspace_id=emulator.workspace_id, api_url=emulator.base_url
    )
    return AsyncBirdClient(settings, retry=FAST_RETRY)


def _land(
    emulator: RunningEmulator,
    root: Path,
    day: dt.date = DAY,
    channel_ids: list[str] | None = None,
    **settings: object,
) -> LandedPartition:
    async def go() -> LandedPartition:
        async with _client(emulator) as client:
            return await land_messages(
                client,
                Lake(root / "lake"),
                root / "staging",
                workspace_id=emulator.workspace_id,
                day=day,
                settings=FetchSettings(**settings),  # type: ignore[arg-type]
                channel_ids=channel_ids,
            )

    return asyncio.run(go())


def _landed_ids(root: Path, emulator: RunningEmulator, day: dt.date = DAY) -> list[str]:
    frame = Lake(root / "lake").scan_partition(RAW_MESSAGES, emulator.workspace_id, day)
    assert frame is not None
    return frame.collect()["id"].to_list()


def _truth(emulator: RunningEmulator, day: dt.date = DAY) -> set[str]:
    window = Window.day(day)
    return emulator.store.ground_truth_ids(window.start, window.end)


def test_a_day_lands_exactly_once(emulator_module: RunningEmulator, tmp_path: Path) -> None:
    landed = _land(emulator_module, tmp_path, page_size=50)
    ids = _landed_ids(tmp_path, emulator_module)
    assert len(ids) == len(set(ids)) == landed.rows == landed.stats.messages
    assert set(ids) == _truth(emulator_module)
    assert landed.stats.pages >= len(ids) / 50
    assert not (tmp_path / "staging" / RAW_MESSAGES).exists() or not any(
        (tmp_path / "staging").rglob("*.parquet")
    )


def test_a_busy_window_is_split_and_still_exact(emulator_module: RunningEmulator, tmp_path: Path) -> None:
    window = Window.day(DAY)
    settings = FetchSettings(
        page_size=20, initial_parts=1, pages_per_leaf=2, min_leaf_width=dt.timedelta(seconds=1)
    )

    async def go() -> set[str]:
        async with _client(emulator_module) as client:
            fetcher = PartitionFetcher(client, StagingArea(tmp_path), settings=settings)
            result = await fetcher.run("p", window)
            assert fetcher.stats.splits >= 1
            assert fetcher.stats.leaves > 1
            frame = pl.from_arrow(pa.concat_tables(read_segments(result.segments)))
            assert frame["id"].is_unique().all()
            return set(frame["id"])

    assert asyncio.run(go()) == _truth(emulator_module)


def test_rows_waiting_in_memory_are_bounded_across_leaves(
    emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    """However many leaves page at once, fewer than `spool_rows` rows plus one page wait in memory: they are
    spooled together, each leaf's rows a row group of one shared file."""
    settings = FetchSettings(page_size=20, initial_parts=8, leaf_concurrency=8, spool_rows=50)

    async def go() -> FetchResult:
        async with _client(emulator_module) as client:
            return await PartitionFetcher(client, StagingArea(tmp_path), settings=settings).run(
                "p", Window.day(DAY)
            )

    result = asyncio.run(go())
    files = [pq.ParquetFile(s[0]) for s in {s for s in result.segments if not isinstance(s, pa.Table)}]
    assert len(files) > 1
    assert max(file.metadata.num_rows for file in files) < settings.spool_rows + settings.page_size
    assert max(file.metadata.num_row_groups for file in files) > 1  # several leaves in one file
    spooled = pl.from_arrow(pa.concat_tables(read_segments(result.segments)))
    assert set(spooled["id"]) == _truth(emulator_module) and spooled["id"].is_unique().all()


@pytest.mark.parametrize("ids_per_pass", [1, 3, 1_000])
def test_duplicate_ids_are_counted_exactly_in_one_pass_or_several(ids_per_pass: int) -> None:
    ids = ["a", "b", "a", "c", None, "a", None]
    raw = pl.LazyFrame({"id": ids}, schema={"id": pl.String})
    assert duplicate_ids(raw, rows=len(ids), ids_per_pass=ids_per_pass) == 3  # "a" twice more, null once


@pytest.mark.parametrize(
    "options",
    [
        {"inclusive_end": True},
        {"end_signal": "empty_string"},
        {"end_signal": "empty_page"},
        {"inclusive_end": True, "end_signal": "empty_page"},
    ],
)
def test_exact_whatever_the_server_bounds_and_end_signal(options: dict[str, object], tmp_path: Path) -> None:
    store = MessageStore.generate(EMULATOR_SPEC, now=EMULATOR_NOW)
    midnight = Window.day(DAY).start
    # Messages exactly on both midnights of the day: each must land in exactly one partition.
    store.insert_live(1, start_ms=to_ms(midnight), end_ms=to_ms(midnight) + 1, channel_id=None)
    end = Window.day(DAY).end
    store.insert_live(1, start_ms=to_ms(end), end_ms=to_ms(end) + 1, channel_id=None)
    with run_emulator(store=store, **options) as emulator:
        for day in (DAY, DAY + dt.timedelta(days=1)):
            _land(emulator, tmp_path, day, page_size=40)
            assert set(_landed_ids(tmp_path, emulator, day)) == _truth(emulator, day)
        both = _landed_ids(tmp_path, emulator, DAY) + _landed_ids(
            tmp_path, emulator, DAY + dt.timedelta(days=1)
        )
        assert len(both) == len(set(both))


def test_channel_source_pages_each_channel(emulator_module: RunningEmulator, tmp_path: Path) -> None:
    channel_ids = sorted(c["id"] for c in emulator_module.store.channels())
    _land(emulator_module, tmp_path, channel_ids=channel_ids, source="channels", page_size=50)
    ids = _landed_ids(tmp_path, emulator_module)
    assert len(ids) == len(set(ids))
    assert set(ids) == _truth(emulator_module)


def test_new_messages_arriving_while_paging_are_repaired(emulator: RunningEmulator, tmp_path: Path) -> None:
    """Messages created inside the window mid-paging (some behind the cursor) are found by the repair pass."""
    emulator.faults.update({"live_inserts_per_page": 3})
    stop = threading.Event()

    def stop_inserting_after_a_while() -> None:
        while not stop.wait(0.005):
            if emulator.stats.to_dict()["live_inserts"] >= 15:
                emulator.faults.update({"live_inserts_per_page": 0})
                return

    watcher = threading.Thread(target=stop_inserting_after_a_while)
    watcher.start()
    try:
        landed = _land(emulator, tmp_path, page_size=25)
    finally:
        stop.set()
        watcher.join()
    assert emulator.stats.to_dict()["live_inserts"] >= 15
    ids = _landed_ids(tmp_path, emulator)
    assert len(ids) == len(set(ids))
    assert set(ids) == _truth(emulator)
    assert landed.bird_counts is not None


def test_faults_still_give_exact_ground_truth(emulator: RunningEmulator, tmp_path: Path) -> None:
    emulator.faults.update(
        {
            "error_429_rate": 0.2,
            "error_5xx_rate": 0.05,
            "drop_connection_rate": 0.02,
            "truncate_json_rate": 0.02,
            "seed": 3,
        }
    )
    _land(emulator, tmp_path, page_size=30)
    served = emulator.stats.to_dict()
    assert served["served_429"] > 0 and served["served_5xx"] > 0
    ids = _landed_ids(tmp_path, emulator)
    assert len(ids) == len(set(ids))
    assert set(ids) == _truth(emulator)


def test_a_platform_filter_limits_paging_and_repair(emulator_module: RunningEmulator, tmp_path: Path) -> None:
    channels = emulator_module.store.channels()
    whatsapp = sorted(c["id"] for c in channels if c["platformId"] == "whatsapp")
    assert whatsapp and len(whatsapp) < len(channels)

    landed = _land(emulator_module, tmp_path, channel_ids=whatsapp, source="channels")
    window = Window.day(DAY)
    expected = set().union(
        *(emulator_module.store.ground_truth_ids(window.start, window.end, channel_id=c) for c in whatsapp)
    )
    assert set(_landed_ids(tmp_path, emulator_module)) == expected
    assert landed.repaired_channels == []


def test_landing_parses_exactly_what_flattening_would_decode(
    emulator_module: RunningEmulator, tmp_path: Path
) -> None:
    """raw_messages.parsed (filled at landing) flattens to the same rows as decoding the raw JSON."""
    _land(emulator_module, tmp_path)
    lake = Lake(tmp_path / "lake")
    assert unparsed_rows(lake.partition_file(RAW_MESSAGES, emulator_module.workspace_id, DAY)) == 0
    raw = lake.scan_partition(RAW_MESSAGES, emulator_module.workspace_id, DAY)
    assert raw is not None
    channels = pl.LazyFrame(schema=CHANNEL_SCHEMA)
    from_parsed = flatten_messages(raw.drop("raw"), channels).collect().sort("id")
    from_json = flatten_messages(raw.drop("parsed"), channels).collect().sort("id")
    assert from_parsed.height == len(_truth(emulator_module)) > 0
    assert_frame_equal(from_parsed, from_json)


def test_a_message_whose_fields_do_not_parse_is_archived_and_decoded_from_json() -> None:
    good = b'{"id":"m1","channelId":"c","status":"sent","createdAt":"2026-01-01T00:00:00Z",'
    good += b'"updatedAt":"2026-01-01T00:00:01Z","reason":"ok"}'
    odd = good.replace(b'"m1"', b'"m2"').replace(b'"reason":"ok"', b'"reason":["not","text"]')
    page = decode_message_page(b'{"results":[' + good + b"," + odd + b"]}")
    assert [key.id for key in page.keys] == ["m1", "m2"] and not page.rejected

    def parsed(*raw: bytes) -> pa.Array:
        return parsed_from_json(pa.array(raw, pa.string()))

    # Arrow's reader refuses the batch, so each message is decoded alone: only the odd one has no `parsed`.
    assert parsed(*page.raw).is_null().to_pylist() == [False, True]
    assert parsed(*page.raw).field("reason").to_pylist()[0] == "ok"
    # A batch that fits goes through Arrow's reader; JSON spread over several lines is read all the same,
    # and so are the messages of a slice of the `raw` column.
    pretty = good.replace(b",", b",\n  ")
    assert parsed(good, pretty).equals(parsed(good, good))
    assert parsed(good, pretty).field("reason").to_pylist() == ["ok", "ok"]
    sliced = pa.array([odd, good, pretty, odd], pa.string()).slice(1, 2)
    assert parsed_from_json(sliced).equals(parsed(good, good))


def test_a_page_is_keyed_in_bulk_exactly_as_item_by_item(emulator_module: RunningEmulator) -> None:
    """Arrow's bulk keying and msgspec's item-by-item keying give the same spool rows for a plain page, and
    any item bulk keying is not sure of sends its page to msgspec, which sets aside what cannot be keyed."""

    async def first_page() -> RawMessagePage:
        async with _client(emulator_module) as client:
            window = Window.day(DAY)
            return await client.list_messages_raw(
                None, MessageQuery(start_at=window.start, end_at=window.end)
            )

    raw = asyncio.run(first_page()).raw
    assert len(raw) > 100
    by_items = key_items(RawMessagePage(raw, None))
    assert key_page(raw).rows.equals(spool_batch(by_items.keys, by_items.raw))

    good = b'{"id":"m1","channelId":"c","status":"sent","createdAt":"2026-01-01T00:00:00Z",'
    good += b'"updatedAt":"2026-01-01T00:00:01.5+02:00"}'
    for odd, rejected in [
        (good.replace(b'"m1"', b'""'), True),  # empty id
        (good.replace(b'"status":"sent",', b""), True),  # no status
        (good.replace(b'"sent"', b"404"), True),  # a number for a string
        (good.replace(b"00:00:00Z", b"00:00:00"), True),  # naive time
        (good.replace(b"00:00:00Z", b"00:00:00.1234567Z"), False),  # nanoseconds: msgspec rounds them
        (good.replace(b"00:00:00Z", b"00:00:00z"), False),  # lower-case z: msgspec reads it
        (good.replace(b"T00:00:00Z", b" 00:00:00Z"), False),  # a space for the T: msgspec reads it
    ]:
        keyed = key_page([good, odd.replace(b'"m1"', b'"m2"')])
        by_items = key_items(RawMessagePage([good, odd.replace(b'"m1"', b'"m2"')], None))
        assert keyed.rows.equals(spool_batch(by_items.keys, by_items.raw)), odd
        assert len(keyed.rejected) == rejected and keyed.rows.num_rows == 2 - rejected, odd
    # A field of another type than Bird documents: keyed in bulk all the same, that message left unparsed.
    odd_field = good.replace(b'"m1"', b'"m2"').replace(b"}", b',"reason":["not","text"]}')
    keyed = key_page([good, odd_field])
    by_items = key_items(RawMessagePage([good, odd_field], None))
    assert keyed.rows.equals(spool_batch(by_items.keys, by_items.raw)) and not keyed.rejected
    assert keyed.rows.column("parsed").is_null().to_pylist() == [False, True]
    assert key_page([good, good]).rows.column("updated_at").to_pylist()[0] == dt.datetime(
        2025, 12, 31, 22, 0, 1, 500000, tzinfo=dt.UTC
    )
