-- The (workspace, UTC day) pairs whose mart rows a batch of partition loads changes, collected load by load
-- (see collect_batch_days) and turned into `affected_days` once at the end (batch_affected_days).
create or replace temp table batch_days (workspace_id varchar, day date);
