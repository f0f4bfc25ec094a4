-- The interactions of the (workspace, UTC day) pairs in `affected_days`: interaction_daily's input, plus
-- `day` to chunk them by (see Warehouse._refresh_marts).
select interactions.*, (interactions.created_at at time zone 'UTC')::date as day
from interactions
semi join affected_days
    on interactions.workspace_id = affected_days.workspace_id
    and (interactions.created_at at time zone 'UTC')::date = affected_days.day;
