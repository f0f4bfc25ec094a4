-- The interactions of the (workspace, UTC day) pairs in `affected_days`, whose days [$start, $end) spans:
-- interaction_daily's input, plus `day` to chunk them by (see Warehouse._refresh_marts). The span lets the
-- scan skip other days' row groups.
select interactions.*, utc_day(interactions.created_at) as day
from interactions
semi join affected_days
    on interactions.workspace_id = affected_days.workspace_id
    and utc_day(interactions.created_at) = affected_days.day
where interactions.created_at >= $start and interactions.created_at < $end;
