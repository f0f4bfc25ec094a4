-- Every (workspace, UTC day) holding messages or interactions: the mart rows a rebuild recomputes.
create or replace temp table affected_days as
select distinct workspace_id, utc_day(created_at) as day from messages
union
select distinct workspace_id, utc_day(created_at) as day from interactions;
