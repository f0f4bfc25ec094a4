"""The emulator's message store: sorted messages, a clock, and JSON bytes kept current with the clock.

Messages are kept sorted by (createdAt, id), for the workspace and per channel, with their JSON alongside, so
a time window is two bisects and a keyset page is a slice.
Each message's JSON is serialized once; when the clock moves only the messages whose status changed in
between are serialized again, found through a sorted index of every status transition. Whenever a message is
rendered at another stage, the running counts behind the metrics follow it.
"""

import threading
from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any

import orjson

from pipelines.emulator.dataset import DAY_MS, HOUR_MS, DatasetSpec, Generator
from pipelines.emulator.model import Channel, Message, MessageFilter, from_ms, to_ms


@dataclass(frozen=True)
class Page:
    """One page of a list query: JSON bytes of the messages, and the key to continue after the last one."""

    items: list[bytes]
    last_key: tuple[int, str] | None
    has_more: bool


class SortedMessages:
    """Messages sorted by (createdAt, id), with their keys alongside for bisecting and their current JSON for
    slicing (a page that reads no message object does not wait on memory for a thousand of them)."""

    def __init__(self, messages: list[Message]) -> None:
        self.keys: list[tuple[int, str]] = [m.key for m in messages]
        self.messages = messages
        self.jsons: list[bytes] = [m.json for m in messages]

    def insert(self, message: Message) -> None:
        position = bisect_right(self.keys, message.key)
        self.keys.insert(position, message.key)
        self.messages.insert(position, message)
        self.jsons.insert(position, message.json)

    def rendered(self, message: Message) -> None:
        """Take the message's JSON after it was rendered again."""
        self.jsons[bisect_left(self.keys, message.key)] = message.json

    def between(self, start_ms: int | None, end_ms: int) -> tuple[int, int]:
        """Index range of the messages with start_ms <= createdAt < end_ms."""
        low = 0 if start_ms is None else bisect_left(self.keys, (start_ms,))
        return low, bisect_left(self.keys, (end_ms,))

    def page(self, low: int, high: int, *, oldest_first: bool, limit: int) -> Page:
        """The first `limit` messages of positions [low, high) in the order asked, all of them listed."""
        if oldest_first:
            stop = min(high, low + limit)
            return Page(
                self.jsons[low:stop], self.keys[stop - 1] if stop > low else None, has_more=high > stop
            )
        start = max(low, high - limit)
        return Page(
            self.jsons[start:high][::-1], self.keys[start] if high > start else None, has_more=start > low
        )


class StatusCounts:
    """Messages per (hour of createdAt, channel, status), so that the metrics add up hours, not messages."""

    def __init__(self) -> None:
        self._by_hour: dict[int, Counter[tuple[str, str]]] = {}
        self._hours: list[int] = []  # the keys of _by_hour, sorted

    def move(self, message: Message, old_stage: int, new_stage: int) -> None:
        """Count `message` under the status of `new_stage` instead of `old_stage` (-1: not counted yet)."""
        hour = message.created_ms // HOUR_MS
        counts = self._by_hour.get(hour)
        if counts is None:
            counts = self._by_hour[hour] = Counter()
            insort(self._hours, hour)
        channel_id = message.channel.id
        if old_stage >= 0:
            old = (channel_id, message.timeline[old_stage][1])
            if counts[old] == 1:
                del counts[old]  # a status nobody is in any more is no row of the metrics
            else:
                counts[old] -= 1
        counts[channel_id, message.timeline[new_stage][1]] += 1

    def hours(
        self, first: int | None = None, stop: int | None = None
    ) -> Iterator[tuple[int, Counter[tuple[str, str]]]]:
        """(hour since the epoch, counts by channel and status) of the counted hours in [first, stop)."""
        low = 0 if first is None else bisect_left(self._hours, first)
        high = len(self._hours) if stop is None else bisect_left(self._hours, stop)
        for hour in self._hours[low:high]:
            yield hour, self._by_hour[hour]


