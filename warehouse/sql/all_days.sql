-- Every (workspace, UTC day) holding messages or interactions: the mart rows a rebuild recomputes.
create or replace temp table affected_days as
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from messages
union
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from interactions;
