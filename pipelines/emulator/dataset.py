"""Deterministic synthetic workspace: channels, contacts and messages drawn from one seeded RNG.

Same spec, same bytes: every draw comes from `random.Random(spec.seed)` in a fixed order, and nothing reads
the wall clock except the default `end` (today's UTC date), which tests pin.
"""

import math
import random
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any

import phonenumbers

from pipelines.emulator import catalog
from pipelines.emulator.catalog import FailureKind
from pipelines.emulator.model import Channel, Contact, Interaction, Message, iso_ms, make_contact, to_ms

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
PHONE_CONTACTS_PER_COUNTRY = 250
EMAIL_CONTACTS = 1500
PLATFORM_USER_CONTACTS = 400  # LINE and Telegram users each
_COUNTRY_FAILURE_FACTOR = {code: factor for code, _, factor in catalog.COUNTRIES}
_EMAIL_DOMAIN_COUNTRY = {".nl": "NL", ".de": "DE", ".br": "BR", ".in": "IN", ".com": "US"}
IDENTIFIER_KEYS = {
    "phone": "phonenumber",
    "email": "emailaddress",
    "line": "lineuserid",
    "telegram": "telegramid",
}
_MALFORMED_NUMBERS = ("0612345", "+31 6", "+1555", "+44-abc-123", "12345678901234567", "+00491234")


@dataclass(frozen=True)
class DatasetSpec:
    """What to generate: `days` whole UTC days ending at `end` (exclusive), about `messages_per_day` a day."""

    seed: int = 7
    days: int = 14
    messages_per_day: int = 2000
    end: date | None = None  # None -> today's UTC date
    workspace_id: str | None = None  # None -> derived from the seed

    def resolved_end(self) -> date:
        return self.end or datetime.now(UTC).date()

    def resolved_workspace_id(self) -> str:
        return self.workspace_id or new_uuid(random.Random(f"workspace:{self.seed}"))

    @property
    def start(self) -> datetime:
        """First instant of the generated range (UTC midnight)."""
        return datetime.combine(self.resolved_end() - timedelta(days=self.days), time(), UTC)

    def for_workspaces(self, n: int) -> list["DatasetSpec"]:
        """`n` workspaces of this shape: this spec first, then specs with seeds derived from this one's.

        Derived specs draw their own workspace id, channels, contacts and messages; an explicit `workspace_id`
        stays with the first spec only.
        """
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        derived = [replace(self, seed=derived_seed(self.seed, i), workspace_id=None) for i in range(1, n)]
        return [self, *derived]


def derived_seed(seed: int, index: int) -> int:
    """The seed of workspace `index` (0-based) of a several-workspace emulator whose first seed is `seed`."""
    return seed if index == 0 else random.Random(f"workspace-seed:{seed}:{index}").randrange(2**31)


