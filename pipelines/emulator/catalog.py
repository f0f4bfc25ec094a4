"""Static vocabulary of the synthetic workspace: platforms, countries, failures, texts.

Kept apart from the generator so that the numbers that shape the data (shares, rates, codes) can be read
and tuned in one place. Failure codes come from ../shared/bird-api-facts.md section 4; 15999 is deliberately
not a documented code, so the pipeline's "unknown codes are kept" path has data to chew on.
"""

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class ChannelTemplate:
    """One channel of the synthetic workspace and how its traffic behaves."""

    platform_id: str
    name: str
    identifier: str
    contact_kind: str  # "phone", "email", "line" or "telegram": which contact pool receivers come from
    share: float  # share of the workspace's messages
    failure_rate: float  # share of outgoing messages that fail, before the country multiplier


CHANNEL_TEMPLATES: Final = (
    ChannelTemplate("sms-messagebird", "SMS NL long code", "+3197010200300", "phone", 0.33, 0.06),
    ChannelTemplate("sms-messagebird", "SMS alpha BirdShop", "BirdShop", "phone", 0.15, 0.08),
    ChannelTemplate("whatsapp", "WhatsApp BirdShop", "+31850000123", "phone", 0.20, 0.03),
    ChannelTemplate("email-messagebird", "Email news", "news@mail.birdshop.example", "email", 0.16, 0.04),
    ChannelTemplate("rcs-google", "RCS BirdShop agent", "birdshop-agent@rbm.goog", "phone", 0.06, 0.05),
    ChannelTemplate("line", "LINE BirdShop", "@birdshop", "line", 0.05, 0.02),
    ChannelTemplate("telegram", "Telegram BirdShop bot", "@birdshop_bot", "telegram", 0.05, 0.02),
)

# Receiver countries: (ISO code, share of phone contacts, failure-rate multiplier).
COUNTRIES: Final = (
    ("NL", 0.22, 0.6),
    ("US", 0.20, 1.0),
    ("GB", 0.14, 0.8),
    ("DE", 0.14, 0.7),
    ("BR", 0.10, 1.6),
    ("IN", 0.10, 2.0),
    ("ZA", 0.05, 1.5),
    ("MX", 0.05, 1.3),
)

INCOMING_SHARE: Final = 0.10
MALFORMED_RECEIVER_SHARE: Final = 0.005  # phone channels only; those messages are rejected with 11002
SMS_NO_RECEIPT_SHARE: Final = 0.03  # SMS that stay `sent` forever (no delivery report)
SCHEDULED_SHARE: Final = 0.02
CAMPAIGN_SHARE: Final = 0.25
BATCH_SHARE: Final = 0.05
NAVIGATOR_SHARE: Final = 0.05
REFERENCE_SHARE: Final = 0.30
WEEKDAY_FACTOR: Final = 1.14  # Monday..Friday; with the weekend factor the weekly mean is 1.0
WEEKEND_FACTOR: Final = 0.65
# Relative volume per UTC hour: quiet nights, a morning peak and an evening peak.
HOUR_WEIGHTS: Final = (1, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 11, 10, 10, 10, 9, 9, 10, 12, 12, 10, 7, 4, 2)


@dataclass(frozen=True, slots=True)
class FailureKind:
    """A way for an outgoing message to fail, as Bird reports it."""

    status: str  # sending_failed, delivery_failed or rejected
    code: int
    description: str
    source_name: str
    source_code: str
    reason: str
    details: str


def _sms_reason(details: str, reason: str, code: str) -> str:
    return f"details: {details}; reason: {reason}; code: {code}"


UNKNOWN_FAILURE_CODE: Final = 15999
MALFORMED_RECEIVER_FAILURE: Final = FailureKind(
    "rejected",
    11002,
    "INVALID_INPUT",
    "pre-processing",
    "invalid_identifier",
    "invalid receiver",
    "invalidInput",
)

