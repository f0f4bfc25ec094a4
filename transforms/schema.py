"""Column contracts shared by the lake, the transforms and the warehouse.

One place for the names and types of every relation, so that the Parquet lake, the polars transforms and
the DuckDB tables cannot drift apart. All timestamps are UTC (`Datetime("us", "UTC")`, DuckDB `TIMESTAMPTZ`).
"""

from typing import Final

import polars as pl

UTC_TS: Final = pl.Datetime("us", "UTC")

_PARSED_CONNECTOR: Final = pl.Struct({"identifierValue": pl.String})
_PARSED_CONTACT: Final = pl.Struct(
    {"identifierKey": pl.String, "identifierValue": pl.String, "countryCode": pl.String}
)

# The parts of Bird's Message that the warehouse flattens (field names as in Bird's JSON), parsed at landing
# into raw_messages.parsed. Timestamps stay text here; flattening parses them.
RAW_MESSAGE_PARSED_DTYPE: Final = pl.Struct(
    {
        "sender": pl.Struct({"connector": _PARSED_CONNECTOR, "contact": _PARSED_CONTACT}),
        "receiver": pl.Struct({"connector": _PARSED_CONNECTOR, "contacts": pl.List(_PARSED_CONTACT)}),
        "reason": pl.String,
        "details": pl.String,
        "lastStatusAt": pl.String,
        "scheduledFor": pl.String,
        "reference": pl.String,
        "batchId": pl.String,
        "tags": pl.List(pl.String),
        "parts": pl.List(pl.Struct({"platformReference": pl.String})),
        "body": pl.Struct({"type": pl.String}),
        "template": pl.Struct({"projectId": pl.String}),
        "failure": pl.Struct(
            {
                "code": pl.Int64,
                "description": pl.String,
                "source": pl.Struct({"code": pl.String, "name": pl.String}),
            }
        ),
    }
)

# raw_messages: the Parquet lake, one row per message id per partition (workspace x UTC day of created_at).
# A few key columns are typed at landing; `raw` keeps Bird's JSON object exactly as served, so the
# warehouse can be rebuilt from the lake without calling the API again. `parsed` holds the fields the
# warehouse flattens, parsed from `raw` at landing (null where they did not parse, and absent from
# partitions landed before it existed: flattening then decodes `raw`).
RAW_MESSAGE_SCHEMA: Final = pl.Schema(
    {
        "workspace_id": pl.String,
        "id": pl.String,
        "channel_id": pl.String,
        "status": pl.String,
        "direction": pl.String,
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
        "raw": pl.String,
        "ingested_at": UTC_TS,
        "parsed": RAW_MESSAGE_PARSED_DTYPE,
    }
)

# raw_interactions: one row per interaction id, partitioned like the messages they belong to.
RAW_INTERACTION_SCHEMA: Final = pl.Schema(
    {
        "workspace_id": pl.String,
        "id": pl.String,
        "message_id": pl.String,
        "channel_id": pl.String,
        "type": pl.String,
        "created_at": UTC_TS,
        "raw": pl.String,
        "ingested_at": UTC_TS,
    }
)

# rejected_records: one row per item of a page that could not be archived as a message (quarantine),
# partitioned like raw_messages by the day that was being paged.
REJECTED_RECORD_SCHEMA: Final = pl.Schema(
    {
        "workspace_id": pl.String,
        "partition_date": pl.Date,
        "reason": pl.String,
        "raw": pl.String,
        "ingested_at": UTC_TS,
    }
)

# channels: one row per channel (GET /workspaces/{ws}/channels).
CHANNEL_SCHEMA: Final = pl.Schema(
    {
        "workspace_id": pl.String,
        "channel_id": pl.String,
        "platform": pl.String,
        "name": pl.String,
        "identifier": pl.String,
        "status": pl.String,
        "connector_id": pl.String,
    }
)

