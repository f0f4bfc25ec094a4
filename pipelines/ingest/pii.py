"""The PII policy applied at landing: personal data is kept, replaced by a keyed hash, or dropped.

Messages carry phone numbers, email addresses, names and texts. With `hash`, every contact identifier and text
is replaced by an HMAC-SHA256 under a secret the user supplies (`BIRD_ETL_PII_KEY`), so joins and distinct
counts still work while the values cannot be read back; with `drop` they are removed. The policy is applied
to the raw JSON before anything is written, so nothing unhashed reaches the lake or the warehouse. Our own
channel identifiers (connectors) and Bird's `countryCode` of a contact are not personal data and are kept.
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum
from typing import Any

import orjson

ENV_PII = "BIRD_ETL_PII"
ENV_PII_KEY = "BIRD_ETL_PII_KEY"
HASH_PREFIX = "hmac-sha256:"
_CONTACT_FIELDS = ("identifierValue", "platformAddress")
_EMAIL_FIELDS = ("subject", "headers", "from")


class PiiMode(StrEnum):
    KEEP = "keep"
    HASH = "hash"
    DROP = "drop"


class PiiPolicy:
    """Scrubs one message or interaction JSON object according to the mode."""

    def __init__(self, mode: PiiMode, key: str | None = None) -> None:
        if mode is PiiMode.HASH and not key:
            raise ValueError(f"pii mode 'hash' needs a secret key in {ENV_PII_KEY}")
        self.mode = mode
        self._key = (key or "").encode()

    def __repr__(self) -> str:
        return f"PiiPolicy({self.mode.value})"

    @property
    def keeps_everything(self) -> bool:
        return self.mode is PiiMode.KEEP

    def pseudonym(self, value: Any) -> str | None:
        """The keyed hash of a value (its JSON form), or None in drop mode."""
        if self.mode is PiiMode.DROP or value is None:
            return None
        text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        return HASH_PREFIX + hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def scrub_message(self, raw: bytes) -> bytes:
        if self.keeps_everything:
            return raw
        message = orjson.loads(raw)
        if not isinstance(message, dict):  # a quarantined item that is not even an object
            return orjson.dumps(self.pseudonym(raw.decode("utf-8", "replace")))
        for side in ("sender", "receiver"):
            party = message.get(side) or {}
            for contact in [party.get("contact"), *(party.get("contacts") or [])]:
                self._scrub_contact(contact)
        if isinstance(body := message.get("body"), dict):
            message["body"] = self._scrubbed_content(body)
        if isinstance(template := message.get("template"), dict):
            for name in ("variables", "parameters"):
                if name in template:
                    template[name] = self.pseudonym(template[name])
        email = ((message.get("meta") or {}).get("email")) or {}
        for name in _EMAIL_FIELDS:
            if name in email:
                email[name] = self.pseudonym(email[name])
        return orjson.dumps(message)

    def scrub_interaction(self, raw: bytes) -> bytes:
        if self.keeps_everything:
            return raw
        interaction = orjson.loads(raw)
        receiver = interaction.get("receiver") or {}
        for contact in [receiver.get("contact"), *(receiver.get("contacts") or [])]:
            self._scrub_contact(contact)
        return orjson.dumps(interaction)

    def _scrub_contact(self, contact: Any) -> None:
        if not isinstance(contact, dict):
            return
        for name in _CONTACT_FIELDS:
            if name in contact:
                contact[name] = self.pseudonym(contact[name])
        if isinstance(contact.get("annotations"), dict) and "name" in contact["annotations"]:
            contact["annotations"]["name"] = self.pseudonym(contact["annotations"]["name"])

    def _scrubbed_content(self, body: dict[str, Any]) -> dict[str, Any]:
        """Keep the body's type (it is analytics), hash or drop everything the sender wrote."""
        content = {name: value for name, value in body.items() if name != "type"}
        scrubbed: dict[str, Any] = {"type": body.get("type")}
        if content and self.mode is PiiMode.HASH:
            scrubbed["contentHash"] = self.pseudonym(content)
        return scrubbed
