-- Replace a messages partition (workspace, created_at in [start, end)) with `staged`, in the caller's
-- transaction. Ids in `staged` are deleted wherever they are, so an id never has two rows.
-- Leaves temp table `replaced` (the rows deleted).
create or replace temp table replaced as
select id, workspace_id, created_at
from messages
where (workspace_id = $workspace_id and created_at >= $start and created_at < $end)
    or id in (select id from staged);

delete from messages where id in (select id from replaced);

insert into messages by name select * from staged;
