-- Add the days of the partition load just done (rows it removed or wrote) to `batch_days`.
insert into batch_days
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from replaced
union
select distinct workspace_id, (created_at at time zone 'UTC')::date as day from staged;
