-- The messages of the (workspace, UTC day) pairs in `affected_days`, whose days [$start, $end) spans: the
-- delivery marts' input, only the columns transforms/marts.py reads (fetching every column of a big day into
-- polars doubled a load's memory), plus `day` to chunk them by (see Warehouse._refresh_marts). The span lets
-- the scan skip other days' row groups.
select
    messages.created_at,
    utc_day(messages.created_at) as day,
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
    and utc_day(messages.created_at) = affected_days.day
where messages.created_at >= $start and messages.created_at < $end;