# Per platform: (weight, failure kind).
FAILURES: Final[dict[str, tuple[tuple[float, FailureKind], ...]]] = {
    "sms-messagebird": (
        (
            0.40,
            FailureKind(
                "delivery_failed",
                15005,
                "UNKNOWN_SUBSCRIBER",
                "sms-messagebird",
                "1",
                _sms_reason("unknown subscriber", "unknown_subscriber", "1"),
                "unknown subscriber",
            ),
        ),
        (
            0.25,
            FailureKind(
                "delivery_failed",
                15001,
                "NETWORK_ERROR",
                "sms-messagebird",
                "34",
                _sms_reason("system failure", "received_network_error", "34"),
                "system failure",
            ),
        ),
        (
            0.15,
            FailureKind(
                "sending_failed",
                12003,
                "UNSUPPORTED_DESTINATION",
                "pre-processing",
                "unsupported_destination",
                "source number and destination combination not allowed",
                "unsupportedDestination",
            ),
        ),
        (
            0.10,
            FailureKind(
                "sending_failed",
                14001,
                "INSUFFICIENT_BALANCE",
                "accounting",
                "insufficient_balance",
                "insufficient balance",
                "insufficientBalance",
            ),
        ),
        (
            0.05,
            FailureKind(
                "rejected",
                12006,
                "INVALID_MESSAGE",
                "pre-processing",
                "invalid_message",
                "platform rejected the message",
                "invalidMessage",
            ),
        ),
        (
            0.05,
            FailureKind(
                "delivery_failed",
                UNKNOWN_FAILURE_CODE,
                "ABSENT_SUBSCRIBER",
                "sms-messagebird",
                "27",
                _sms_reason("absent subscriber", "unavailable_subscriber", "27"),
                "absent subscriber",
            ),
        ),
    ),
    "whatsapp": (
        (
            0.55,
            FailureKind(
                "delivery_failed",
                15005,
                "MESSAGE_UNDELIVERABLE",
                "whatsapp",
                "131026",
                "message undeliverable",
                "messageUndeliverable",
            ),
        ),
        (
            0.25,
            FailureKind(
                "sending_failed",
                12006,
                "INVALID_MESSAGE",
                "whatsapp",
                "132000",
                "template parameter count mismatch",
                "templateParamMismatch",
            ),
        ),
        (
            0.20,
            FailureKind(
                "sending_failed",
                14001,
                "CUSTOMER_SERVICE_WINDOW_CLOSED",
                "whatsapp",
                "131047",
                "re-engagement message outside the customer service window",
                "reEngagementRequired",
            ),
        ),
    ),
    "email-messagebird": (
        (
            0.50,
            FailureKind(
                "delivery_failed",
                15005,
                "BOUNCE_HARD",
                "email-messagebird",
                "550",
                "recipient address rejected",
                "bounceHard",
            ),
        ),
        (
            0.30,
            FailureKind(
                "delivery_failed",
                15001,
                "BOUNCE_SOFT",
                "email-messagebird",
                "421",
                "mailbox temporarily unavailable",
                "bounceSoft",
            ),
        ),
        (
            0.10,
            FailureKind(
                "delivery_failed",
                15001,
                "BOUNCE_BLOCK",
                "email-messagebird",
                "554",
                "blocked by the receiver",
                "bounceBlock",
            ),
        ),
        (
            0.10,
            FailureKind(
                "sending_failed",
                12006,
                "POLICY_REJECTION",
                "email-messagebird",
                "policy",
                "rejected due to policy",
                "policyRejection",
            ),
        ),
    ),
}
_GENERIC_FAILURES: Final = (
    (
        0.70,
        FailureKind(
            "delivery_failed", 15005, "UNKNOWN_RECIPIENT", "", "404", "recipient unknown", "unknownRecipient"
        ),
    ),
    (
        0.30,
        FailureKind("delivery_failed", 15001, "PLATFORM_ERROR", "", "500", "platform error", "platformError"),
    ),
)


def failures_for(platform_id: str) -> tuple[tuple[float, FailureKind], ...]:
    """The failure mix of a platform; others fail the generic way, with themselves as the source."""
    if platform_id in FAILURES:
        return FAILURES[platform_id]
    return tuple(
        (
            weight,
            FailureKind(k.status, k.code, k.description, platform_id, k.source_code, k.reason, k.details),
        )
        for weight, k in _GENERIC_FAILURES
    )


