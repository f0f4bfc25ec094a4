"""raw_interactions (Bird's JSON as served) -> interactions: one typed row per interaction id."""

from typing import Final

import polars as pl

from transforms import vocabulary
from transforms.messages import latest_version, parse_timestamp, platform_by_channel
from transforms.schema import INTERACTION_SCHEMA

# Only the parts of Bird's interaction we flatten (facts 3.4); unknown fields are ignored.
INTERACTION_JSON_DTYPE: Final = pl.Struct(
    {
        "platformId": pl.String,
        "details": pl.String,
        "metadata": pl.Struct(
            {
                "link": pl.Struct({"name": pl.String, "url": pl.String}),
                "button": pl.Struct({"payload": pl.String}),
                "reaction": pl.Struct({"emoji": pl.String, "action": pl.String}),
                "conversion": pl.Struct(
                    {"type": pl.String, "status": pl.String, "method": pl.String, "timestamp": pl.String}
                ),
            }
        ),
    }
)


def flatten_interactions(raw: pl.LazyFrame, channels: pl.LazyFrame) -> pl.LazyFrame:
    """raw_interactions (RAW_INTERACTION_SCHEMA) + channels -> interactions (INTERACTION_SCHEMA).

    One row per interaction id (interactions do not change; a re-fetched copy keeps the latest ingested).
    `platform` is the interaction's own `platformId`, else its channel's platform.
    """
    interaction = pl.col("interaction")
    metadata = interaction.struct.field("metadata")
    link, button, reaction, conversion = (
        metadata.struct.field(name) for name in ("link", "button", "reaction", "conversion")
    )
    return (
        latest_version(raw, version="created_at")
        .with_columns(interaction=pl.col("raw").str.json_decode(INTERACTION_JSON_DTYPE))
        .join(platform_by_channel(channels), on=["workspace_id", "channel_id"], how="left")
        .select(
            "id",
            "workspace_id",
            "message_id",
            "channel_id",
            platform=pl.coalesce(interaction.struct.field("platformId"), "platform"),
            type=pl.col("type"),
            is_known_type=pl.col("type").is_in(vocabulary.INTERACTION_TYPES),
            details=interaction.struct.field("details"),
            created_at=pl.col("created_at").dt.convert_time_zone("UTC"),
            link_url=link.struct.field("url"),
            link_name=link.struct.field("name"),
            button_payload=button.struct.field("payload"),
            reaction_emoji=reaction.struct.field("emoji"),
            reaction_action=reaction.struct.field("action"),
            conversion_type=conversion.struct.field("type"),
            conversion_status=conversion.struct.field("status"),
            conversion_method=conversion.struct.field("method"),
            conversion_at=parse_timestamp(conversion.struct.field("timestamp")),
        )
        .cast(dict(INTERACTION_SCHEMA))
    )
