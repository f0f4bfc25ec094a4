"""raw_messages (Bird's JSON as served) -> messages: one typed row per message id, the latest version."""

from typing import Final

import polars as pl

from transforms import vocabulary
from transforms.phones import country_code
from transforms.schema import MESSAGE_SCHEMA, RAW_MESSAGE_PARSED_DTYPE

# Bird's ISO 8601 timestamps, with 'Z' or a '+02:00'-style offset and optional fractional seconds.
ISO_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S%.f%#z"
# The form Bird sends ('2026-11-20T10:00:04.250Z'): fixed width, so polars parses it ~7x faster.
BIRD_TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%3fZ"
BIRD_TIMESTAMP_BYTES: Final = 24

# Only the parts of Bird's Message we flatten (facts 3.3). Decoding with an explicit dtype is fast, ignores
# unknown fields, and gives missing or null objects as null structs. The typed landing columns (id, status,
# direction, created_at, updated_at) are not decoded again. Landing parses the same parts into the `parsed`
# column, so only rows without it are decoded here.
MESSAGE_JSON_DTYPE: Final = RAW_MESSAGE_PARSED_DTYPE


def parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO 8601 text with an offset -> UTC microseconds; text that does not parse becomes null.

    Bird's own form takes the fast fixed-width parser (uncached: timestamps rarely repeat), anything else
    (offsets, other fractions) the general format. The fast parser's result is kept only for text of the
    form's exact width: it accepts some malformed longer text that the general format rejects.
    """
    bird_form = text.str.to_datetime(
        BIRD_TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False, cache=False
    )
    fast = pl.when(text.str.len_bytes() == BIRD_TIMESTAMP_BYTES).then(bird_form)
    other = pl.when(fast.is_null()).then(text)
    general = other.str.to_datetime(ISO_TIMESTAMP_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    return pl.coalesce(fast, general)


def latest_version(raw: pl.LazyFrame, *, version: str) -> pl.LazyFrame:
    """One row per id: the highest `version`, then the latest ingested; later input rows win exact ties.

    Landed partitions hold each id once, so only the rows of repeated ids are sorted (a stable sort keeps
    exact ties in input order); the others pass through in their order, the kept versions following them.
    """
    flagged = raw.with_columns(_repeated=pl.col("id").is_duplicated())
    latest_of_repeated = (
        flagged.filter("_repeated")
        .sort(version, "ingested_at", maintain_order=True)
        .unique(subset="id", keep="last", maintain_order=True)
    )
    return pl.concat([flagged.filter(~pl.col("_repeated")), latest_of_repeated]).drop("_repeated")


def platform_by_channel(channels: pl.LazyFrame) -> pl.LazyFrame:
    """(workspace_id, channel_id) -> platform, one row per channel so joins never multiply rows."""
    return channels.select("workspace_id", "channel_id", "platform").unique(
        subset=["workspace_id", "channel_id"], keep="first", maintain_order=True
    )


def _identifier_kind(identifier_key: pl.Expr, identifier: pl.Expr) -> pl.Expr:
    """phone | email | other, from Bird's identifierKey when given, else from the identifier's shape."""
    key = identifier_key.str.to_lowercase()
    unkeyed = pl.when(identifier_key.is_null()).then(identifier)  # only these need the shape tests
    return (
        pl.when(identifier.is_null())
        .then(None)
        .when((key == "phonenumber") | unkeyed.str.contains(r"^\+\d"))
        .then(pl.lit("phone"))
        .when((key == "emailaddress") | unkeyed.str.contains("@", literal=True))
        .then(pl.lit("email"))
        .otherwise(pl.lit("other"))
    )


def _phone_number(contact: pl.Expr) -> pl.Expr:
    """The contact's identifier when it is a phone number that begins '+<digit>' or '<digit>', else null."""
    identifier = contact.struct.field("identifierValue")
    is_phone = _identifier_kind(contact.struct.field("identifierKey"), identifier) == "phone"
    return pl.when(is_phone & identifier.str.contains(r"^\+?\d")).then(identifier)


