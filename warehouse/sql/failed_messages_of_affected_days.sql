-- The failed messages (status in $failed_statuses) of the (workspace, UTC day) pairs in `affected_days`:
-- failure_breakdown's input, plus `day` to chunk them by (see Warehouse._refresh_marts).
select
    messages.created_at,
    (messages.created_at at time zone 'UTC')::date as day,
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
    and (messages.created_at at time zone 'UTC')::date = affected_days.day
where messages.status in (select unnest($failed_statuses::varchar[]));
