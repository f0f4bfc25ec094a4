-- The messages of the (workspace, UTC day) pairs in `affected_days`: the marts' input.
select messages.*
from messages
semi join affected_days
    on messages.workspace_id = affected_days.workspace_id
    and (messages.created_at at time zone 'UTC')::date = affected_days.day;
