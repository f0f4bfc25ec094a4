-- The messages of the (workspace, UTC day) pairs in `affected_days`: the marts' input, only the columns
-- transforms/marts.py reads (fetching every column of a big day into polars doubled a load's memory).
select
    messages.created_at,
    messages.workspace_id,
    messages.channel_id,
    messages.platform,
    messages.country_code,
    messages.direction,
    messages.status,
    messages.delivery_seconds,
    messages.failure_code,
    messages.failure_source_name,
    messages.failure_source_code,
    messages.failure_description
from messages
semi join affected_days
    on messages.workspace_id = affected_days.workspace_id
    and (messages.created_at at time zone 'UTC')::date = affected_days.day;