_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_uuid(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from `rng`; formatted by hand, `uuid.UUID` is slow at this volume."""
    h = f"{rng.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _sms_parts(text: str) -> int:
    """SMS segments: 160/153 GSM-7 characters, or 70/67 UTF-16 units when the text needs UCS-2."""
    if text.isascii():
        return 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def _text_body(text: str) -> dict[str, Any]:
    return {"type": "text", "text": {"text": text}}


class Generator:
    """Draws the workspace and its messages; the store keeps it to draw live inserts and sent messages."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec
        self.rng = random.Random(spec.seed)
        self.workspace_id = spec.resolved_workspace_id()
        rng = self.rng
        channels_since_ms = to_ms(spec.start) - 90 * DAY_MS
        self.channels = [
            Channel(
                id=new_uuid(rng),
                platform_id=t.platform_id,
                name=t.name,
                identifier=t.identifier,
                connector_id=(connector_id := new_uuid(rng)),
                created_ms=channels_since_ms + i * HOUR_MS,
                contact_kind=t.contact_kind,
                failure_rate=t.failure_rate,
                connector={
                    "id": connector_id,
                    "identifierValue": t.identifier,
                    "annotations": {"name": t.name},
                },
            )
            for i, t in enumerate(catalog.CHANNEL_TEMPLATES)
        ]
        self._channel_cum = list(accumulate(t.share for t in catalog.CHANNEL_TEMPLATES))
        self._hour_cum = list(accumulate(catalog.HOUR_WEIGHTS))
        self._contacts: dict[str, list[Contact]] = {
            "phone": list(phone_contacts(spec.seed)),
            "email": self._email_contacts(),
            "line": [
                self._platform_user("line", f"U{rng.getrandbits(128):032x}")
                for _ in range(PLATFORM_USER_CONTACTS)
            ],
            "telegram": [
                self._platform_user("telegram", str(rng.randrange(10**9, 10**10)))
                for _ in range(PLATFORM_USER_CONTACTS)
            ],
        }
        self._contact_by_value = {c.value: c for pool in self._contacts.values() for c in pool}
        self._malformed = [make_contact(new_uuid(rng), "phonenumber", v, None) for v in _MALFORMED_NUMBERS]
        self._campaigns = [{"id": new_uuid(rng), "name": name} for name in catalog.CAMPAIGN_NAMES]
        self._navigators = [new_uuid(rng) for _ in range(3)]
        self._batches = [{"type": "batch", "id": new_uuid(rng)} for _ in range(max(4, spec.days * 4))]
        self._templates = [
            {"projectId": new_uuid(rng), "version": new_uuid(rng), "locale": locale, "parameters": params}
            for locale, params in (
                ("en", [{"type": "string", "key": "name", "value": "Ana"}]),
                ("nl", [{"type": "string", "key": "order", "value": "BS-1042"}]),
                ("pt-BR", [{"type": "string", "key": "code", "value": "482913"}]),
                ("de", []),
            )
        ]
        self._sms_bodies = [(_text_body(t), _sms_parts(t)) for t in catalog.OUTGOING_TEXTS]
        self._incoming_bodies = [_text_body(t) for t in catalog.INCOMING_TEXTS]
        self._image_body = {
            "type": "image",
            "image": {"images": [{"mediaUrl": "https://media.birdshop.example/p/1042.jpg"}], "text": "📦"},
        }
        self._email_bodies: dict[tuple[int, int], dict[str, Any]] = {}
        self._metas: dict[tuple[int | None, int | None, int | None], dict[str, Any] | None] = {}

    # -- contacts -------------------------------------------------------------------------------------------

    def _email_contacts(self) -> list[Contact]:
        rng = self.rng
        contacts = []
        for i in range(EMAIL_CONTACTS):
            domain = rng.choice(catalog.EMAIL_DOMAINS)
            address = f"{rng.choice(catalog.FIRST_NAMES)}.{rng.choice(catalog.LAST_NAMES)}{i}@{domain}"
            country = next(c for suffix, c in _EMAIL_DOMAIN_COUNTRY.items() if domain.endswith(suffix))
            contacts.append(make_contact(new_uuid(rng), "emailaddress", address, country))
        return contacts

    def _platform_user(self, contact_kind: str, value: str) -> Contact:
        return make_contact(new_uuid(self.rng), IDENTIFIER_KEYS[contact_kind], value, None)

    def contact_for(self, identifier_value: str, channel: Channel) -> Contact:
        """The known contact with this identifier, or a new one (numbers that do not parse get no country)."""
        if identifier_value in self._contact_by_value:
            return self._contact_by_value[identifier_value]
        region = _region_of(identifier_value) if channel.contact_kind == "phone" else None
        key = IDENTIFIER_KEYS[channel.contact_kind]
        contact = make_contact(new_uuid(self.rng), key, identifier_value, region)
        self._contact_by_value[identifier_value] = contact
        return contact

    # -- messages -------------------------------------------------------------------------------------------

    def messages(self) -> list[Message]:
        """All messages of the spec's days, sorted by (createdAt, id)."""
        rng = self.rng
        spec = self.spec
        messages = []
        for day_index in range(spec.days):
            day = spec.start.date() + timedelta(days=day_index)
            factor = catalog.WEEKDAY_FACTOR if day.weekday() < 5 else catalog.WEEKEND_FACTOR
            count = round(spec.messages_per_day * factor * rng.uniform(0.95, 1.05))
            day_ms = to_ms(datetime.combine(day, time(), UTC))
            hours = rng.choices(range(24), cum_weights=self._hour_cum, k=count)
            channels = rng.choices(self.channels, cum_weights=self._channel_cum, k=count)
            for hour, channel in zip(hours, channels, strict=True):
                messages.append(self.draw(channel, day_ms + hour * HOUR_MS + rng.randrange(HOUR_MS)))
        messages.sort(key=lambda m: (m.created_ms, m.id))
        return messages

    def draw(self, channel: Channel, created_ms: int) -> Message:
        """A synthetic message of `channel` created at `created_ms`: incoming or outgoing, with its future."""
        rng = self.rng
        if rng.random() < catalog.INCOMING_SHARE:
            return Message(
                id=new_uuid(rng),
                channel=channel,
                created_ms=created_ms,
                direction="incoming",
                contact=rng.choice(self._contacts[channel.contact_kind]),
                timeline=((created_ms, "delivered"),),
                failure=None,
                body=rng.choice(self._incoming_bodies),
            )
        malformed = channel.contact_kind == "phone" and rng.random() < catalog.MALFORMED_RECEIVER_SHARE
        contact = rng.choice(self._malformed if malformed else self._contacts[channel.contact_kind])
        body, template, n_parts = self._outgoing_content(channel)
        campaign = rng.randrange(len(self._campaigns)) if rng.random() < catalog.CAMPAIGN_SHARE else None
        scheduled = campaign is not None and rng.random() < catalog.SCHEDULED_SHARE / catalog.CAMPAIGN_SHARE
        navigator = rng.randrange(len(self._navigators)) if rng.random() < catalog.NAVIGATOR_SHARE else None
        subject = rng.randrange(len(catalog.EMAIL_SUBJECTS)) if channel.contact_kind == "email" else None
        if subject is not None:
            body = self._email_body(subject, rng.randrange(len(catalog.OUTGOING_TEXTS)))
        n_tags = rng.choices((0, 1, 2, 3), weights=(40, 35, 20, 5))[0]
        return self.outgoing(
            channel,
            created_ms,
            contact,
            body=body,
            template=template,
            n_parts=n_parts,
            tags=tuple(sorted(rng.sample(catalog.TAGS, n_tags))),
            reference=f"order-{rng.randrange(10**6):06d}" if rng.random() < catalog.REFERENCE_SHARE else None,
            scheduled_ms=created_ms + rng.randrange(10 * MINUTE_MS, 2 * DAY_MS) if scheduled else None,
            meta=self._meta(subject, campaign, navigator),
            origin=rng.choice(self._batches) if rng.random() < catalog.BATCH_SHARE else None,
        )

    def outgoing(
        self,
        channel: Channel,
        created_ms: int,
        contact: Contact,
        *,
        body: dict[str, Any] | None,
        template: dict[str, Any] | None = None,
        n_parts: int = 0,
        tags: tuple[str, ...] = (),
        reference: str | None = None,
        scheduled_ms: int | None = None,
        meta: dict[str, Any] | None = None,
        origin: dict[str, Any] | None = None,
    ) -> Message:
        """An outgoing message with a freshly drawn outcome (used for generated and for sent messages)."""
        timeline, failure = self._outcome(channel, contact, created_ms, scheduled_ms)
        return Message(
            id=new_uuid(self.rng),
            channel=channel,
            created_ms=created_ms,
            direction="outgoing",
            contact=contact,
            timeline=timeline,
            failure=failure,
            body=body,
            template=template,
            n_parts=n_parts,
            tags=tags,
            reference=reference,
            scheduled_ms=scheduled_ms,
            meta=meta,
            origin=origin,
            interactions=self._interactions(channel, timeline) if failure is None else (),
        )

    def _outgoing_content(self, channel: Channel) -> tuple[dict[str, Any] | None, dict[str, Any] | None, int]:
        """(body, template, SMS parts) for an outgoing message of this channel."""
        rng = self.rng
        body, n_parts = rng.choice(self._sms_bodies)
        if channel.platform_id == "whatsapp" and rng.random() < 0.3:
            return None, rng.choice(self._templates), 0
        if channel.platform_id in ("whatsapp", "telegram") and rng.random() < 0.05:
            return self._image_body, None, 0
        return body, None, n_parts if channel.platform_id == "sms-messagebird" else 0

    def _email_body(self, subject: int, text: int) -> dict[str, Any]:
        key = (subject, text)
        if key not in self._email_bodies:
            plain = catalog.OUTGOING_TEXTS[text]
            self._email_bodies[key] = {
                "type": "html",
                "html": {
                    "html": f"<p>{plain}</p>",
                    "text": plain,
                    "metadata": {"subject": catalog.EMAIL_SUBJECTS[subject]},
                },
            }
        return self._email_bodies[key]

    def _meta(
        self, subject: int | None, campaign: int | None, navigator: int | None
    ) -> dict[str, Any] | None:
        """Shared `meta` objects: a message only points at one, so a million messages cost a few dicts."""
        key = (subject, campaign, navigator)
        if key not in self._metas:
            meta: dict[str, Any] = {}
            if subject is not None:
                meta["email"] = {
                    "subject": catalog.EMAIL_SUBJECTS[subject],
                    "from": {"username": "news", "displayName": "BirdShop 🐦"},
                }
            if navigator is not None:
                meta["navigatorId"] = self._navigators[navigator]
            if campaign is not None:
                meta["campaign"] = self._campaigns[campaign]
            self._metas[key] = meta or None
        return self._metas[key]

    def _outcome(
        self, channel: Channel, contact: Contact, created_ms: int, scheduled_ms: int | None
    ) -> tuple[tuple[tuple[int, str], ...], FailureKind | None]:
        """The message's status timeline and, if it fails, how (shown once the last status is reached)."""
        rng = self.rng
        steps = [(created_ms, "scheduled" if scheduled_ms is not None else "accepted")]
        if contact.identifier_key == "phonenumber" and contact.country is None:
            steps.append((created_ms + rng.randrange(200, 2000), "rejected"))
            return tuple(steps), catalog.MALFORMED_RECEIVER_FAILURE
        start_ms = scheduled_ms if scheduled_ms is not None else created_ms
        failure = None
        if rng.random() < channel.failure_rate * _COUNTRY_FAILURE_FACTOR.get(contact.country or "", 1.0):
            kinds = catalog.failures_for(channel.platform_id)
            failure = rng.choices([k for _, k in kinds], weights=[w for w, _ in kinds])[0]
        if failure is not None and failure.status != "delivery_failed":
            steps.append((start_ms + rng.randrange(200, 5000), failure.status))
            return tuple(steps), failure
        sent_ms = start_ms + rng.randrange(500, 20_000)
        steps.append((sent_ms, "sent"))
        no_receipt = channel.platform_id == "sms-messagebird" and rng.random() < catalog.SMS_NO_RECEIPT_SHARE
        if failure is None and no_receipt:
            return tuple(steps), None
        steps.append((sent_ms + self._settle_delay_ms(), failure.status if failure else "delivered"))
        return tuple(steps), failure

    def _settle_delay_ms(self) -> int:
        """Time from `sent` to the final status: mostly seconds, a tail of hours, a few up to ~47 h."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.80:
            return rng.randrange(1000, 3 * MINUTE_MS)
        if draw < 0.95:
            return rng.randrange(3 * MINUTE_MS, 6 * HOUR_MS)
        return rng.randrange(6 * HOUR_MS, 47 * HOUR_MS)

    def _interactions(
        self, channel: Channel, timeline: tuple[tuple[int, str], ...]
    ) -> tuple[Interaction, ...]:
        """Interactions of a delivered message, at most ~5 days after delivery; a click follows its view."""
        delivered_ms, status = timeline[-1]
        entries = catalog.INTERACTIONS.get(channel.platform_id, ())
        if status != "delivered" or not entries:
            return ()
        rng = self.rng
        has_view_step = entries[0][0] in ("opened", "read")
        viewed_ms: int | None = None
        drawn = []
        for i, (kind, probability, details) in enumerate(entries):
            if has_view_step and i > 0 and viewed_ms is None:
                break
            if rng.random() >= probability:
                continue
            after_ms = viewed_ms if viewed_ms is not None else delivered_ms
            delay_ms = min(
                int(rng.expovariate(1 / (3 * HOUR_MS))), catalog.INTERACTION_MAX_DELAY_S * 1000 // 2
            )
            at_ms = after_ms + 1000 + delay_ms
            if has_view_step and i == 0:
                viewed_ms = at_ms
            drawn.append(
                Interaction(new_uuid(rng), kind, at_ms, details, _interaction_metadata(kind, channel, at_ms))
            )
        return tuple(drawn)


@lru_cache(maxsize=4)
def phone_contacts(seed: int) -> tuple[Contact, ...]:
    """A bounded pool of valid E.164 mobile numbers per country, sized by the country's share.

    Memoized per seed (validating numbers is the slowest part of a small workspace); contacts are immutable.
    """
    rng = random.Random(f"phones:{seed}")
    contacts = []
    for region, share, _ in catalog.COUNTRIES:
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        national = str(example.national_number)
        seen: set[str] = set()
        while len(seen) < round(PHONE_CONTACTS_PER_COUNTRY * share * len(catalog.COUNTRIES)):
            number = phonenumbers.parse(f"+{example.country_code}{national[:-6]}{rng.randrange(10**6):06d}")
            e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
            if e164 not in seen and phonenumbers.is_valid_number(number):
                seen.add(e164)
                contacts.append(make_contact(new_uuid(rng), "phonenumber", e164, region))
    return tuple(contacts)


def _interaction_metadata(kind: str, channel: Channel, at_ms: int) -> dict[str, Any] | None:
    if kind == "clicked" and channel.platform_id == "whatsapp":
        return {"button": {"payload": "track-order"}}
    if kind == "clicked":
        return {"link": {"name": "shop", "url": "https://birdshop.example/sale?utm_source=bird"}}
    if kind == "reaction":
        return {"reaction": {"emoji": "👍", "action": "react"}}
    if kind == "conversion":
        return {
            "conversion": {
                "type": "purchase",
                "status": "completed",
                "method": "link",
                "timestamp": iso_ms(at_ms),
            }
        }
    return None


def _region_of(number: str) -> str | None:
    """ISO region of a valid phone number, None for anything that does not parse as one."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed) if phonenumbers.is_valid_number(parsed) else None
