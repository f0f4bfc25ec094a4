-- The (workspace, UTC day) pairs whose mart rows a load changed: days of the rows it removed or wrote.
create or replace temp table affected_days as
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from replaced
union
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from staged;