# Interactions per platform: (type, probability, details), drawn for delivered outgoing messages.
# When the first entry is a viewing step (opened, read), the later ones are drawn only for viewed messages.
INTERACTIONS: Final[dict[str, tuple[tuple[str, float, str], ...]]] = {
    "email-messagebird": (
        ("opened", 0.45, "initial_open"),
        ("clicked", 0.25, "link_clicked"),
        ("unsubscribe-request", 0.02, "list_unsubscribe"),
        ("reported-as-spam", 0.005, "spam_complaint"),
        ("conversion", 0.01, "purchase"),
    ),
    "rcs-google": (("read", 0.70, "read"), ("clicked", 0.15, "item_1_clicked")),
    "line": (("clicked", 0.10, "item_1_clicked"),),
    "whatsapp": (("read", 0.75, "read"), ("clicked", 0.08, "button_clicked"), ("reaction", 0.03, "reaction")),
    "telegram": (("read", 0.60, "read"), ("clicked", 0.05, "item_1_clicked")),
}
INTERACTION_MAX_DELAY_S: Final = 5 * 24 * 3600

OUTGOING_TEXTS: Final = (
    "Your order has shipped 📦 Track it in the app.",
    "Uw pakket wordt vandaag bezorgd tussen 14:00 en 16:00 🚚",
    "Ihre Bestellung ist unterwegs – vielen Dank für Ihren Einkauf!",  # noqa: RUF001 (real-world punctuation on purpose)
    "Seu código de verificação é 482913. Não compartilhe.",
    "¡Hola! Tu cita es mañana a las 10:00 ✅ Responde SÍ para confirmar.",
    "ご注文ありがとうございます！発送準備中です。",  # noqa: RUF001 (real-world punctuation on purpose)
    "您的订单已发货，请注意查收。",  # noqa: RUF001 (real-world punctuation on purpose)
    "Your verification code is 771203",
    "Reminder: your appointment with Dr. Müller is tomorrow at 09:30.",
    "Flash sale 🔥 20% off everything until midnight. Reply STOP to opt out.",
    "Bonjour Zoë, votre colis est arrivé au point relais. À bientôt !",
    "आपका ऑर्डर भेज दिया गया है।",
    (
        "Thank you for shopping with BirdShop. Your invoice for January is ready and can be downloaded from "
        "your account page. Payments are due within 14 days. Questions? Reply to this message and our team "
        "will get back to you within one business day."
    ),
    (
        "Beste klant, uw abonnement wordt over 7 dagen verlengd. Wilt u uw gegevens controleren of het "
        "abonnement wijzigen? Ga naar mijn.birdshop.example — daar vindt u ook uw facturen. "
        "Groet, BirdShop 🐦"
    ),
)
INCOMING_TEXTS: Final = (
    "STOP",
    "Hoi, waar is mijn pakket?",
    "👍",
    "Obrigado!",
    "配達はいつですか？",  # noqa: RUF001 (real-world punctuation on purpose)
    "Yes please",
    "Können Sie mich zurückrufen?",
    "¿Tienen envío a Monterrey?",
)
EMAIL_SUBJECTS: Final = (
    "Your receipt from BirdShop",
    "Ihre Rechnung für Januar",
    "Última oportunidade: 20% de desconto",
    "🎉 Welcome to BirdShop",
    "ご注文確認",
    "Your weekly digest",
    "Password reset requested",
    "Votre commande est confirmée",
)
TAGS: Final = (
    "promo",
    "otp",
    "transactional",
    "newsletter",
    "billing",
    "reminder",
    "support",
    "black-friday",
    "vip",
    "nl-launch",
)
CAMPAIGN_NAMES: Final = (
    "Winter sale",
    "Welcome journey",
    "Win-back Q1",
    "Black Friday",
    "App launch NL",
    "Loyalty points",
)
FIRST_NAMES: Final = (
    "ana",
    "bram",
    "chloe",
    "dmitri",
    "eva",
    "femi",
    "gustavo",
    "hiro",
    "ines",
    "jan",
    "kavya",
)
LAST_NAMES: Final = ("jansen", "smith", "muller", "silva", "patel", "naidoo", "garcia", "tanaka", "devries")
EMAIL_DOMAINS: Final = ("example.com", "mail.example.nl", "example.de", "example.com.br", "example.in")
