"""Bird's documented vocabularies and the status model every layer shares.

Source: ../shared/bird-api-facts.md, sections 3 and 4. The API grows: code that meets a value missing here
keeps it as-is (and may flag it), it never rejects it.
"""

from typing import Final

STATUSES: Final = (
    "accepted",
    "rejected",
    "processing",
    "scheduled",
    "sent",
    "sending_failed",
    "delivered",
    "delivery_failed",
    "deleted",
    "skipped",
)

# Bird does not document which statuses are terminal. Our model (facts file 3.1, an inference):
# a message in one of these statuses never changes again, so it needs no re-poll.
FINAL_STATUSES: Final = frozenset(
    {"delivered", "delivery_failed", "sending_failed", "rejected", "deleted", "skipped"}
)
# Still moving: accepted -> processing/scheduled -> sent -> delivered | delivery_failed.
# `sent` can be the last status on carriers that return no receipt; the settling horizon bounds re-polls.
PENDING_STATUSES: Final = frozenset({"accepted", "processing", "scheduled", "sent"})
FAILED_STATUSES: Final = frozenset({"sending_failed", "delivery_failed", "rejected"})
DELIVERED_STATUSES: Final = frozenset({"delivered"})

DIRECTIONS: Final = ("incoming", "outgoing")

INTERACTION_TYPES: Final = (
    "clicked",
    "delete-request",
    "invalid",
    "opened",
    "read",
    "reported-as-spam",
    "unsubscribe-request",
    "reaction",
    "conversion",
    "subscribe-request",
    "subscribe-consent",
)

BODY_TYPES: Final = (
    "text",
    "html",
    "image",
    "file",
    "gif",
    "location",
    "carousel",
    "list",
    "section",
    "authentication",
    "template",
    "action",
)

# Platforms (channel `platformId`) whose messages can have interactions; SMS has none.
INTERACTION_PLATFORM_PREFIXES: Final = ("email", "rcs", "line", "whatsapp", "telegram", "apple")


def platform_has_interactions(platform_id: str | None) -> bool:
    """True when messages of this platform can receive interactions (opened, clicked, read, ...)."""
    return bool(platform_id) and platform_id.split("-", 1)[0] in INTERACTION_PLATFORM_PREFIXES


FAILURE_CODE_CATEGORIES: Final = {
    11: "async validation error",
    12: "service error",
    14: "customer error",
    15: "platform error",
}


def failure_category(code: int | None) -> str | None:
    """Category from the code's range (11XXX, 12XXX, 14XXX, 15XXX); 'unknown' outside them."""
    if code is None:
        return None
    return FAILURE_CODE_CATEGORIES.get(code // 1000, "unknown")
