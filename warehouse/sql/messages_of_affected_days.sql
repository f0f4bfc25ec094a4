-- The messages of the (workspace, UTC day) pairs in `affected_days`: the delivery marts' input, only the
-- columns transforms/marts.py reads (fetching every column of a big day into polars doubled a load's
-- memory), plus `day` to chunk them by (see Warehouse._refresh_marts).
select
    messages.created_at,
    (messages.created_at at time zone 'UTC')::date as day,
    messages.workspace_id,
    messages.channel_id,
    messages.platform,
    messages.country_code,
    messages.direction,
    messages.status,
    messages.delivery_seconds
from messages
semi join affected_days
    on messages.workspace_id = affected_days.workspace_id
    and (messages.created_at at time zone 'UTC')::date = affected_days.day;