class MessageStore:
    """Thread-safe store of one synthetic workspace; the app reads it, tests steer its clock."""

    def __init__(self, generator: Generator, messages: list[Message], *, now: datetime | None) -> None:
        self._lock = threading.RLock()
        self._generator = generator
        self.spec: DatasetSpec = generator.spec
        self.workspace_id: str = generator.workspace_id
        self._channels = {channel.id: channel for channel in generator.channels}
        self._fixed_now_ms: int | None = None if now is None else to_ms(now)
        self._rendered_ms = self._now_ms()
        self._status_counts = StatusCounts()
        for message in messages:
            self._render(message)
        self._all = SortedMessages(messages)
        self._per_channel = {
            channel_id: SortedMessages([m for m in messages if m.channel.id == channel_id])
            for channel_id in self._channels
        }
        self._by_id: dict[str, Message] = {m.id: m for m in messages}
        self._transitions: list[tuple[int, str]] = sorted(
            (at_ms, m.id) for m in messages for at_ms, _ in m.timeline[1:]
        )
        self._any_withheld = False

    @classmethod
    def generate(cls, spec: DatasetSpec, *, now: datetime | None = None) -> "MessageStore":
        """Draw the workspace of `spec`; `now` pins the clock (default: real time)."""
        generator = Generator(spec)
        return cls(generator, generator.messages(), now=now)

    # -- clock ----------------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return from_ms(self._now_ms())

    @now.setter
    def now(self, value: datetime) -> None:
        self.advance(to=value)

    def _now_ms(self) -> int:
        if self._fixed_now_ms is not None:
            return self._fixed_now_ms
        return to_ms(datetime.now(UTC))

    def advance(self, to: datetime) -> None:
        """Pin the clock at `to` (either direction) and re-render the messages whose status changed."""
        with self._lock:
            self._fixed_now_ms = to_ms(to)
            self._sync()

    def _sync(self) -> int:
        """Bring rendered JSON up to the clock; returns the clock in epoch ms. Call with the lock held."""
        now_ms = self._now_ms()
        low, high = sorted((self._rendered_ms, now_ms))
        if low != high:
            start = bisect_right(self._transitions, (low, "\uffff"))
            stop = bisect_right(self._transitions, (high, "\uffff"))
            for _, message_id in self._transitions[start:stop]:
                message = self._by_id[message_id]
                if self._render(message, now_ms):
                    self._all.rendered(message)
                    self._per_channel[message.channel.id].rendered(message)
            self._rendered_ms = now_ms
        return now_ms

    def _render(self, message: Message, now_ms: int | None = None) -> bool:
        """Serialize the message as it is at the clock, counted under its status; True if it changed."""
        stage = message.stage_at(self._rendered_ms if now_ms is None else now_ms)
        if stage == message.stage:
            return False
        self._status_counts.move(message, message.stage, stage)
        message.stage = stage
        # orjson returns its whole working buffer (~4-8 KiB); an exact-size copy keeps 1M messages in RAM.
        message.json = bytes(memoryview(orjson.dumps(message.to_dict(stage))))
        return True

    # -- reads ----------------------------------------------------------------------------------------------

    def channels(self) -> list[dict[str, Any]]:
        """Bird's channel objects, oldest first."""
        return [channel.to_dict() for channel in self.channel_records()]

    def channel_records(self) -> list[Channel]:
        return list(self._channels.values())

    def channel(self, channel_id: str) -> Channel | None:
        return self._channels.get(channel_id)

    def message(self, message_id: str) -> dict[str, Any]:
        """The message's current JSON object; KeyError if it does not exist (yet) at the clock."""
        return orjson.loads(self.message_json(message_id))

    def message_json(self, message_id: str, *, channel_id: str | None = None) -> bytes:
        """The message's current JSON; KeyError if it does not exist at the clock (or not on `channel_id`)."""
        with self._lock:
            return self._existing(message_id, channel_id, self._sync()).json

    def interactions(self, message_id: str, *, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Interactions of the message that exist at the clock, oldest first; KeyError like `message_json`."""
        with self._lock:
            now_ms = self._sync()
            return self._existing(message_id, channel_id, now_ms).interaction_dicts(now_ms)

    def _existing(self, message_id: str, channel_id: str | None, now_ms: int) -> Message:
        message = self._by_id[message_id]
        if message.created_ms > now_ms or (channel_id is not None and message.channel.id != channel_id):
            raise KeyError(message_id)
        return message

    def page(
        self,
        *,
        channel_id: str | None = None,
        start_ms: int | None,
        end_ms: int | None,
        after: tuple[int, str] | None,
        oldest_first: bool,
        limit: int,
        keep: Iterable[MessageFilter],
    ) -> Page:
        """Up to `limit` listed messages (of one channel, if given) with start_ms <= createdAt < end_ms,
        continuing after the cursor key `after`."""
        filters = tuple(keep)
        with self._lock:
            now_ms = self._sync()
            index = self._all if channel_id is None else self._per_channel[channel_id]
            low, high = index.between(start_ms, now_ms + 1 if end_ms is None else min(end_ms, now_ms + 1))
            if after is not None and oldest_first:
                low = max(low, bisect_right(index.keys, after))
            elif after is not None:
                high = min(high, bisect_left(index.keys, after))
            if not filters and not self._any_withheld:
                return index.page(low, high, oldest_first=oldest_first, limit=limit)
            positions = range(low, high) if oldest_first else range(high - 1, low - 1, -1)
            candidates = map(index.messages.__getitem__, positions)
            listed = (
                m for m in candidates if not m.hidden and all(keep_it(m, now_ms) for keep_it in filters)
            )
            found = list(islice(listed, limit + 1))  # one more than asked: is there a next page?
            shown = found[:limit]
            return Page(
                [m.json for m in shown], shown[-1].key if shown else None, has_more=len(found) > limit
            )

    def ground_truth_ids(self, start: datetime, end: datetime, *, channel_id: str | None = None) -> set[str]:
        """Ids of the messages existing at the clock with start <= createdAt < end, withheld ones included."""
        with self._lock:
            now_ms = self._sync()
            index = self._all if channel_id is None else self._per_channel[channel_id]
            low, high = index.between(to_ms(start), min(to_ms(end), now_ms + 1))
            return {m.id for m in index.messages[low:high]}

    def daily_counts(
        self, start: datetime, end: datetime, *, channel_ids: frozenset[str] | None = None
    ) -> list[dict[str, Any]]:
        """Messages per (UTC date of createdAt, channel, status at the clock) in [start, end).

        The whole hours of the window come from the running counts; only the messages of a partial hour at
        either end are counted one by one.
        """
        counts: Counter[tuple[int, str, str]] = Counter()  # (day since the epoch, channel id, status)
        with self._lock:
            now_ms = self._sync()
            low_ms, high_ms = to_ms(start), min(to_ms(end), now_ms + 1)
            whole_low, whole_high = -(-low_ms // HOUR_MS) * HOUR_MS, high_ms // HOUR_MS * HOUR_MS
            if whole_low >= whole_high:  # no whole hour: count every message of the window
                whole_low = whole_high = high_ms
            partial = StatusCounts()
            for edge in ((low_ms, whole_low), (whole_high, high_ms)):
                low, high = self._all.between(*edge)
                for message in self._all.messages[low:high]:
                    partial.move(message, -1, message.stage)
            hours = chain(
                self._status_counts.hours(whole_low // HOUR_MS, whole_high // HOUR_MS),
                partial.hours(),
            )
            for hour, by_channel_status in hours:
                day = hour * HOUR_MS // DAY_MS
                for (channel_id, status), n in by_channel_status.items():
                    if channel_ids is None or channel_id in channel_ids:
                        counts[day, channel_id, status] += n
        dates = {day: from_ms(day * DAY_MS).date().isoformat() for day, _, _ in counts}
        # (day, channel id, status) sorts as (date, channelId, platformId, status): one platform per channel
        return [
            {
                "date": dates[day],
                "channelId": channel_id,
                "platformId": self._channels[channel_id].platform_id,
                "status": status,
                "count": n,
            }
            for (day, channel_id, status), n in sorted(counts.items())
        ]

    # -- writes ---------------------------------------------------------------------------------------------

    def withhold(self, message_ids: Iterable[str]) -> None:
        """Hide messages from the list endpoints (not from GET by id, ground truth or metrics)."""
        with self._lock:
            for message_id in message_ids:
                self._by_id[message_id].hidden = True
                self._any_withheld = True

    def send(self, channel: Channel, payload: dict[str, Any]) -> Message:
        """Create an outgoing message from a validated send request, `accepted` at the clock."""
        receiver = payload["receiver"]["contacts"][0]["identifierValue"]
        with self._lock:
            now_ms = self._sync()
            message = self._generator.outgoing(
                channel,
                now_ms,
                self._generator.contact_for(receiver, channel),
                body=payload.get("body"),
                template=payload.get("template"),
                tags=tuple(sorted({tag.lower() for tag in payload.get("tags", [])})),
                reference=payload.get("reference"),
                meta=payload.get("meta"),
            )
            self._insert(message)
            return message

    def insert_live(self, count: int, *, start_ms: int, end_ms: int, channel_id: str | None) -> list[str]:
        """Insert `count` synthetic messages created in [start_ms, end_ms) (capped at the clock): new traffic
        arriving in a window a client is paging."""
        with self._lock:
            now_ms = self._sync()
            high_ms = min(end_ms, now_ms + 1)
            if high_ms <= start_ms:
                return []
            rng = self._generator.rng
            channels = [self._channels[channel_id]] if channel_id else list(self._channels.values())
            inserted = []
            for _ in range(count):
                message = self._generator.draw(rng.choice(channels), rng.randrange(start_ms, high_ms))
                self._insert(message)
                inserted.append(message.id)
            return inserted

    def _insert(self, message: Message) -> None:
        self._render(message)
        self._all.insert(message)
        self._per_channel[message.channel.id].insert(message)
        self._by_id[message.id] = message
        for at_ms, _ in message.timeline[1:]:
            insort(self._transitions, (at_ms, message.id))

    def __len__(self) -> int:
        return len(self._all.messages)
