"""Typed views of Bird's JSON, decoded with msgspec at the boundary.

Decoding is tolerant: unknown fields are ignored and enum-like fields (status, direction, type, platform) stay
plain strings, because Bird's API grows and a new value must be archived, not rejected
(`transforms/vocabulary.py` holds the known ones). A message list page keeps each message's JSON exactly as
served (`msgspec.Raw`, never re-serialized) beside the few typed key columns ingestion needs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec


class _Model(msgspec.Struct, rename="camel", frozen=True, gc=False):
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


# A key must place its message: a non-empty id, and timestamps with a timezone (a naive one is ambiguous).
_Id = Annotated[str, msgspec.Meta(min_length=1)]
_UtcTimestamp = Annotated[datetime, msgspec.Meta(tz=True)]


class MessageKey(_Model):
    """The columns ingestion types at landing (see RAW_MESSAGE_SCHEMA); the rest stays raw JSON."""

    id: _Id
    channel_id: str
    status: str
    created_at: _UtcTimestamp
    updated_at: _UtcTimestamp
    direction: str | None = None


# The parts of a message the warehouse flattens, parsed at landing into the `parsed` column of raw_messages
# (the shape of transforms.schema.RAW_MESSAGE_PARSED_DTYPE). Strict on purpose: a value of another JSON type
# than Bird documents fails this decode (never the message's), and that message's `parsed` stays null, so the
# flattening decodes its raw JSON instead and gets exactly what it got before landing parsed anything.
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class ParsedConnector(_Model):
    identifier_value: str | None = None


class ParsedContact(_Model):
    identifier_key: str | None = None
    identifier_value: str | None = None
    country_code: str | None = None


class ParsedSender(_Model):
    connector: ParsedConnector | None = None
    contact: ParsedContact | None = None


class ParsedReceiver(_Model):
    connector: ParsedConnector | None = None
    contacts: list[ParsedContact | None] | None = None


class ParsedPart(_Model):
    platform_reference: str | None = None


class ParsedBody(_Model):
    type: str | None = None


class ParsedTemplate(_Model):
    project_id: str | None = None


class ParsedFailure(_Model):
    code: _Int64 | None = None
    description: str | None = None
    source: FailureSource | None = None


class MessageRecord(MessageKey):
    """A message's keys and the parts the warehouse flattens; timestamps stay text (parsed when flattened)."""

    sender: ParsedSender | None = None
    receiver: ParsedReceiver | None = None
    reason: str | None = None
    details: str | None = None
    last_status_at: str | None = None
    scheduled_for: str | None = None
    reference: str | None = None
    batch_id: str | None = None
    tags: list[str | None] | None = None
    parts: list[ParsedPart | None] | None = None
    body: ParsedBody | None = None
    template: ParsedTemplate | None = None
    failure: ParsedFailure | None = None


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
    """A page item that is not a usable message (no id, a timestamp that does not parse, a wrong type)."""

    raw: bytes
    reason: str


class MessagePage(msgspec.Struct, frozen=True):
    """One page of a message list: typed keys, each message's JSON as served, the next page's cursor.

    Items that cannot be keyed are set aside in `rejected` with the reason, never dropped and
    never fatal: one bad record must not stop the archive. New enum values are not rejected (status etc. are
    open strings).
    """

    keys: list[MessageKey]
    raw: list[bytes]
    next_page_token: str | None
    rejected: list[RejectedRecord] = msgspec.field(default_factory=list)


class RawMessagePage(msgspec.Struct, frozen=True):
    """One page of a message list as served: each item's JSON and the next page's cursor, nothing else
    decoded (ingestion keys the items itself, in bulk)."""

    raw: list[bytes]
    next_page_token: str | None


class InteractionList(msgspec.Struct, frozen=True):
    """A message's interactions, typed and as served."""

    items: list[Interaction]
    raw: list[bytes]


class _RawResults(_Model):
    results: list[msgspec.Raw] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class _KeyResults(_Model):
    results: list[MessageKey] = msgspec.field(default_factory=list)


class ChannelPage(_Model):
    """One page of the channel list."""

    results: list[Channel] = msgspec.field(default_factory=list)
    next_page_token: str | None = None


class _MetricsResults(msgspec.Struct):
    results: list[dict[str, Any]] = msgspec.field(default_factory=list)


_RAW_RESULTS = msgspec.json.Decoder(_RawResults)
_MESSAGE_KEY = msgspec.json.Decoder(MessageKey)
_MESSAGE_RECORD = msgspec.json.Decoder(MessageRecord)
_KEY_RESULTS = msgspec.json.Decoder(_KeyResults)
_MESSAGE = msgspec.json.Decoder(Message)
_INTERACTION = msgspec.json.Decoder(Interaction)
_CHANNEL_PAGE = msgspec.json.Decoder(ChannelPage)
_METRICS = msgspec.json.Decoder(_MetricsResults)


def _token(value: str | None) -> str | None:
    """Bird signals the end with a missing nextPageToken; an empty one means the same."""
    return value or None


def decode_message_page(body: bytes) -> MessagePage:
    """Keys and raw JSON of a page in two C-speed passes; item by item only when an item cannot be keyed.

    Ingestion keys pages in bulk instead (pipelines/ingest/rows.py), and falls back to `key_items`."""
    page = decode_raw_message_page(body)
    try:
        keys = _KEY_RESULTS.decode(body).results
    except msgspec.ValidationError:
        return key_items(page)
    return MessagePage(keys=keys, raw=page.raw, next_page_token=page.next_page_token)


def decode_raw_message_page(body: bytes) -> RawMessagePage:
    """Each item's JSON (checked to be JSON, not decoded) and the next page's cursor."""
    envelope = _RAW_RESULTS.decode(body)
    return RawMessagePage([bytes(item) for item in envelope.results], _token(envelope.next_page_token))


def key_items(page: RawMessagePage) -> MessagePage:
    """A page's items keyed one by one: those that cannot be keyed are set aside with the reason."""
    keys: list[MessageKey] = []
    usable, rejected = [], []
    for data in page.raw:
        try:
            keys.append(_MESSAGE_KEY.decode(data))
            usable.append(data)
        except (
            msgspec.DecodeError
        ) as error:  # ValidationError included: missing field, wrong type, naive time
            rejected.append(RejectedRecord(data, str(error)))
    return MessagePage(keys=keys, raw=usable, next_page_token=page.next_page_token, rejected=rejected)


def decode_message_record(data: bytes) -> MessageKey:
    """One message: a `MessageRecord` when its fields parse, else its `MessageKey` (raises if it has none)."""
    try:
        return _MESSAGE_RECORD.decode(data)
    except msgspec.ValidationError:
        return _MESSAGE_KEY.decode(data)


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