# messages: one row per message id (the latest by updated_at), flattened from raw_messages.
MESSAGE_SCHEMA: Final = pl.Schema(
    {
        "id": pl.String,
        "workspace_id": pl.String,
        "channel_id": pl.String,
        "platform": pl.String,
        "direction": pl.String,
        "status": pl.String,
        "is_known_status": pl.Boolean,
        "reason": pl.String,
        "details": pl.String,
        "created_at": UTC_TS,
        "updated_at": UTC_TS,
        "last_status_at": UTC_TS,
        "scheduled_for": UTC_TS,
        "sender_identifier": pl.String,
        "receiver_identifier": pl.String,
        "receiver_kind": pl.String,
        "country_code": pl.String,
        "body_type": pl.String,
        "parts_count": pl.Int32,
        "tags": pl.List(pl.String),
        "reference": pl.String,
        "batch_id": pl.String,
        "failure_code": pl.Int32,
        "failure_description": pl.String,
        "failure_source_code": pl.String,
        "failure_source_name": pl.String,
        "is_final": pl.Boolean,
        "delivery_seconds": pl.Float64,
    }
)

# interactions: one row per interaction id.
INTERACTION_SCHEMA: Final = pl.Schema(
    {
        "id": pl.String,
        "workspace_id": pl.String,
        "message_id": pl.String,
        "channel_id": pl.String,
        "platform": pl.String,
        "type": pl.String,
        "is_known_type": pl.Boolean,
        "details": pl.String,
        "created_at": UTC_TS,
        "link_url": pl.String,
        "link_name": pl.String,
        "button_payload": pl.String,
        "reaction_emoji": pl.String,
        "reaction_action": pl.String,
        "conversion_type": pl.String,
        "conversion_status": pl.String,
        "conversion_method": pl.String,
        "conversion_at": UTC_TS,
    }
)

# failure_codes: one row per Bird failure code (seeded from warehouse/seeds/failure_codes.csv).
FAILURE_CODE_SCHEMA: Final = pl.Schema(
    {
        "failure_code": pl.Int32,
        "name": pl.String,
        "description": pl.String,
        "category": pl.String,
        "is_known": pl.Boolean,
    }
)

# delivery_daily: one row per UTC day of created_at x workspace x channel x platform x country x direction.
# Rates are over n_messages; delivery-time percentiles are over delivered outgoing messages.
DELIVERY_DAILY_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date,
        "workspace_id": pl.String,
        "channel_id": pl.String,
        "platform": pl.String,
        "country_code": pl.String,
        "direction": pl.String,
        "n_messages": pl.Int64,
        "n_delivered": pl.Int64,
        "n_failed": pl.Int64,
        "n_pending": pl.Int64,
        "n_other": pl.Int64,
        "delivery_rate": pl.Float64,
        "failure_rate": pl.Float64,
        "p50_delivery_seconds": pl.Float64,
        "p95_delivery_seconds": pl.Float64,
    }
)

# failure_breakdown: one row per UTC day of created_at x workspace x channel x failure code x failure source.
FAILURE_BREAKDOWN_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date,
        "workspace_id": pl.String,
        "channel_id": pl.String,
        "failure_code": pl.Int32,
        "failure_source_name": pl.String,
        "failure_source_code": pl.String,
        "n_failed": pl.Int64,
        "n_day_failures": pl.Int64,
        "share_of_day_failures": pl.Float64,
        "failure_name": pl.String,
        "failure_description": pl.String,
        "category": pl.String,
        "is_known_code": pl.Boolean,
    }
)

# interaction_daily: one row per UTC day of the interaction's created_at x workspace x channel x type.
INTERACTION_DAILY_SCHEMA: Final = pl.Schema(
    {
        "day": pl.Date,
        "workspace_id": pl.String,
        "channel_id": pl.String,
        "type": pl.String,
        "n_interactions": pl.Int64,
        "n_unique_messages": pl.Int64,
        "n_delivered": pl.Int64,
        "rate_over_delivered": pl.Float64,
    }
)