def _parsed_message(raw_schema: pl.Schema) -> pl.Expr:
    """The parsed parts of each message: landing's `parsed` column, else its raw JSON decoded here.

    Only rows whose `parsed` is null are decoded (the others give a null string, which costs nothing), so a
    partition landed with `parsed` is flattened without any JSON work; a frame without `raw` must have it.
    """
    decoded = pl.col("raw").str.json_decode(MESSAGE_JSON_DTYPE)
    if "parsed" not in raw_schema:
        return decoded
    parsed = pl.col("parsed")
    if "raw" not in raw_schema:
        return parsed
    unparsed = pl.when(parsed.is_null()).then(pl.col("raw"))
    return pl.coalesce(parsed, unparsed.str.json_decode(MESSAGE_JSON_DTYPE))


def flatten_messages(raw: pl.LazyFrame, channels: pl.LazyFrame) -> pl.LazyFrame:
    """raw_messages (RAW_MESSAGE_SCHEMA) + channels (CHANNEL_SCHEMA) -> messages (MESSAGE_SCHEMA).

    One row per message id, the version with the latest `updated_at`. `country_code` is the region of the
    contact's phone number (the receiver of outgoing messages, the sender of incoming ones), null when the
    number does not parse; for contacts without a readable number (email addresses, identifiers hashed by
    the PII policy) it is Bird's own `countryCode` of the contact.
    """
    message = pl.col("message")
    sender, receiver, failure = (message.struct.field(name) for name in ("sender", "receiver", "failure"))
    first_contact = pl.col("first_contact")
    receiver_identifier = pl.coalesce(
        receiver.struct.field("connector").struct.field("identifierValue"),
        first_contact.struct.field("identifierValue"),
    )
    contact, phone_number = pl.col("contact"), pl.col("phone_number")
    status = pl.col("status")
    is_final = status.is_in(vocabulary.FINAL_STATUSES)
    last_status_at = pl.col("last_status_at")
    return (
        latest_version(raw, version="updated_at")
        .with_columns(message=_parsed_message(raw.collect_schema()))
        .join(platform_by_channel(channels), on=["workspace_id", "channel_id"], how="left")
        # Parts used more than once, computed once: polars' subexpression elimination misses most of them.
        .with_columns(
            first_contact=receiver.struct.field("contacts").list.first(),
            last_status_at=parse_timestamp(message.struct.field("lastStatusAt")),
        )
        .with_columns(contact=pl.coalesce(first_contact, sender.struct.field("contact")))
        .with_columns(phone_number=_phone_number(contact))
        .select(
            "id",
            "workspace_id",
            "channel_id",
            "platform",
            "direction",
            "status",
            is_known_status=status.is_in(vocabulary.STATUSES),
            reason=message.struct.field("reason"),
            details=message.struct.field("details"),
            created_at=pl.col("created_at").dt.convert_time_zone("UTC"),
            updated_at=pl.col("updated_at").dt.convert_time_zone("UTC"),
            last_status_at=last_status_at,
            scheduled_for=parse_timestamp(message.struct.field("scheduledFor")),
            sender_identifier=pl.coalesce(
                sender.struct.field("connector").struct.field("identifierValue"),
                sender.struct.field("contact").struct.field("identifierValue"),
            ),
            receiver_identifier=receiver_identifier,
            receiver_kind=_identifier_kind(first_contact.struct.field("identifierKey"), receiver_identifier),
            country_code=pl.when(phone_number.is_not_null())
            .then(country_code(phone_number))
            .otherwise(contact.struct.field("countryCode")),
            body_type=pl.coalesce(
                message.struct.field("body").struct.field("type"),
                pl.when(message.struct.field("template").is_not_null()).then(pl.lit("template")),
            ),
            parts_count=message.struct.field("parts").list.len().cast(pl.Int32),
            tags=message.struct.field("tags").fill_null(pl.lit([], dtype=pl.List(pl.String))),
            reference=message.struct.field("reference"),
            batch_id=message.struct.field("batchId"),
            failure_code=failure.struct.field("code").cast(pl.Int32, strict=False),
            failure_description=failure.struct.field("description"),
            failure_source_code=failure.struct.field("source").struct.field("code"),
            failure_source_name=failure.struct.field("source").struct.field("name"),
            is_final=is_final,
            delivery_seconds=pl.when(is_final & (pl.col("direction") == "outgoing")).then(
                # Rounded to Bird's millisecond precision: the division alone may come out 1 ulp apart
                # depending on how polars evaluates it, and the warehouse must not depend on that.
                ((last_status_at - pl.col("created_at")).dt.total_microseconds() / 1_000_000).round(3)
            ),
        )
        .cast(dict(MESSAGE_SCHEMA))
    )
