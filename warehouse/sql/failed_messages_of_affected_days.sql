-- The failed messages (status in $failed_statuses) of the (workspace, UTC day) pairs in `affected_days`,
-- whose days [$start, $end) spans: failure_breakdown's input, plus `day` to chunk them by (see
-- Warehouse._refresh_marts). The span lets the scan skip other days' row groups.
select
    messages.created_at,
    utc_day(messages.created_at) as day,
    messages.workspace_id,
    messages.channel_id,
    messages.status,
    messages.failure_code,
    messages.failure_source_name,
    messages.failure_source_code,
    messages.failure_description
from messages
semi join affected_days
    on messages.workspace_id = affected_days.workspace_id
    and utc_day(messages.created_at) = affected_days.day
where messages.created_at >= $start
    and messages.created_at < $end
    and messages.status in (select unnest($failed_statuses::varchar[]));
