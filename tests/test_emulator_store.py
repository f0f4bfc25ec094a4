"""The emulator store's derived indexes stay exact while the store changes under them.

The metrics add up running counts per hour instead of visiting every message, and an unfiltered page is a
slice of a list of JSON kept beside the messages. These tests count and read the messages one by one instead
(their rendered JSON, or a store rendered from scratch at the same clock) and expect the same answers after
the clock moves either way, after live inserts and after sends: for the metrics, over windows that are whole
days, partial hours, a single hour, empty, or cut by the clock, with and without a channel filter.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from conftest import EMULATOR_SPEC

from pipelines.emulator.model import to_ms
from pipelines.emulator.store import MessageStore

START = EMULATOR_SPEC.start  # 2026-01-12T00:00Z; the data ends 2026-01-15T00:00Z
CLOCK = datetime(2026, 1, 13, 14, 30, 12, 345_000, tzinfo=UTC)  # mid-day: many messages still settling
WINDOWS = [  # (periodStart, periodEnd)
    (START - timedelta(days=400), START + timedelta(days=400)),  # everything, far beyond the data
    (datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 13, tzinfo=UTC)),  # one whole day
    # partial hours at both ends, one of them cut a microsecond after a whole millisecond
    (datetime(2026, 1, 12, 5, 17, 33, 123_000, tzinfo=UTC), datetime(2026, 1, 14, 19, 0, 0, 1, tzinfo=UTC)),
    (datetime(2026, 1, 13, 10, 15, tzinfo=UTC), datetime(2026, 1, 13, 10, 45, tzinfo=UTC)),  # within one hour
    (datetime(2026, 1, 13, 9, 0, 0, 500, tzinfo=UTC), datetime(2026, 1, 13, 11, 0, 0, 999, tzinfo=UTC)),
    (datetime(2026, 1, 13, 9, tzinfo=UTC), datetime(2026, 1, 13, 9, tzinfo=UTC)),  # empty
    (datetime(2026, 1, 14, 23, tzinfo=UTC), datetime(2026, 1, 12, 1, tzinfo=UTC)),  # reversed: empty
]
SEND_REQUEST = {
    "receiver": {"contacts": [{"identifierValue": "+31612345678"}]},
    "body": {"type": "text", "text": {"text": "Your order has shipped"}},
}


def counted_one_by_one(
    store: MessageStore, start: datetime, end: datetime, channel_ids: frozenset[str] | None
) -> list[dict[str, Any]]:
    """The metrics rows from every message of the window at the clock, read through its JSON."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for message_id in store.ground_truth_ids(start, end):
        message = store.message(message_id)
        channel = store.channel(message["channelId"])
        assert channel is not None
        if channel_ids is None or channel.id in channel_ids:
            counts[message["createdAt"][:10], channel.id, channel.platform_id, message["status"]] += 1
    return [
        {"date": day, "channelId": channel_id, "platformId": platform, "status": status, "count": n}
        for (day, channel_id, platform, status), n in sorted(counts.items())
    ]


def assert_metrics_exact(store: MessageStore) -> None:
    channels = [c.id for c in store.channel_records()]
    filters = [None, frozenset(channels[:1]), frozenset(channels[2:5]), frozenset({"not-a-channel"})]
    windows = [*WINDOWS, (store.now - timedelta(hours=2, milliseconds=7), store.now + timedelta(hours=3))]
    for start, end in windows:
        for channel_ids in filters:
            expected = counted_one_by_one(store, start, end, channel_ids)
            actual = store.daily_counts(start, end, channel_ids=channel_ids)
            assert actual == expected, f"{start} .. {end}, channels {channel_ids}"


@pytest.fixture
def store() -> MessageStore:
    return MessageStore.generate(EMULATOR_SPEC, now=CLOCK)


def test_metrics_match_a_count_of_every_message_as_the_clock_moves(store: MessageStore) -> None:
    assert_metrics_exact(store)
    for moment in (CLOCK + timedelta(hours=30), CLOCK - timedelta(hours=20), CLOCK + timedelta(minutes=3)):
        store.advance(to=moment)
        assert_metrics_exact(store)
        fresh = MessageStore.generate(EMULATOR_SPEC, now=moment)  # rendered once, never moved
        for start, end in WINDOWS:
            assert store.daily_counts(start, end) == fresh.daily_counts(start, end)


def test_metrics_count_live_inserts_and_sent_messages_as_they_settle(store: MessageStore) -> None:
    day = datetime(2026, 1, 13, tzinfo=UTC)
    store.insert_live(40, start_ms=to_ms(day), end_ms=to_ms(day + timedelta(days=1)), channel_id=None)
    assert_metrics_exact(store)
    sms = next(c for c in store.channel_records() if c.platform_id == "sms-messagebird")
    sent = [store.send(sms, SEND_REQUEST) for _ in range(5)]
    just_now = (store.now, store.now + timedelta(milliseconds=1))
    rows = store.daily_counts(*just_now, channel_ids=frozenset({sms.id}))
    assert [(r["date"], r["channelId"], r["status"], r["count"]) for r in rows] == [
        ("2026-01-13", sms.id, "accepted", 5)
    ]
    assert_metrics_exact(store)
    store.advance(to=store.now + timedelta(days=3))  # the sent messages reach their final status
    assert {store.message(m.id)["status"] for m in sent} != {"accepted"}
    assert_metrics_exact(store)


def test_unfiltered_pages_serve_the_current_json_after_the_store_changes(store: MessageStore) -> None:
    day = datetime(2026, 1, 13, tzinfo=UTC)
    store.insert_live(40, start_ms=to_ms(day), end_ms=to_ms(day + timedelta(days=1)), channel_id=None)
    sms = next(c for c in store.channel_records() if c.platform_id == "sms-messagebird")
    store.send(sms, SEND_REQUEST)
    store.advance(to=CLOCK + timedelta(hours=30))
    for channel_id in (None, sms.id):
        for oldest_first in (False, True):
            query = {"channel_id": channel_id, "start_ms": None, "end_ms": None, "after": None}
            sliced = store.page(**query, oldest_first=oldest_first, limit=1000, keep=())
            walked = store.page(**query, oldest_first=oldest_first, limit=1000, keep=(lambda m, now: True,))
            assert sliced == walked
            assert all(item == store.message_json(orjson.loads(item)["id"]) for item in sliced.items)
