-- Replace the mart rows of the (workspace, day) pairs in `affected_days` with the registered frames
-- `new_delivery_daily`, `new_failure_breakdown` and `new_interaction_daily` (computed by transforms.marts).
delete from delivery_daily
where (workspace_id, day) in (select (workspace_id, day) from affected_days);

delete from failure_breakdown
where (workspace_id, day) in (select (workspace_id, day) from affected_days);

delete from interaction_daily
where (workspace_id, day) in (select (workspace_id, day) from affected_days);

insert into delivery_daily by name select * from new_delivery_daily;

insert into failure_breakdown by name select * from new_failure_breakdown;

insert into interaction_daily by name select * from new_interaction_daily;
