"""Typed views of Bird's JSON, decoded with msgspec at the boundary.

Decoding is tolerant: unknown fields are ignored and enum-like fields (status, direction, type, platform) stay
plain strings, because Bird's API grows and a new value must be archived, not rejected
(`transforms/vocabulary.py` holds the known ones). A message list page keeps each message's JSON exactly as
served (`msgspec.Raw`, never re-serialized) beside the few typed key columns ingestion needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class _Model(msgspec.Struct, rename="camel", frozen=True):
    """Bird's fields are camelCase; ours are snake_case."""


class Annotations(_Model):
    name: str | None = None


class Connector(_Model):
    id: str | None = None
    identifier_value: str | None = None
    annotations: Annotations | None = None
    types: list[str] | None = None


class Contact(_Model):
    id: str | None = None
    identifier_key: str | None = None
    identifier_value: str | None = None
    type: str | None = None
    country_code: str | None = None
    platform_address: str | None = None
    annotations: Annotations | None = None


class Party(_Model):
    """A sender or receiver: a connector (our side), one contact, or several contacts (email)."""

    connector: Connector | None = None
    contact: Contact | None = None
    contacts: list[Contact] | None = None


class FailureSource(_Model):
    code: str | None = None
    name: str | None = None


class Failure(_Model):
    code: int | None = None
    description: str | None = None
    source: FailureSource | None = None


class Part(_Model):
    platform_reference: str | None = None


class Origin(_Model):
    type: str | None = None
    id: str | None = None


class ReplyTo(_Model):
    id: str | None = None
    order: int | None = None
    type: str | None = None


class Message(_Model):
    """One channel message; `meta`, `body` and `template` are volatile and stay as JSON objects."""

    id: str
    channel_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    direction: str | None = None
    last_status_at: datetime | None = None
    sender: Party | None = None
    receiver: Party | None = None
    reference: str | None = None
    parts: list[Part] | None = None
    reason: str | None = None
    details: str | None = None
    failure: Failure | None = None
    origin: Origin | None = None
    reply_to: ReplyTo | None = None
    tags: list[str] | None = None
    scheduled_for: datetime | None = None
    meta: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    template: dict[str, Any] | None = None


class MessageKey(_Model):
    """The columns ingestion types at landing (see RAW_MESSAGE_SCHEMA); the rest stays raw JSON."""

    id: str
    channel_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    direction: str | None = None


class Interaction(_Model):
    """One interaction (opened, clicked, read, ...); `metadata` varies by type and stays JSON."""

    id: str
    message_id: str
    channel_id: str
    type: str
    created_at: datetime
    platform_id: str | None = None
    details: str | None = None
    message_reference: str | None = None
    receiver: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Channel(_Model):
    id: str
    platform_id: str | None = None
    name: str | None = None
    connector_id: str | None = None
    identifier: str | None = None
    status: str | None = None


class RejectedRecord(msgspec.Struct, frozen=True):
    """An item of a page that is not a usable message (no id, a timestamp that does not parse, a wrong type)."""

    raw: bytes
    reason: str


class MessagePage(msgspec.Struct, frozen=True):
    """One page of a message list: typed keys, each message's JSON as served, the next page's cursor.

    Items that cannot be keyed are set aside in `rejected` with the reason, never dropped and never fatal:
    one bad record must not stop the archive. New enum values are not rejected (status etc. are open strings).
    """

    keys: list[MessageKey]
    raw: list[bytes]
    next_page_token: str | None
    rejected: list[RejectedRecord] = msgspec.field(default_factory=list)


class InteractionList(msgspec.Struct, frozen=True):
    """A message's interactions, typed and as served."""

    items: list[Interaction]
    raw: list[bytes]


class _RawResults(_Model):
    results: list[msgspec.Raw] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class ChannelPage(_Model):
    """One page of the channel list."""

    results: list[Channel] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class _MetricsResults(msgspec.Struct):
    results: list[dict[str, Any]] = msgspec.field(default_factory=list)


_RAW_RESULTS = msgspec.json.Decoder(_RawResults)
_MESSAGE_KEY = msgspec.json.Decoder(MessageKey)
_MESSAGE = msgspec.json.Decoder(Message)
_INTERACTION = msgspec.json.Decoder(Interaction)
_CHANNEL_PAGE = msgspec.json.Decoder(ChannelPage)
_METRICS = msgspec.json.Decoder(_MetricsResults)


def _token(value: str | None) -> str | None:
    """Bird signals the end with a missing nextPageToken; an empty one means the same."""
    return value or None


def decode_message_page(body: bytes) -> MessagePage:
    envelope = _RAW_RESULTS.decode(body)
    keys, raw, rejected = [], [], []
    for item in envelope.results:
        data = bytes(item)
        try:
            key = _MESSAGE_KEY.decode(data)
            reason = _unusable(key)
        except msgspec.DecodeError as error:  # ValidationError included: missing field, wrong type
            reason = str(error)
        if reason:
            rejected.append(RejectedRecord(data, reason))
        else:
            keys.append(key)
            raw.append(data)
    return MessagePage(
        keys=keys, raw=raw, next_page_token=_token(envelope.next_page_token), rejected=rejected
    )


def _unusable(key: MessageKey) -> str | None:
    """Why a decoded key cannot place its message in the archive, if it cannot."""
    if not key.id.strip():
        return "empty `$.id`"
    if key.created_at.tzinfo is None or key.updated_at.tzinfo is None:
        return "timestamp without a timezone in `$.createdAt` or `$.updatedAt`"
    return None


def decode_message(body: bytes) -> Message:
    return _MESSAGE.decode(body)


def decode_interactions(body: bytes) -> InteractionList:
    raw = [bytes(item) for item in _RAW_RESULTS.decode(body).results]
    return InteractionList(items=[_INTERACTION.decode(item) for item in raw], raw=raw)


def decode_channel_page(body: bytes) -> ChannelPage:
    page = _CHANNEL_PAGE.decode(body)
    return ChannelPage(results=page.results, next_page_token=_token(page.next_page_token))


def decode_channel_metrics(body: bytes) -> list[dict[str, Any]]:
    return _METRICS.decode(body).results
