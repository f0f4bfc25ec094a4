"""The emulator's records and how they render as Bird's JSON objects.

A message carries its whole pre-drawn future (`timeline`, `failure`, `interactions`); what the API shows at
clock T is a pure function of that record and T. Rendering follows Bird's Message object: camelCase fields,
RFC 3339 UTC timestamps with milliseconds and `Z`, optional fields omitted rather than null.
"""

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelines.emulator.catalog import FailureKind

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime (floored)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


_DAY_MS = 86_400_000
_day_prefixes: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Bird's timestamp format: `2025-05-29T06:14:56.392Z` (formatted by hand: it runs millions of times)."""
    day, rest = divmod(ms, _DAY_MS)
    prefix = _day_prefixes.get(day)
    if prefix is None:
        prefix = _day_prefixes.setdefault(day, f"{from_ms(day * _DAY_MS).date().isoformat()}T")
    seconds, millis = divmod(rest, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{prefix}{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


@dataclass(frozen=True, slots=True)
class Channel:
    id: str
    platform_id: str
    name: str
    identifier: str
    connector_id: str
    created_ms: int
    contact_kind: str
    failure_rate: float
    connector: dict[str, Any] = field(compare=False)  # the `connector` object used as sender/receiver

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "platformId": self.platform_id,
            "name": self.name,
            "connectorId": self.connector_id,
            "identifier": self.identifier,
            "status": "active",
            "createdAt": iso_ms(self.created_ms),
            "updatedAt": iso_ms(self.created_ms),
        }


@dataclass(frozen=True, slots=True)
class Contact:
    id: str
    identifier_key: str
    value: str
    country: str | None
    as_json: dict[str, Any] = field(compare=False)


def make_contact(contact_id: str, identifier_key: str, value: str, country: str | None) -> Contact:
    as_json: dict[str, Any] = {"id": contact_id, "identifierKey": identifier_key, "identifierValue": value}
    if country:
        as_json["countryCode"] = country
    as_json["platformAddress"] = value
    return Contact(contact_id, identifier_key, value, country, as_json)


@dataclass(frozen=True, slots=True)
class Interaction:
    id: str
    type: str
    created_ms: int
    details: str
    metadata: dict[str, Any] | None


@dataclass(slots=True, eq=False)
class Message:
    """One message with its pre-drawn future; `stage` and `json` cache the rendering at the store's clock."""

    id: str
    channel: Channel
    created_ms: int
    direction: str
    contact: Contact
    timeline: tuple[tuple[int, str], ...]  # (at_ms, status), ascending; the first entry is at created_ms
    failure: FailureKind | None  # shown once the last status of the timeline is reached
    body: dict[str, Any] | None = None
    template: dict[str, Any] | None = None
    n_parts: int = 0
    tags: tuple[str, ...] = ()
    reference: str | None = None
    scheduled_ms: int | None = None
    meta: dict[str, Any] | None = None
    origin: dict[str, Any] | None = None
    interactions: tuple[Interaction, ...] = ()
    hidden: bool = False
    stage: int = -1
    json: bytes = b""

    @property
    def key(self) -> tuple[int, str]:
        return (self.created_ms, self.id)

    @property
    def sender_value(self) -> str:
        return self.channel.identifier if self.direction == "outgoing" else self.contact.value

    @property
    def receiver_value(self) -> str:
        return self.contact.value if self.direction == "outgoing" else self.channel.identifier

    @property
    def email_subject(self) -> str | None:
        email = (self.meta or {}).get("email")
        subject = email.get("subject") if isinstance(email, dict) else None
        return subject if isinstance(subject, str) else None

    def stage_at(self, now_ms: int) -> int:
        """Index of the timeline entry in force at `now_ms` (0 before the message exists)."""
        return max(bisect_right(self.timeline, (now_ms, "\uffff")) - 1, 0)

    def status_at(self, now_ms: int) -> str:
        return self.timeline[self.stage_at(now_ms)][1]

    def failure_at(self, now_ms: int) -> FailureKind | None:
        if self.failure is None or self.stage_at(now_ms) < len(self.timeline) - 1:
            return None
        return self.failure

    def to_dict(self, stage: int) -> dict[str, Any]:
        """Bird's Message object as it looks while timeline entry `stage` is in force."""
        at_ms, status = self.timeline[stage]
        failure = self.failure if stage == len(self.timeline) - 1 else None
        connector = {"connector": self.channel.connector}
        outgoing = self.direction == "outgoing"
        message: dict[str, Any] = {
            "id": self.id,
            "channelId": self.channel.id,
            "sender": connector if outgoing else {"contact": self.contact.as_json},
            "receiver": {"contacts": [self.contact.as_json]} if outgoing else connector,
        }
        if self.meta:
            message["meta"] = self.meta
        if self.reference:
            message["reference"] = self.reference
        if self.n_parts:
            message["parts"] = [{"platformReference": f"{self.id[:8]}-{i}"} for i in range(self.n_parts)]
        message["status"] = status
        if failure:
            message["reason"] = failure.reason
        message["direction"] = self.direction
        if self.origin:
            message["origin"] = self.origin
        message["lastStatusAt"] = status_at = iso_ms(at_ms)
        message["createdAt"] = iso_ms(self.created_ms)
        message["updatedAt"] = status_at
        if failure:
            message["details"] = failure.details
            message["failure"] = {
                "code": failure.code,
                "description": failure.description,
                "source": {"code": failure.source_code, "name": failure.source_name},
            }
        if self.tags:
            message["tags"] = list(self.tags)
        if self.scheduled_ms is not None:
            message["scheduledFor"] = iso_ms(self.scheduled_ms)
        if self.template is not None:
            message["template"] = self.template
        else:
            message["body"] = self.body
        return message

    def interaction_dicts(self, now_ms: int) -> list[dict[str, Any]]:
        """Bird's interaction objects for this message that exist at `now_ms`, oldest first."""
        return [
            self._interaction_dict(interaction)
            for interaction in self.interactions
            if interaction.created_ms <= now_ms
        ]

    def _interaction_dict(self, interaction: Interaction) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "id": interaction.id,
            "messageId": self.id,
            "channelId": self.channel.id,
            "platformId": self.channel.platform_id,
            "type": interaction.type,
        }
        if self.reference:
            rendered["messageReference"] = self.reference
        rendered["messagePartsCount"] = max(self.n_parts, 1)
        rendered["messageTags"] = list(self.tags)
        rendered["receiver"] = {"contacts": [self.contact.as_json]}
        rendered["createdAt"] = iso_ms(interaction.created_ms)
        rendered["details"] = interaction.details
        if interaction.metadata:
            rendered["metadata"] = interaction.metadata
        return rendered


MessageFilter = Callable[[Message, int], bool]  # (message, clock in epoch ms) -> listed?
