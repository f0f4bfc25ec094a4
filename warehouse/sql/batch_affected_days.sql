-- The (workspace, UTC day) pairs whose mart rows a batch of loads changed: every pair in `batch_days`.
create or replace temp table affected_days as
select distinct workspace_id, day from batch_days;
